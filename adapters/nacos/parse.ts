import type { Instance, RejectedEntry } from '../../src/model/service.js';
import { formatPath } from '../../src/config/load.js';
import { registryStrings, withSharedMetadata } from '../../src/util/intern.js';
import { instanceListSchema, nacosHostSchema, serviceListSchema, type NacosHost } from './schema.js';

export interface ParsedInstanceList {
  readonly instances: readonly Instance[];
  /** Hosts dropped as malformed; the valid rest goes on. */
  readonly rejected: readonly RejectedEntry[];
  /** Hosts the server returned (valid or not): 0 means the service really has no instance. */
  readonly hostCount: number;
  /** Nacos `ephemeral` per `address:port`, kept for diagnostics (the model has no field). */
  readonly persistent: number;
  /**
   * The server says the service's protect threshold is reached (`reachProtectionThreshold`):
   * too few instances are healthy, so it returns every instance as usable, as Nacos clients
   * then use them. Its instances are all healthy here.
   */
  readonly protectionThresholdReached: boolean;
}

/**
 * One `/v1/ns/instance/list` answer → model instances. Lenient: the payload must be an object,
 * each host needs `ip` and `port`; `healthy` falls back to the 1.x `valid`, missing `enabled`
 * and `weight` default to true and 1. A bad host is dropped and reported with its position.
 */
export function parseInstanceList(raw: unknown, ref: string): ParsedInstanceList | Error {
  const top = instanceListSchema.safeParse(raw);
  if (!top.success)
    return new Error(`instance list is not an object with "hosts": ${top.error.issues[0]?.message ?? 'invalid'}`);
  const hosts = top.data.hosts ?? [];
  const protectionThresholdReached = top.data.reachProtectionThreshold === true;
  const instances: Instance[] = [];
  const rejected: RejectedEntry[] = [];
  let persistent = 0;
  const metadataOf = new Map<string, Instance['metadata']>();
  hosts.forEach((entry, i) => {
    const parsed = nacosHostSchema.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = formatPath(issue.path);
      rejected.push({
        ref: `${ref} hosts[${i}]${describeHost(entry)}`,
        reason: `${where ? `${where}: ` : ''}${issue.message}`,
      });
      return;
    }
    if (parsed.data.ephemeral === false) persistent += 1;
    for (const instance of instancesOfHost(parsed.data))
      instances.push(
        withSharedMetadata(
          protectionThresholdReached && !instance.healthy ? { ...instance, healthy: true } : instance,
          metadataOf,
        ),
      );
  });
  return { instances, rejected, hostCount: hosts.length, persistent, protectionThresholdReached };
}

function describeHost(entry: unknown): string {
  const e = entry as { ip?: unknown; port?: unknown } | null;
  return typeof e?.ip === 'string' ? ` (${e.ip}:${String(e.port)})` : '';
}

/** Protocol named by the instance metadata: Dubbo's `protocol`, Spring Cloud's `secure`. */
export function protocolOfMetadata(md: Readonly<Record<string, string>>): string | undefined {
  const p = md.protocol?.trim();
  if (p) return p;
  if (md['preserved.register.source'] === 'SPRING_CLOUD') return md.secure === 'true' ? 'https' : 'http';
  return undefined;
}

/**
 * One Nacos host → one instance, plus a second one on `gRPC_port` when the metadata declares a
 * gRPC port beside the main one (the convention of grpc-spring-boot-starter on Nacos). A Dubbo 3
 * application-level instance lists its protocol ports in `dubbo.endpoints` (JSON in a string,
 * `[{"port":20880,"protocol":"dubbo"},{"port":50051,"protocol":"tri"}]`), as in ZooKeeper: one
 * instance per endpoint.
 */
export function instancesOfHost(h: NacosHost): Instance[] {
  // Values interned: the same few (`true`, a version, an application name) repeat on every host.
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(h.metadata ?? {})) metadata[k] = registryStrings.intern(v);
  const protocol = protocolOfMetadata(metadata);
  const base: Instance = {
    address: h.ip,
    port: h.port,
    ...(protocol !== undefined ? { protocol } : {}),
    weight: h.weight ?? 1,
    healthy: h.healthy ?? h.valid ?? true,
    enabled: h.enabled ?? true,
    metadata,
    ...(h.clusterName ? { cluster: h.clusterName } : {}),
  };
  const endpoints = dubboEndpointsOf(metadata['dubbo.endpoints']);
  if (endpoints.length > 0) return endpoints.map((e) => ({ ...base, port: e.port, protocol: e.protocol }));
  const grpcPort = Number(metadata.gRPC_port);
  if (Number.isInteger(grpcPort) && grpcPort >= 1 && grpcPort <= 65535 && grpcPort !== h.port) {
    return [base, { ...base, port: grpcPort, protocol: 'grpc' }];
  }
  return [base];
}

/** `dubbo.endpoints` metadata → its valid `{port, protocol}` entries; [] when absent or not that JSON. */
export function dubboEndpointsOf(text: string | undefined): { port: number; protocol: string }[] {
  if (text === undefined || text.trim() === '') return [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((e: unknown) => {
    const { port, protocol } = (e ?? {}) as { port?: unknown; protocol?: unknown };
    return typeof port === 'number' &&
      Number.isInteger(port) &&
      port >= 1 &&
      port <= 65535 &&
      typeof protocol === 'string' &&
      protocol !== ''
      ? [{ port, protocol }]
      : [];
  });
}

/** One page of `/v1/ns/service/list`. `count` is the total over all pages. */
export function parseServiceListPage(raw: unknown): { count: number; names: string[] } | Error {
  const parsed = serviceListSchema.safeParse(raw);
  if (!parsed.success)
    return new Error(`service list is not {count, doms}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return { count: parsed.data.count, names: parsed.data.doms ?? [] };
}

/** `DEFAULT_GROUP@@orders` → `orders`; names without a group prefix are returned as they are. */
export function stripGroupPrefix(name: string): string {
  const at = name.indexOf('@@');
  return at >= 0 ? name.slice(at + 2) : name;
}
