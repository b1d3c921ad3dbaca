import { isIP } from 'node:net';
import type { Instance, RegistryService } from '../model/service.js';
import { serviceKeyString } from '../model/service.js';
import { isValidLabel } from '../model/labels.js';
import { endpointAddressProblem, portNameProblem } from '../model/names.js';
import { defaultSecretKeys, type SecretKeyMatcher } from '../redact.js';
import { canonicalJson, shortHash, sortKeysDeep } from './hash.js';
import { objectNameForHost, renderHost } from './naming.js';
import { mapProtocol } from './protocol.js';
import { serviceEntryProblems } from './validate.js';
import type {
  IstioProtocol,
  Location,
  Resolution,
  ServiceEntryObject,
  ServiceEntrySpec,
  ServicePort,
  SynthNote,
  SynthResult,
  WorkloadEndpoint,
} from './types.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'registry-bridge';
export const SOURCE_LABEL = 'registry-bridge.io/source';
/**
 * Annotation of a ServiceEntry whose endpoints several configured sources publish: their names,
 * comma-separated, in configuration order. The source label names the first of them.
 */
export const SOURCES_ANNOTATION = 'registry-bridge.io/sources';
export const SERVICE_ANNOTATION = 'registry-bridge.io/service';
export const HASH_ANNOTATION = 'registry-bridge.io/content-hash';

/**
 * Metadata keys that change on every restart or describe the registry's bookkeeping: never
 * endpoint labels. Secret-like keys are refused separately, by {@link SynthOptions.secretMetadata}.
 */
export const defaultExcludedMetadata: readonly string[] = [
  'timestamp',
  'pid',
  'methods',
  'accesslog',
  'anyhost',
  'dubbo',
  'release',
  'revision',
  'deprecated',
  'generic',
  'side',
  'preserved.register.source',
  'preserved.heart.beat.interval',
  'preserved.heart.beat.timeout',
  'preserved.ip.delete.timeout',
  // Dubbo 3 application level: change on every restart or deploy, or are JSON blobs.
  'remote.timestamp',
  'dubbo.metadata.revision',
  'dubbo.exported-services.revision',
  'dubbo.subscribed-services.revision',
  'dubbo.endpoints',
  'dubbo.metadata-service.url-params',
  'dubbo.metadata-service.urls',
  // Modelled by the instance itself (Dubbo URL weight, Nacos enabled), not labels.
  'weight',
];

export interface SynthOptions {
  /** Host template, e.g. `{service}.{group}.{namespace}.nacos`. */
  readonly hostTemplate: string;
  /** Kubernetes namespace the ServiceEntry is written to. */
  readonly namespace: string;
  readonly apiVersion: string;
  readonly location: Location;
  readonly exportTo?: readonly string[];
  /** Publish unhealthy instances too (default false: they stop receiving traffic). */
  readonly includeUnhealthy: boolean;
  /** Metadata keys never turned into endpoint labels. */
  readonly excludeMetadata: readonly string[];
  /**
   * Metadata keys that look like secrets (`password`, `apiKey`, `spring.datasource.password`…):
   * never endpoint labels, whatever their value. Applied before any label is formed.
   */
  readonly secretMetadata: SecretKeyMatcher;
  /** Registry protocol → Istio protocol, extending the built-in table. */
  readonly protocolOverrides?: Readonly<Record<string, IstioProtocol>>;
}

export const defaultSynthOptions: Omit<SynthOptions, 'hostTemplate' | 'namespace'> = {
  apiVersion: 'networking.istio.io/v1',
  location: 'MESH_INTERNAL',
  includeUnhealthy: false,
  excludeMetadata: defaultExcludedMetadata,
  secretMetadata: defaultSecretKeys,
};

/**
 * Hash of what the bridge owns in a ServiceEntry: the spec and its two ownership labels.
 * Sinks compute it from the object they observe (not from the annotation), so a hand edit of
 * the spec is seen as drift and repaired, while equal content means zero writes.
 */
export function contentHash(spec: unknown, labels: Readonly<Record<string, string | undefined>>): string {
  return shortHash(canonicalJson({ spec, labels: ownedLabels(labels) }), 16);
}

/** The labels the content hash covers. */
function ownedLabels(labels: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  return { [MANAGED_BY_LABEL]: labels[MANAGED_BY_LABEL], [SOURCE_LABEL]: labels[SOURCE_LABEL] };
}

interface PortedInstance {
  readonly instance: Instance;
  readonly protocol: IstioProtocol;
}

const localityRe = /^[^/\s]+(\/[^/\s]+){0,2}$/;
/** Room for the service annotation within Kubernetes' 256 KiB of annotations per object. */
const maxIdentityBytes = 256 * 1024 - 1024;
/** The CRD's `maxProperties` of an endpoint's labels. */
const maxEndpointLabels = 256;

/**
 * The desired ServiceEntry for one registry service. Pure: the same service and options give
 * a byte-identical object. Never throws for bad registry data: the result says what happened.
 */
export function synthServiceEntry(service: RegistryService, options: SynthOptions): SynthResult {
  const notes: SynthNote[] = [];
  const key = service.key;
  const host = renderHost(service, options.hostTemplate);
  if (host instanceof Error) return { kind: 'invalid', key, reason: host.message, notes };
  const name = objectNameForHost(host);

  // 1. Usable instances, deduplicated, each with its Istio protocol.
  const usable: PortedInstance[] = [];
  const seen = new Set<string>();
  for (const inst of service.instances) {
    const where = `${inst.address}:${inst.port}`;
    // A bad instance is dropped and named; the service goes on with the others.
    if (!Number.isInteger(inst.port) || inst.port < 1 || inst.port > 65535) {
      notes.push({ code: 'instance-rejected', instance: where, detail: `${where}: port is not in 1..65535` });
      continue;
    }
    if (!inst.enabled) continue;
    if (!inst.healthy && !options.includeUnhealthy) continue;
    if (!(inst.weight > 0)) continue; // weight 0 = draining
    const endpoint = endpointAddress(inst.address);
    if ('problem' in endpoint) {
      notes.push({ code: 'instance-rejected', instance: where, detail: `${where}: ${endpoint.problem}` });
      continue;
    }
    if (endpoint.stripped !== undefined)
      notes.push({ code: 'address-zone-stripped', detail: `${where}: ${endpoint.stripped}` });
    const address = endpoint.address;
    const mapped = mapProtocol(inst.protocol ?? service.protocol, options.protocolOverrides);
    if (mapped.unknown !== undefined) {
      notes.push({
        code: 'unknown-protocol',
        detail: `${where}: protocol "${mapped.unknown}" is unknown to Istio, using TCP`,
      });
    }
    const dedupKey = `${address}|${inst.port}|${mapped.protocol}`;
    if (seen.has(dedupKey)) {
      notes.push({ code: 'duplicate-instance', detail: `${where}: listed more than once` });
      continue;
    }
    seen.add(dedupKey);
    usable.push({ instance: { ...inst, address }, protocol: mapped.protocol });
  }

  // 2. Service ports: one per protocol (declared ports first, else the most common instance port).
  const ports = servicePorts(service, usable, options, notes);
  if (ports.length === 0) {
    return {
      kind: 'empty',
      key,
      name,
      namespace: options.namespace,
      host,
      reason:
        service.instances.length === 0
          ? 'no instances and no declared ports'
          : 'no usable instance (all unhealthy, disabled, draining or rejected) and no declared ports',
      notes,
    };
  }

  // 3. Endpoints.
  const endpoints = buildEndpoints(usable, ports, options, notes);
  const anyHostname = endpoints.some((e) => isIP(e.address) === 0);
  const resolution: Resolution =
    anyHostname || (endpoints.length === 0 && service.host !== undefined && service.instances.length === 0)
      ? 'DNS'
      : 'STATIC';

  const spec: ServiceEntrySpec = {
    hosts: [host],
    location: options.location,
    resolution,
    ports,
    ...(endpoints.length > 0 ? { endpoints } : {}),
    ...(options.exportTo && options.exportTo.length > 0 ? { exportTo: [...options.exportTo] } : {}),
  };
  const problems = serviceEntryProblems(spec);
  if (problems.length > 0)
    return { kind: 'invalid', key, reason: `Istio would reject it: ${problems.join('; ')}`, notes };

  // Kubernetes refuses an object whose annotations exceed 256 KiB in total (a registry may hold a
  // service name of any length; the annotation carries it).
  const identity = serviceKeyString(key);
  if (Buffer.byteLength(identity) > maxIdentityBytes)
    return {
      kind: 'invalid',
      key,
      reason: `the service identity is ${Buffer.byteLength(identity)} bytes; Kubernetes annotations allow 256 KiB in total`,
      notes,
    };
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [SOURCE_LABEL]: key.source };
  // The spec's keys are sorted once, for the hash and the object alike (the same text as
  // contentHash's canonical JSON, which sorts `labels` before `spec`).
  const sortedSpec = sortKeysDeep(spec);
  const hash = shortHash(JSON.stringify({ labels: sortKeysDeep(ownedLabels(labels)), spec: sortedSpec }), 16);
  // `spec` sorts last among the object's keys.
  const object: ServiceEntryObject = {
    ...sortKeysDeep({
      apiVersion: options.apiVersion,
      kind: 'ServiceEntry' as const,
      metadata: {
        name,
        namespace: options.namespace,
        labels,
        annotations: { [SERVICE_ANNOTATION]: identity, [HASH_ANNOTATION]: hash },
      },
    }),
    spec: sortedSpec,
  };
  return { kind: 'ok', entry: { key, name, namespace: options.namespace, host, hash, object }, notes };
}

/**
 * The address an endpoint can carry, or what is wrong with it. IPv6 is written in its canonical
 * short form (Curator writes `fd00:0:0:0:0:0:0:2`), so one workload announced by two registries
 * is one endpoint. A zone (`%eth0`, Curator's default for a scoped address) names an interface
 * of the registering host and means nothing to Envoy elsewhere: it is stripped, or, for a
 * link-local address, which is unreachable without it, the instance is rejected.
 */
export function endpointAddress(
  raw: string,
): { readonly address: string; readonly stripped?: string } | { readonly problem: string } {
  const lower = raw.toLowerCase().replace(/(?<=[a-z0-9])\.$/, '');
  if (isIP(lower) === 6) {
    const zoneAt = lower.indexOf('%');
    const bare = zoneAt >= 0 ? lower.slice(0, zoneAt) : lower;
    const canonical = new URL(`http://[${bare}]`).hostname.slice(1, -1);
    if (zoneAt < 0) return { address: canonical };
    const zone = lower.slice(zoneAt + 1);
    if (/^fe[89ab]/.test(canonical))
      return {
        problem: `link-local IPv6 address with zone "${zone}" is reachable only on the registering host's link`,
      };
    return { address: canonical, stripped: `IPv6 zone "%${zone}" removed (Envoy cannot use a scoped address)` };
  }
  const problem = endpointAddressProblem(lower);
  return problem === undefined ? { address: lower } : { problem };
}

function servicePorts(
  service: RegistryService,
  usable: readonly PortedInstance[],
  options: SynthOptions,
  notes: SynthNote[],
): ServicePort[] {
  const byProtocol = new Map<IstioProtocol, { number: number; name?: string }>();
  for (const declared of service.ports ?? []) {
    const mapped = mapProtocol(declared.protocol, options.protocolOverrides);
    if (mapped.unknown !== undefined) {
      notes.push({
        code: 'unknown-protocol',
        detail: `declared port ${declared.number}: protocol "${mapped.unknown}" is unknown to Istio, using TCP`,
      });
    }
    if (!byProtocol.has(mapped.protocol)) {
      let name = declared.name;
      const problem = name ? portNameProblem(name) : undefined;
      if (problem !== undefined) {
        notes.push({
          code: 'port-renamed',
          detail: `declared port ${declared.number}: ${problem}; named ${mapped.protocol.toLowerCase()}-${declared.number} instead`,
        });
        name = undefined;
      }
      byProtocol.set(mapped.protocol, { number: declared.number, ...(name ? { name } : {}) });
    }
  }
  const counts = new Map<IstioProtocol, Map<number, number>>();
  for (const { instance, protocol } of usable) {
    if (byProtocol.has(protocol)) continue; // a declared port wins
    let perPort = counts.get(protocol);
    if (!perPort) counts.set(protocol, (perPort = new Map()));
    perPort.set(instance.port, (perPort.get(instance.port) ?? 0) + 1);
  }
  for (const [protocol, perPort] of counts) {
    // The most common port; ties go to the lowest number. Deterministic whatever the order.
    const [number] = [...perPort.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]!;
    byProtocol.set(protocol, { number });
  }
  const ports = [...byProtocol.entries()].map(([protocol, p]) => ({
    number: p.number,
    name: p.name ?? `${protocol.toLowerCase()}-${p.number}`,
    protocol,
  }));
  // Two protocols on the same number cannot both be service ports: keep the first by name.
  const seenNumbers = new Set<number>();
  return ports
    .sort((a, b) => a.number - b.number || a.name.localeCompare(b.name))
    .filter((p) => {
      if (seenNumbers.has(p.number)) {
        notes.push({
          code: 'instance-skipped',
          detail: `port ${p.number} is announced with two protocols; keeping one`,
        });
        return false;
      }
      seenNumbers.add(p.number);
      return true;
    });
}

function buildEndpoints(
  usable: readonly PortedInstance[],
  ports: readonly ServicePort[],
  options: SynthOptions,
  notes: SynthNote[],
): WorkloadEndpoint[] {
  const portByProtocol = new Map(ports.map((p) => [p.protocol, p] as const));
  const weights = usable.map((u) => u.instance.weight);
  const maxWeight = Math.max(...weights, 0);
  const uniformWeight = weights.every((w) => w === weights[0]);
  const excluded = new Set(options.excludeMetadata);
  const isSecret = options.secretMetadata;

  // Instances on the same address with different protocols are one workload (e.g. Dubbo's
  // dubbo + tri ports): merge them into one endpoint while no protocol repeats.
  interface Draft {
    address: string;
    ports: Map<string, number>;
    protocols: Set<IstioProtocol>;
    instance: Instance;
  }
  const drafts: Draft[] = [];
  const sorted = [...usable].sort(
    (a, b) =>
      cmp(a.instance.address, b.instance.address) || a.instance.port - b.instance.port || cmp(a.protocol, b.protocol),
  );
  for (const u of sorted) {
    const port = portByProtocol.get(u.protocol);
    if (!port) {
      notes.push({
        code: 'instance-skipped',
        detail: `${u.instance.address}:${u.instance.port}: protocol ${u.protocol} has no service port`,
      });
      continue;
    }
    let draft = drafts.find((d) => d.address === u.instance.address && !d.protocols.has(u.protocol));
    if (!draft) {
      draft = { address: u.instance.address, ports: new Map(), protocols: new Set(), instance: u.instance };
      drafts.push(draft);
    }
    draft.protocols.add(u.protocol);
    if (u.instance.port !== port.number) draft.ports.set(port.name, u.instance.port);
  }

  for (const d of drafts) {
    const missing = ports.filter((p) => !d.protocols.has(p.protocol)).map((p) => p.name);
    if (missing.length > 0) {
      // A ServiceEntry endpoint serves every port of the entry; Istio cannot exclude one.
      notes.push({
        code: 'partial-ports',
        detail: `${d.address} announces no ${missing.join(', ')}; traffic to those ports may reach it`,
      });
    }
  }
  // Endpoints with equal labels share one object (providers of a service usually carry the same).
  const sharedLabels = new Map<string, Record<string, string>>();
  return drafts.map((d) => {
    let labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(d.instance.metadata).sort(([a], [b]) => cmp(a, b))) {
      if (excluded.has(k)) continue;
      if (isSecret(k)) {
        // The value is never looked at, copied or logged.
        notes.push({ code: 'label-dropped', detail: `${d.address}: metadata "${k}" looks like a secret` });
        continue;
      }
      if (Object.keys(labels).length >= maxEndpointLabels) {
        notes.push({
          code: 'label-dropped',
          detail: `${d.address}: metadata "${k}" is past the ${maxEndpointLabels} labels an endpoint may carry`,
        });
        continue;
      }
      if (!isValidLabel(k, v)) {
        notes.push({ code: 'label-dropped', detail: `${d.address}: metadata "${k}" is not a valid Kubernetes label` });
        continue;
      }
      labels[k] = v;
    }
    const labelsKey = JSON.stringify(labels);
    labels = sharedLabels.get(labelsKey) ?? labels;
    sharedLabels.set(labelsKey, labels);
    let locality: string | undefined;
    if (d.instance.locality !== undefined && d.instance.locality !== '') {
      if (localityRe.test(d.instance.locality)) locality = d.instance.locality;
      else
        notes.push({
          code: 'locality-dropped',
          detail: `${d.address}: locality "${d.instance.locality}" is not region/zone/subzone`,
        });
    }
    const weight = uniformWeight ? undefined : Math.max(1, Math.round((d.instance.weight / maxWeight) * 100));
    return {
      address: d.address,
      ...(d.ports.size > 0 ? { ports: Object.fromEntries([...d.ports].sort(([a], [b]) => cmp(a, b))) } : {}),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(weight !== undefined ? { weight } : {}),
      ...(locality !== undefined ? { locality } : {}),
    };
  });
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
