import { createHash } from 'node:crypto';
import { TextDecoder } from 'node:util';
import { withSharedMetadata } from '../../src/util/intern.js';
import {
  compareServiceKeys,
  type ApplicationInterface,
  type Instance,
  type RegistryService,
  type RejectedEntry,
  type ServiceKey,
} from '../../src/model/service.js';
import { dubboServiceIdentity, DUBBO_TEMPLATE_ATTRIBUTES, type DubboIdentity } from '../dubbo/naming.js';
import { applyConfigurators, isConfiguratorUrl } from '../dubbo/override.js';
import { dubboProvidersOf } from '../dubbo/provider.js';
import { decodeOnce, parseEncodedDubboUrl, type DubboUrl } from '../dubbo/url.js';
import type { ApplicationLevelMode } from '../dubbo/schema.js';
import { curatorInstanceSchema, dubboEndpointsSchema, type CuratorInstance } from './schema.js';

/**
 * Pure: what was read from ZooKeeper → model services. The reader (tree.ts) fills these
 * structures; everything that interprets znode names and data lives here and is unit-tested.
 */
export interface DubboInterfaceRead {
  /** Child name under the root: URL.encode(interface). */
  readonly name: string;
  readonly path: string;
  /** Child names of `providers/` (URL-encoded provider URLs). */
  readonly providers: readonly string[];
  /** Child names of `configurators/` (URL-encoded override URLs). */
  readonly configurators: readonly string[];
}

export interface CuratorInstanceRead {
  readonly id: string;
  readonly path: string;
  /** undefined = no data; a znode that vanished between list and read is left out. */
  readonly data: Buffer | undefined;
}

export interface CuratorServiceRead {
  readonly name: string;
  readonly path: string;
  readonly instances: readonly CuratorInstanceRead[];
}

/** What Dubbo 3's metadata report wrote under a root (`mapping/` or `metadata/`, see tree.ts). */
export interface DubboMetadataRead {
  readonly name: 'mapping' | 'metadata';
  readonly path: string;
  /** One per (interface, application); `metadata/` definitions also say version and group. */
  readonly entries: readonly {
    readonly interface: string;
    readonly application: string;
    readonly version?: string;
    readonly group?: string;
  }[];
}

export interface RootRead {
  /** Root path as configured (`/dubbo`). */
  readonly root: string;
  /** ServiceKey.namespace for its services: chroot + root without the leading `/`. */
  readonly namespace: string;
  readonly dubbo: readonly DubboInterfaceRead[];
  readonly curator: readonly CuratorServiceRead[];
  readonly metadata?: readonly DubboMetadataRead[];
}

export interface LayoutOptions {
  readonly maxDataBytes: number;
  /** Dubbo 3 application-level services (`/services/<app>`): see the `dubbo.applicationLevel` setting. */
  readonly applicationLevel?: ApplicationLevelMode;
  /** Protocol of plain Curator instances (neither Spring Cloud nor Dubbo); none = TCP. */
  readonly curatorProtocol?: string;
}

export interface ServicesRead {
  readonly services: RegistryService[];
  readonly rejected: RejectedEntry[];
}

/** Every attribute a ZooKeeper service sets, so any template is valid for every service. */
export const ZK_TEMPLATE_ATTRIBUTES: readonly string[] = DUBBO_TEMPLATE_ATTRIBUTES;

export function servicesOfRoots(
  reads: readonly RootRead[],
  source: string,
  options: LayoutOptions,
  parsed?: ParsedDirs,
): ServicesRead {
  const services: RegistryService[] = [];
  const rejected: RejectedEntry[] = [];
  for (const read of reads) {
    const own: RegistryService[] = [];
    for (const dir of [...read.dubbo, ...read.curator]) {
      const unit = parsed?.get(dir) ?? servicesOfDir(dir, source, read.namespace, options);
      own.push(...unit.services);
      rejected.push(...unit.rejected);
    }
    services.push(...withApplicationInterfaces(own, read.metadata ?? [], source, read.namespace));
  }
  services.sort((a, b) => compareServiceKeys(a.key, b.key));
  rejected.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  return { services, rejected };
}

const attached = new WeakMap<RegistryService, { readonly signature: string; readonly service: RegistryService }>();

/**
 * Application-level services of one root with the interfaces Dubbo's metadata report says their
 * application provides (`metadata/` definitions: interface, version, group; `mapping/`: interface
 * names only). Services without any are returned as they are; the others are new objects, the
 * same object again while the metadata is unchanged (synthesis memoizes on identity).
 */
export function withApplicationInterfaces(
  services: readonly RegistryService[],
  metadata: readonly DubboMetadataRead[],
  source: string,
  namespace: string,
): RegistryService[] {
  if (metadata.length === 0 || !services.some((s) => s.applicationLevel)) return [...services];
  const defined = new Map<string, Map<string, DubboIdentity>>(); // application → identity key → identity
  const mapped = new Map<string, Set<string>>(); // application → interfaces
  for (const m of metadata)
    for (const e of m.entries) {
      if (m.name === 'mapping') {
        let set = mapped.get(e.application);
        if (!set) mapped.set(e.application, (set = new Set()));
        set.add(e.interface);
        continue;
      }
      const id: DubboIdentity = { interface: e.interface, version: e.version ?? '', group: e.group ?? '' };
      let byId = defined.get(e.application);
      if (!byId) defined.set(e.application, (byId = new Map()));
      byId.set(`${id.interface}\u0000${id.version}\u0000${id.group}`, id);
    }
  return services.map((s) => {
    const level = s.applicationLevel;
    if (!level) return s;
    const ids = [...(defined.get(level.application)?.values() ?? [])].sort((a, b) =>
      `${a.interface}\u0000${a.version}\u0000${a.group}`.localeCompare(
        `${b.interface}\u0000${b.version}\u0000${b.group}`,
      ),
    );
    const known = new Set(ids.map((i) => i.interface));
    const mappedOnly = [...(mapped.get(level.application) ?? [])].filter((i) => !known.has(i)).sort();
    if (ids.length === 0 && mappedOnly.length === 0) return s;
    const signature = JSON.stringify([ids, mappedOnly]);
    const before = attached.get(s);
    if (before?.signature === signature) return before.service;
    const interfaces: ApplicationInterface[] = ids.map((id) => {
      const naming = dubboServiceIdentity(id, level.application);
      return {
        key: { source, namespace, group: naming.group, name: naming.name },
        attributes: naming.attributes,
        protocol: 'dubbo',
      };
    });
    const service: RegistryService = {
      ...s,
      applicationLevel: {
        ...level,
        ...(interfaces.length > 0 ? { interfaces } : {}),
        ...(mappedOnly.length > 0 ? { mappedInterfaces: mappedOnly } : {}),
      },
    };
    attached.set(s, { signature, service });
    return service;
  });
}

/** What one directory (a Dubbo interface or a Curator service) of a root holds. */
export type DirReadOf = DubboInterfaceRead | CuratorServiceRead;

/** Directories parsed while the walk went on, so the snapshot holds the very same objects. */
export type ParsedDirs = WeakMap<DirReadOf, ServicesRead>;

/** The services of one directory read. */
export function servicesOfDir(dir: DirReadOf, source: string, namespace: string, options: LayoutOptions): ServicesRead {
  const rejected: RejectedEntry[] = [];
  const services =
    'providers' in dir
      ? dubboServicesOf(dir, source, namespace, rejected)
      : curatorServicesOf(dir, source, namespace, options, rejected);
  return { services, rejected };
}

/** A Curator directory's service, marked (or left out) when it is a Dubbo 3 application. */
function curatorServicesOf(
  dir: CuratorServiceRead,
  source: string,
  namespace: string,
  options: LayoutOptions,
  rejected: RejectedEntry[],
): RegistryService[] {
  const service = curatorServiceOf(dir, source, namespace, options, rejected);
  if (service.attributes?.kind !== 'dubbo') return [service];
  const mode = options.applicationLevel ?? 'merge';
  if (mode === 'ignore') return [];
  return [{ ...service, applicationLevel: { application: dir.name, mode } }];
}

/**
 * Digest of what was read of one or more roots: names, child names and data, in read order
 * (reads sort their children). ZooKeeper forbids \u0000-\u001F in node names, so `\0` and `\n`
 * separate unambiguously; data is length-prefixed.
 */
export function unitFingerprint(read: RootRead): string {
  const h = createHash('sha256');
  h.update(read.root).update('\0').update(read.namespace).update('\0');
  for (const d of read.dubbo) {
    h.update('dubbo\0').update(d.path).update('\0');
    for (const p of d.providers) h.update(p).update('\n');
    h.update('\0');
    for (const c of d.configurators) h.update(c).update('\n');
    h.update('\0');
  }
  for (const m of read.metadata ?? []) {
    h.update('metadata\0').update(m.path).update('\0');
    for (const e of m.entries) h.update(JSON.stringify(e)).update('\n');
    h.update('\0');
  }
  for (const c of read.curator) {
    h.update('curator\0').update(c.path).update('\0');
    for (const i of c.instances) {
      h.update(i.id).update('\0');
      if (i.data === undefined) h.update('-');
      else h.update(`${i.data.length}:`).update(i.data);
      h.update('\n');
    }
    h.update('\0');
  }
  return h.digest('hex').slice(0, 32);
}

/** A znode path short enough to log (names of garbage znodes can be huge). */
export function refOf(path: string): string {
  return path.length <= 240 ? path : `${path.slice(0, 200)}…(${path.length} chars)`;
}

export function dubboServicesOf(
  dir: DubboInterfaceRead,
  source: string,
  namespace: string,
  rejected: RejectedEntry[],
): RegistryService[] {
  const decodedDir = decodeOnce(dir.name);
  const dirInterface = decodedDir instanceof Error ? dir.name : decodedDir;

  const rules: DubboUrl[] = [];
  for (const name of dir.configurators) {
    const url = parseEncodedDubboUrl(name);
    if (url instanceof Error || !isConfiguratorUrl(url)) {
      const reason =
        url instanceof Error ? url.message : `"${url.protocol}://" is not a configurator (override:// or absent://)`;
      if (!(url instanceof Error) && url.protocol === 'empty') continue; // Dubbo's "no rules" marker
      rejected.push({ ref: refOf(`${dir.path}/configurators/${name}`), reason: `configurator ignored: ${reason}` });
      continue;
    }
    rules.push(url);
  }

  const byKey = new Map<string, { identity: DubboIdentity; applications: string[]; instances: Instance[] }>();
  const metadataOf = new Map<string, Instance['metadata']>();
  for (const name of dir.providers) {
    const ref = refOf(`${dir.path}/providers/${name}`);
    const url = parseEncodedDubboUrl(name);
    if (url instanceof Error) {
      rejected.push({ ref, reason: url.message });
      continue;
    }
    const providers = dubboProvidersOf(applyConfigurators(url, rules, dirInterface), dirInterface);
    if (providers instanceof Error) {
      rejected.push({ ref, reason: providers.message });
      continue;
    }
    for (const p of providers) {
      const k = `${p.identity.interface}\u0000${p.identity.version}\u0000${p.identity.group}`;
      let entry = byKey.get(k);
      if (!entry) byKey.set(k, (entry = { identity: p.identity, applications: [], instances: [] }));
      if (p.application) entry.applications.push(p.application);
      entry.instances.push(withSharedMetadata(p.instance, metadataOf));
    }
  }

  return [...byKey.values()].map((e) => {
    const naming = dubboServiceIdentity(e.identity, mostCommon(e.applications));
    return {
      key: { source, namespace, group: naming.group, name: naming.name },
      attributes: naming.attributes,
      protocol: 'dubbo',
      instances: e.instances.sort(compareInstances),
    };
  });
}

/** Curator metadata keys that change on every restart or deploy, or hold JSON blobs. */
const CURATOR_VOLATILE = new Set([
  'timestamp',
  'dubbo.endpoints',
  'dubbo.metadata-service.url-params',
  'dubbo.metadata-service.urls',
  'dubbo.metadata.revision',
  'dubbo.exported-services.revision',
  'dubbo.subscribed-services.revision',
]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function curatorServiceOf(
  dir: CuratorServiceRead,
  source: string,
  namespace: string,
  options: LayoutOptions,
  rejected: RejectedEntry[],
): RegistryService {
  const instances: Instance[] = [];
  let dubbo = false;
  for (const inst of dir.instances) {
    const ref = refOf(inst.path);
    const parsed = curatorInstanceOf(inst.data, options);
    if (parsed.dubbo) dubbo = true;
    if ('error' in parsed) {
      rejected.push({ ref, reason: parsed.error });
      continue;
    }
    instances.push(...parsed.instances);
  }
  const key: ServiceKey = { source, namespace, group: '', name: dir.name };
  return {
    key,
    attributes: {
      interface: '',
      version: '',
      dubboGroup: '',
      application: dir.name,
      versionLabel: '',
      groupLabel: '',
      kind: dubbo ? 'dubbo' : 'zk',
    },
    instances: instances.sort(compareInstances),
  };
}

type CuratorParse = ({ instances: Instance[] } | { error: string }) & { dubbo: boolean };

/** One Curator ServiceInstance znode → its instances (one per Dubbo endpoint). */
export function curatorInstanceOf(data: Buffer | undefined, options: LayoutOptions): CuratorParse {
  if (data === undefined || data.length === 0)
    return { error: 'no data (expected Curator ServiceInstance JSON)', dubbo: false };
  if (data.length > options.maxDataBytes)
    return { error: `data is ${data.length} bytes, more than maxDataBytes ${options.maxDataBytes}`, dubbo: false };
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    return { error: 'data is not UTF-8 text', dubbo: false };
  }
  const dubbo = text.includes('org.apache.dubbo') || text.includes('dubbo.endpoints');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { error: `data is not JSON: ${(err as Error).message}`, dubbo };
  }
  const parsed = curatorInstanceSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return {
      error: `not a Curator ServiceInstance: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`,
      dubbo,
    };
  }
  const result = instancesOfCurator(parsed.data, dubbo, options.curatorProtocol);
  return typeof result === 'string' ? { error: result, dubbo } : { instances: result, dubbo };
}

/**
 * The protocol rule: Spring Cloud Zookeeper instances (payload class org.springframework...)
 * serve HTTP on `port` and HTTPS on `sslPort`; Dubbo 3 applications name theirs in
 * `dubbo.endpoints` (else dubbo); plain Curator x-discovery instances say nothing, so they get
 * `curatorProtocol` when configured, else none (TCP, which carries any protocol).
 */
function instancesOfCurator(c: CuratorInstance, dubbo: boolean, curatorProtocol?: string): Instance[] | string {
  const meta = c.payload?.metadata ?? {};
  const spring = (c.payload?.['@class'] ?? '').startsWith('org.springframework');
  const metadata: Record<string, string> = {};
  for (const k of Object.keys(meta).sort()) {
    const v = meta[k];
    if (CURATOR_VOLATILE.has(k)) continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') metadata[k] = String(v);
  }
  const status = String(meta.instance_status ?? meta['instance-status'] ?? 'UP').toUpperCase();
  const enabled = c.enabled !== false && status !== 'OUT_OF_SERVICE' && status !== 'DOWN';
  // A Dubbo application instance weighs what Dubbo's default weight is (100, as its interface-level
  // URLs and the Nacos adapter say), so instances of both levels and registries balance evenly.
  const base = { address: c.address, weight: dubbo ? 100 : 1, healthy: true, enabled, metadata };

  const endpointsText = meta['dubbo.endpoints'];
  if (typeof endpointsText === 'string' && endpointsText.trim() !== '') {
    let endpoints: unknown;
    try {
      endpoints = JSON.parse(endpointsText);
    } catch {
      return 'payload.metadata."dubbo.endpoints" is not JSON';
    }
    const eps = dubboEndpointsSchema.safeParse(endpoints);
    if (!eps.success) return 'payload.metadata."dubbo.endpoints" is not a list of {port, protocol}';
    if (eps.data.length > 0) return eps.data.map((e) => ({ ...base, port: e.port, protocol: e.protocol }));
  }
  const out: Instance[] = [];
  if (c.port != null)
    out.push({
      ...base,
      port: c.port,
      ...(spring
        ? { protocol: 'http' }
        : dubbo
          ? { protocol: 'dubbo' }
          : curatorProtocol !== undefined
            ? { protocol: curatorProtocol }
            : {}),
    });
  if (c.sslPort != null) out.push({ ...base, port: c.sslPort, ...(spring ? { protocol: 'https' } : {}) });
  if (out.length === 0) return 'missing port (neither port, sslPort nor dubbo.endpoints)';
  return out;
}

function compareInstances(a: Instance, b: Instance): number {
  return a.address < b.address
    ? -1
    : a.address > b.address
      ? 1
      : a.port - b.port || (a.protocol ?? '').localeCompare(b.protocol ?? '');
}

function mostCommon(values: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? '';
}
