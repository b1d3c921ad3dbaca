import path from 'node:path';
import type { PackageDefinition } from '@grpc/proto-loader';
import type { Type } from 'protobufjs';
import type { ProxyNameInfo } from './proxy-config.js';
import { grpcProtoLoader, protobufJs, resolvePackageFile } from '../util/lazy-modules.js';

/** The Envoy resource type URLs the xDS probe asks for and decodes. */
export const TypeUrl = {
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  /** Istio's DNS name table (NDS), sent to sidecars that capture DNS. */
  nameTable: 'type.googleapis.com/istio.networking.nds.v1.NameTable',
} as const;

/** istio/istio pkg/dns/proto/nds.proto: host → the IPs the sidecar's DNS proxy answers with. */
const ndsSchema = `syntax = "proto3";
package istio.networking.nds.v1;
message NameTable {
  message NameInfo {
    repeated string ips = 1;
    string registry = 2;
    string shortname = 3;
    string namespace = 4;
    repeated string alt_hosts = 5;
  }
  map<string, NameInfo> table = 1;
}`;

let nameTableType: Type | undefined;

/** Decodes an NDS NameTable resource (the Any's bytes). */
export function decodeNameTable(bytes: Uint8Array): Map<string, ProxyNameInfo> {
  nameTableType ??= protobufJs()
    .parse(ndsSchema, { keepCase: true })
    .root.lookupType('istio.networking.nds.v1.NameTable');
  const decoded = nameTableType.toObject(nameTableType.decode(bytes), { defaults: false }) as {
    table?: Record<string, { ips?: string[]; registry?: string; namespace?: string }>;
  };
  const out = new Map<string, ProxyNameInfo>();
  for (const [host, info] of Object.entries(decoded.table ?? {}))
    out.set(host, {
      ips: info.ips ?? [],
      ...(info.registry ? { registry: info.registry } : {}),
      ...(info.namespace ? { namespace: info.namespace } : {}),
    });
  return out;
}

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
