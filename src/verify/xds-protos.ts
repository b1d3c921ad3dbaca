import path from 'node:path';
import type { PackageDefinition } from '@grpc/proto-loader';
import { grpcProtoLoader, resolvePackageFile } from '../util/lazy-modules.js';

/** The Envoy resource type URLs the xDS probe asks for and decodes. */
export const TypeUrl = {
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
} as const;

/**
 * The Envoy v3 protos shipped with @grpc/grpc-js-xds (its `deps/` folder). Every resource and
 * filter type the probe reads is loaded into the same root, so `json: true` expands each
 * `google.protobuf.Any` (resources, filter `typed_config`) into `{ "@type": …, …fields }` and
 * `keepCase` keeps proto field names: the result has the shape of Envoy's admin config_dump.
 */
const protoFiles = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
];

let cached: PackageDefinition | undefined;

export function xdsPackageDefinition(): PackageDefinition {
  if (cached) return cached;
  const root = path.join(path.dirname(resolvePackageFile('@grpc/grpc-js-xds/package.json')), 'deps');
  cached = grpcProtoLoader().loadSync(protoFiles, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: false,
    json: true,
    includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(root, d)),
  });
  return cached;
}
