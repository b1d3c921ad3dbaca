import { createRequire } from 'node:module';
import type * as GrpcModule from '@grpc/grpc-js';
import type * as ProtoLoaderModule from '@grpc/proto-loader';
import type ZkModule from 'node-zookeeper-client';
import type * as ProtobufModule from 'protobufjs';

/**
 * CommonJS packages only some configurations use, loaded on first use from node_modules (and
 * left out of the bundle): a ZooKeeper-only bridge never evaluates gRPC, a Nacos-only one never
 * loads node-zookeeper-client, and `sync` never loads the xDS protos `verify` needs.
 */
const load = createRequire(import.meta.url);

/** A loader of package `id`: required on its first call, the same module after. */
function lazy<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load(id) as T);
}

/** @grpc/grpc-js (Nacos 2.x/3.x push, `verify --xds`). */
export const grpcJs = lazy<typeof GrpcModule>('@grpc/grpc-js');

/** @grpc/proto-loader (the xDS protos of `verify --xds`). */
export const grpcProtoLoader = lazy<typeof ProtoLoaderModule>('@grpc/proto-loader');

/** protobufjs (the NDS name table of `verify --probe-dns-capture`). */
export const protobufJs = lazy<typeof ProtobufModule>('protobufjs');

/** node-zookeeper-client (ZooKeeper sources). */
export const zookeeperClient = lazy<typeof ZkModule>('node-zookeeper-client');

/** Where a package file is installed (the xDS protos shipped inside @grpc/grpc-js-xds). */
export function resolvePackageFile(specifier: string): string {
  return load.resolve(specifier);
}
