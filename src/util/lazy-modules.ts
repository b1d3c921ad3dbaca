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

let grpc: typeof GrpcModule | undefined;
/** @grpc/grpc-js (Nacos 2.x/3.x push, `verify --xds`). */
export function grpcJs(): typeof GrpcModule {
  return (grpc ??= load('@grpc/grpc-js') as typeof GrpcModule);
}

let protoLoader: typeof ProtoLoaderModule | undefined;
/** @grpc/proto-loader (the xDS protos of `verify --xds`). */
export function grpcProtoLoader(): typeof ProtoLoaderModule {
  return (protoLoader ??= load('@grpc/proto-loader') as typeof ProtoLoaderModule);
}

let protobuf: typeof ProtobufModule | undefined;
/** protobufjs (the NDS name table of `verify --probe-dns-capture`). */
export function protobufJs(): typeof ProtobufModule {
  return (protobuf ??= load('protobufjs') as typeof ProtobufModule);
}

let zookeeper: typeof ZkModule | undefined;
/** node-zookeeper-client (ZooKeeper sources). */
export function zookeeperClient(): typeof ZkModule {
  return (zookeeper ??= load('node-zookeeper-client') as typeof ZkModule);
}

/** Where a package file is installed (the xDS protos shipped inside @grpc/grpc-js-xds). */
export function resolvePackageFile(specifier: string): string {
  return load.resolve(specifier);
}
