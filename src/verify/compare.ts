/**
 * The verifier's pure core: given what each hop shows (already read and parsed) and the clock,
 * say per host and hop whether the change the bridge wrote is there, what differs, and since
 * when. No I/O; the same inputs always give the same report.
 */
import { canonicalJson, shortHash } from '../synth/hash.js';
import { HASH_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SOURCE_LABEL } from '../synth/service-entry.js';
import type { DesiredEntry, Location, Resolution } from '../synth/types.js';
import { isWildcardAddress, listenersFor, selectFilterChain, selectVirtualHost } from './chain-match.js';
import {
  droppedProxyText,
  type DroppedProxyElement,
  type ProxyFilterChain,
  type ProxyListener,
  type ProxyView,
} from './proxy-config.js';
import { droppedText, type DroppedElement, type RegistryEntry } from './registryz.js';
import {
  droppedSynczText,
  isSameOrLaterPush,
  pushVersionOf,
  type DroppedSyncStatus,
  type ProxySyncStatus,
  type XdsKind,
} from './syncz.js';
import {
  hopStatusOfError,
  isFinalError,
  type Expectation,
  type HopCheck,
  type HostReport,
  type HopStatus,
} from './types.js';

/** A ServiceEntry as read from kube (any served version), only the fields compared. */
export interface KubeServiceEntry {
  readonly apiVersion?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly creationTimestamp?: string;
    readonly managedFields?: readonly { readonly manager?: string; readonly time?: string }[];
  };
  readonly spec: {
    readonly hosts?: readonly string[];
    readonly location?: string;
    readonly resolution?: string;
    readonly ports?: readonly { readonly number: number; readonly name?: string; readonly protocol?: string }[];
    readonly addresses?: readonly string[];
    readonly endpoints?: readonly unknown[];
    readonly exportTo?: readonly string[];
  };
}

/** What one hop showed, or why it could not be read; absent = hop not configured. */
export type Observed<T> =
  | { readonly ok: true; readonly source: string; readonly value: T }
  | { readonly ok: false; readonly source: string; readonly error: unknown };

export interface ProxyObservation {
  /** Namespace the proxy runs in (the probe's), for exportTo reasons. */
  readonly namespace?: string;
  readonly view: ProxyView;
  /** Which kinds this source holds (a cluster-only dump says nothing about routes). */
  readonly kinds: ReadonlySet<XdsKind>;
  /** Per resource name, the response (version_info) that last carried it and when it arrived. */
  readonly received?: ReadonlyMap<string, { readonly version: string; readonly at: number }>;
}

export interface SyncObservation {
  /** istiod's id of the proxy (`<pod>.<namespace>`). */
  readonly proxyId: string;
  readonly proxies: readonly ProxySyncStatus[];
  /** syncz elements that could not be read (reported, never silently ignored). */
  readonly dropped?: readonly DroppedSyncStatus[];
}

export interface HopInputs {
  readonly now: number;
  readonly kube?: Observed<readonly KubeServiceEntry[]>;
  readonly registry?: Observed<readonly RegistryEntry[]>;
  /** registryz elements that could not be read (reported, never silently ignored). */
  readonly registryDropped?: readonly DroppedElement[];
  readonly proxy?: Observed<ProxyObservation>;
  readonly sync?: Observed<SyncObservation>;
}

// ---------------------------------------------------------------------------------------------
// expectations

/** The expectation for a ServiceEntry the bridge wants (after synth). */
export function expectationOfDesired(entry: DesiredEntry): Expectation {
  return expectationOfObject({ metadata: entry.object.metadata, spec: entry.object.spec }, entry.hash);
}

/** The expectation from an object (owned, in kube): its spec as written, its hash annotation. */
export function expectationOfObject(object: KubeServiceEntry, hash?: string): Expectation {
  const spec = object.spec;
  const h = hash ?? object.metadata.annotations?.[HASH_ANNOTATION];
  return {
    host: spec.hosts?.[0] ?? '',
    namespace: object.metadata.namespace,
    name: object.metadata.name,
    ...(h !== undefined ? { hash: h } : {}),
    location: (spec.location ?? 'MESH_EXTERNAL') as Location,
    resolution: (spec.resolution ?? 'NONE') as Resolution,
    ports: (spec.ports ?? []).map((p) => ({ number: p.number, name: p.name ?? '', protocol: p.protocol ?? 'TCP' })),
    ...(spec.exportTo && spec.exportTo.length > 0 ? { exportTo: [...spec.exportTo] } : {}),
    ...(spec.addresses && spec.addresses.length > 0 ? { addresses: [...spec.addresses] } : {}),
    endpoints: spec.endpoints?.length ?? 0,
  };
}

// ---------------------------------------------------------------------------------------------
// per hop

const httpProtocols = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);
const sniProtocols = new Set(['HTTPS', 'TLS']);

export function clusterName(port: number, host: string): string {
  return `outbound|${port}||${host}`;
}

/** ServiceEntry resolution → the Envoy cluster type istiod builds (pilot/pkg/networking/core/cluster_builder.go). */
export function clusterTypeFor(resolution: string): string {
  switch (resolution) {
    case 'STATIC':
      return 'EDS';
    case 'DNS':
      return 'STRICT_DNS';
    case 'DNS_ROUND_ROBIN':
      return 'LOGICAL_DNS';
    default:
      return 'ORIGINAL_DST';
  }
}

function portsText(
  ports: readonly { number: number; protocol?: string | undefined; name?: string | undefined }[],
): string {
  return ports.length === 0
    ? 'none'
    : [...ports]
        .sort((a, b) => a.number - b.number)
        .map((p) => `${p.number}/${p.protocol ?? '?'}`)
        .join(', ');
}

function specDiff(
  where: string,
  expect: Expectation,
  got: {
    ports: readonly { number: number; protocol?: string | undefined; name?: string | undefined }[];
    resolution?: string | undefined;
    location?: string | undefined;
    exportTo?: readonly string[] | undefined;
  },
): string[] {
  const out: string[] = [];
  const want = portsText(expect.ports);
  const have = portsText(got.ports);
  if (want !== have) out.push(`ports differ: ${where} has ${have}, the bridge wrote ${want}`);
  if (got.resolution !== undefined && got.resolution !== expect.resolution)
    out.push(`resolution differs: ${where} has ${got.resolution}, the bridge wrote ${expect.resolution}`);
  if (got.location !== undefined && got.location !== expect.location)
    out.push(`location differs: ${where} has ${got.location}, the bridge wrote ${expect.location}`);
  if (expect.exportTo !== undefined && got.exportTo !== undefined) {
    const norm = (l: readonly string[]) =>
      [...new Set(l.map((n) => (n === '.' ? expect.namespace : n)))].sort().join(',');
    if (norm(got.exportTo) !== norm(expect.exportTo))
      out.push(
        `exportTo differs: ${where} has [${got.exportTo.join(', ')}], the bridge wrote [${expect.exportTo.join(', ')}]`,
      );
  }
  return out;
}

function ageOf(since: string | undefined, now: number): { since?: string; ageMs?: number } {
  if (since === undefined) return {};
  const t = Date.parse(since);
  if (Number.isNaN(t)) return { since };
  return { since: new Date(t).toISOString(), ageMs: Math.max(0, now - t) };
}

function check(
  hop: HopCheck['hop'],
  status: HopStatus,
  detail: readonly string[],
  source: string,
  since: string | undefined,
  now: number,
  final = false,
): HopCheck {
  return { hop, status, detail, source, ...ageOf(since, now), ...(final ? { final } : {}) };
}

function errorCheck(hop: HopCheck['hop'], o: { source: string; error: unknown }): HopCheck {
  const message = o.error instanceof Error ? o.error.message : String(o.error);
  return {
    hop,
    status: hopStatusOfError(o.error),
    detail: [message],
    source: o.source,
    ...(isFinalError(o.error) ? { final: true } : {}),
  };
}

export function checkKube(expect: Expectation, o: Observed<readonly KubeServiceEntry[]>, now: number): HopCheck {
  if (!o.ok) return errorCheck('kube', o);
  const withHost = o.value.filter((se) => se.spec.hosts?.includes(expect.host));
  const se =
    withHost.find((s) => s.metadata.namespace === expect.namespace && s.metadata.name === expect.name) ??
    withHost.find((s) => s.metadata.namespace === expect.namespace);
  if (!se) {
    const elsewhere = withHost.map((s) => `${s.metadata.namespace}/${s.metadata.name}`);
    return check(
      'kube',
      'missing',
      [
        `no ServiceEntry ${expect.namespace}/${expect.name} with host ${expect.host}${elsewhere.length ? ` (host found in ${elsewhere.join(', ')})` : ''}`,
      ],
      o.source,
      undefined,
      now,
    );
  }
  const detail: string[] = [];
  const labels = se.metadata.labels ?? {};
  const foreign = labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE;
  if (foreign) detail.push(`${se.metadata.namespace}/${se.metadata.name} is not managed by registry-bridge`);
  const annotated = se.metadata.annotations?.[HASH_ANNOTATION];
  if (expect.hash !== undefined && annotated !== expect.hash)
    detail.push(`content hash is ${annotated ?? 'absent'}, the bridge wants ${expect.hash} (update not applied yet)`);
  if (annotated !== undefined) {
    // Same canonical form as synthServiceEntry: a different hash means the spec was edited by hand.
    const ownLabels = { [MANAGED_BY_LABEL]: labels[MANAGED_BY_LABEL], [SOURCE_LABEL]: labels[SOURCE_LABEL] };
    const actual = shortHash(canonicalJson({ spec: se.spec, labels: ownLabels }), 16);
    if (actual !== annotated) detail.push('spec does not match its content-hash annotation: edited outside the bridge');
  }
  detail.push(
    ...specDiff('kube', expect, {
      ports: se.spec.ports ?? [],
      resolution: se.spec.resolution ?? 'NONE',
      location: se.spec.location ?? 'MESH_EXTERNAL',
      exportTo: se.spec.exportTo ?? [],
    }).filter((d) => expect.exportTo !== undefined || !d.startsWith('exportTo')),
  );
  const byUs = se.metadata.managedFields
    ?.filter((m) => m.manager === 'registry-bridge' && m.time)
    .map((m) => m.time!)
    .sort();
  const since = byUs?.[byUs.length - 1] ?? se.metadata.creationTimestamp;
  return check('kube', detail.length ? 'differs' : 'ok', detail, o.source, since, now, foreign);
}

export function checkRegistry(
  expect: Expectation,
  o: Observed<readonly RegistryEntry[]>,
  now: number,
  dropped: readonly DroppedElement[] = [],
): HopCheck {
  if (!o.ok) return errorCheck('istiod', o);
  const withHost = o.value.filter((e) => e.hostname === expect.host);
  const mine = withHost.filter((e) => e.namespace === undefined || e.namespace === expect.namespace);
  // An element of this host that could not be read: the answer is unknown, never a pass.
  const unreadable = dropped.filter((d) => d.hostname === expect.host).map(droppedText);
  if (unreadable.length > 0) return check('istiod', 'error', unreadable, o.source, undefined, now, true);
  if (mine.length === 0) {
    const others = withHost.map((e) => `${e.registry ?? '?'} ${e.namespace ?? '?'}`);
    const anonymous = dropped.filter((d) => d.hostname === undefined);
    return check(
      'istiod',
      'missing',
      [
        `host ${expect.host} not in istiod's registry${others.length ? ` (only from ${others.join(', ')})` : ''}`,
        ...(anonymous.length > 0
          ? [
              `${anonymous.length} registryz element(s) without a readable hostname were skipped: ${droppedText(anonymous[0]!)}`,
            ]
          : []),
      ],
      o.source,
      undefined,
      now,
    );
  }
  const e = mine[0]!;
  const detail: string[] = [];
  const foreign = e.registry !== undefined && e.registry !== 'External';
  if (foreign) detail.push(`host comes from registry ${e.registry}, not from a ServiceEntry`);
  if (e.objectName !== undefined && e.objectName !== expect.name)
    detail.push(`host comes from ServiceEntry ${e.namespace ?? '?'}/${e.objectName}, not ${expect.name}`);
  detail.push(
    ...specDiff('istiod', expect, {
      ports: e.ports.map((p) => ({ number: p.port, protocol: p.protocol, name: p.name })),
      resolution: e.resolution,
      location: e.meshExternal === undefined ? undefined : e.meshExternal ? 'MESH_EXTERNAL' : 'MESH_INTERNAL',
      exportTo: e.exportTo,
    }),
  );
  const dupes = withHost.filter((x) => x.namespace !== undefined && x.namespace !== expect.namespace);
  if (dupes.length > 0)
    detail.push(
      `host also defined in namespace ${[...new Set(dupes.map((d) => d.namespace))].join(', ')}: Istio misbehaves with two entries for one host`,
    );
  return check('istiod', detail.length ? 'differs' : 'ok', detail, o.source, e.creationTime, now, foreign);
}

/** Why a proxy in `namespace` would not get the host, when exportTo explains it. */
function exportReason(expect: Expectation, namespace: string | undefined): string | undefined {
  if (namespace === undefined || expect.exportTo === undefined) return undefined;
  const visible = expect.exportTo.some(
    (n) => n === '*' || n === namespace || (n === '.' && expect.namespace === namespace),
  );
  return visible
    ? undefined
    : `the ServiceEntry is exported to [${expect.exportTo.join(', ')}] only: a proxy in namespace ${namespace} does not receive it`;
}

/** The addresses the host's clients connect to: its `addresses`, and with DNS capture what NDS answers. */
const vipsOf = (expect: Expectation, view: ProxyView): string[] => [
  ...(expect.addresses ?? []),
  ...(view.nameTable?.get(expect.host)?.ips ?? []),
];

/**
 * With DNS capture (a name table in the view): a host with an address — its `addresses`, or a
 * listener bound to an address that proxies to its cluster (auto-allocated) — must be in the DNS
 * name table, or its clients resolve it upstream and never reach that listener. A host without
 * any address is resolved upstream by design (Istio leaves it out of the table).
 */
function nameTableCheck(expect: Expectation, view: ProxyView): string | undefined {
  const table = view.nameTable;
  if (!table || table.has(expect.host)) return undefined;
  const clusters = new Set(expect.ports.map((p) => clusterName(p.number, expect.host)));
  const bound = view.listeners.find(
    (l) => !isWildcardAddress(l.address) && l.filterChains.some((fc) => fc.tcpClusters.some((c) => clusters.has(c))),
  );
  if (!expect.addresses?.length && !bound) return undefined;
  return `no entry for ${expect.host} in the DNS name table (NDS), though ${bound ? `listener ${bound.name} is bound to its address` : `it has addresses ${expect.addresses!.join(', ')}`}: a DNS-capturing sidecar resolves it upstream and misses that listener`;
}

const passthrough = new Set(['PassthroughCluster', 'BlackHoleCluster', 'InboundPassthroughCluster']);

/** `outbound|5432||db.example.com` → `db.example.com` (the host a cluster serves). */
const hostOfCluster = (cluster: string): string | undefined =>
  cluster.startsWith('outbound|') ? cluster.split('|')[3] : undefined;

/**
 * A TCP-like port (TCP, TLS, HTTPS, Mongo, …): the listener a connection to the host lands on —
 * its VIP listener (`<vip>_<port>`, from `addresses` or auto-allocated with DNS capture), else
 * `0.0.0.0_<port>` — and the filter chain Envoy picks there (SNI = the host for TLS and HTTPS;
 * Istio leaves `server_names` out on a VIP-bound listener), must proxy to the host's cluster.
 */
function tcpChainCheck(
  expect: Expectation,
  port: number,
  cluster: string,
  tls: boolean,
  view: ProxyView,
): { missing?: string; listener?: ProxyListener } {
  const own = (fc: ProxyFilterChain) => fc.tcpClusters.includes(cluster);
  const candidates = listenersFor(view.listeners, port, vipsOf(expect, view), own);
  if (candidates.length === 0)
    return { missing: `no listener on port ${port} (neither a VIP listener of ${expect.host} nor 0.0.0.0_${port})` };
  const facts = { port, transport: tls ? ('tls' as const) : ('raw_buffer' as const), alpn: [] as string[] };
  const elsewhere: string[] = [];
  for (const { listener, ip } of candidates) {
    const chain = selectFilterChain(listener, {
      ...facts,
      ...(ip !== undefined ? { ip } : {}),
      ...(tls ? { sni: expect.host } : {}),
    });
    if (chain && own(chain)) return { listener };
    const to = chain?.tcpClusters ?? [];
    if (!ip) {
      // The wildcard listener sends this host's connections elsewhere.
      const other = to.map(hostOfCluster).filter((h): h is string => h !== undefined && h !== expect.host);
      const what = tls ? `SNI ${expect.host}` : 'TCP connections';
      if (other.length > 0)
        elsewhere.push(
          `listener ${listener.name} sends ${what} to ${to.join(', ')}, not ${cluster}: another ServiceEntry holds port ${port}: ${[...new Set(other)].join(', ')}${tls ? '' : ' (give each TCP ServiceEntry its own addresses)'}`,
        );
      else if (to.some((c) => passthrough.has(c)) || chain?.rdsName || chain?.inlineRoute)
        elsewhere.push(
          `listener ${listener.name} sends ${what} to ${to.join(', ') || 'its HTTP route'}, not ${cluster}`,
        );
    }
  }
  if (elsewhere.length > 0) return { missing: elsewhere.join('; ') };
  return {
    missing: tls
      ? `no listener filter chain for server name ${expect.host} with tcp_proxy to ${cluster}`
      : `no listener filter chain with tcp_proxy to ${cluster}`,
  };
}

/**
 * An HTTP port (HTTP, HTTP2, GRPC): the route configuration the port's listener names
 * (`<port>` on 0.0.0.0; `<host>:<port>` on a VIP listener of a sniffed port), or without
 * listeners either name, and the virtual host Envoy picks for the Host header.
 */
function httpRouteCheck(
  expect: Expectation,
  port: number,
  cluster: string,
  view: ProxyView,
  haveListeners: boolean,
): { missing?: string; differs?: string; routeName?: string } {
  const names: string[] = [];
  if (haveListeners) {
    const own = (fc: ProxyFilterChain) => fc.rdsName === `${expect.host}:${port}`;
    for (const { listener, ip } of listenersFor(view.listeners, port, vipsOf(expect, view), own)) {
      const chain = selectFilterChain(listener, {
        port,
        transport: 'raw_buffer',
        alpn: ['http/1.1'],
        ...(ip !== undefined ? { ip } : {}),
      });
      if (chain?.rdsName && !names.includes(chain.rdsName)) names.push(chain.rdsName);
    }
  }
  for (const n of [String(port), `${expect.host}:${port}`]) if (!names.includes(n)) names.push(n);
  const present = names.filter((n) => view.routes.has(n));
  if (present.length === 0) return { missing: `no route configuration "${port}"` };
  let fallback: string | undefined;
  for (const routeName of present) {
    const vh = selectVirtualHost(view.routes.get(routeName)!.virtualHosts, expect.host, port);
    if (!vh || vh.domains.includes('*')) {
      fallback ??= `route configuration "${routeName}" has no virtual host ${expect.host}:${port}${vh ? ` (the Host header falls to ${vh.name}: ${vh.clusters.join(', ') || 'no cluster'})` : ''}`;
      continue;
    }
    if (!vh.clusters.includes(cluster))
      return {
        routeName,
        differs: `virtual host ${vh.name} routes to ${vh.clusters.join(', ') || 'no cluster'}, not ${cluster}`,
      };
    return { routeName };
  }
  return { missing: fallback! };
}

/** Whether a dropped proxy element was one of the host's: its cluster, EDS or `<host>:<port>` route. */
function isHostElement(expect: Expectation, d: DroppedProxyElement): boolean {
  if (d.name === undefined) return false;
  return (
    expect.ports.some((p) => d.name === clusterName(p.number, expect.host)) || d.name.startsWith(`${expect.host}:`)
  );
}

export function checkProxy(expect: Expectation, o: Observed<ProxyObservation>, now: number): HopCheck {
  if (!o.ok) return errorCheck('proxy', o);
  const { view, kinds } = o.value;
  // An element of this host that could not be read: the answer is unknown, never a pass.
  const unreadable = view.droppedElements.filter((d) => isHostElement(expect, d)).map(droppedProxyText);
  if (unreadable.length > 0) return check('proxy', 'error', unreadable, o.source, undefined, now, true);
  const missing: string[] = [];
  const differs: string[] = [];
  const times: string[] = [];
  const seen = (name: string, lastUpdated: string | undefined) => {
    const r = o.value.received?.get(name);
    if (r) times.push(new Date(r.at).toISOString());
    else if (lastUpdated) times.push(lastUpdated);
  };
  let checked = false;
  const hostClusters = [...view.clusters.keys()].filter(
    (n) => n.endsWith(`||${expect.host}`) && n.startsWith('outbound|'),
  );
  for (const port of expect.ports) {
    const protocol = port.protocol.toUpperCase();
    if (protocol === 'UDP') continue; // istiod builds no cluster for UDP
    const name = clusterName(port.number, expect.host);
    if (kinds.has('cluster')) {
      checked = true;
      const c = view.clusters.get(name);
      if (!c) {
        const other = hostClusters.filter(
          (n) => n !== name && !expect.ports.some((p) => clusterName(p.number, expect.host) === n),
        );
        missing.push(`no cluster ${name}${other.length ? ` (has ${other.join(', ')}: port differs)` : ''}`);
      } else {
        seen(name, c.lastUpdated);
        const want = clusterTypeFor(expect.resolution);
        if (c.type !== want)
          differs.push(`cluster ${name} is ${c.type}, resolution ${expect.resolution} gives ${want}`);
        const eds = view.endpoints?.get(name);
        if (want === 'EDS' && eds && expect.endpoints > 0 && eds.endpoints !== expect.endpoints) {
          differs.push(`cluster ${name} has ${eds.endpoints} endpoints, the ServiceEntry lists ${expect.endpoints}`);
        }
      }
    }
    if (httpProtocols.has(protocol) && kinds.has('route')) {
      checked = true;
      const r = httpRouteCheck(expect, port.number, name, view, kinds.has('listener'));
      if (r.missing) missing.push(r.missing);
      else {
        seen(r.routeName!, view.routes.get(r.routeName!)?.lastUpdated);
        if (r.differs) differs.push(r.differs);
      }
    } else if (!httpProtocols.has(protocol) && kinds.has('listener')) {
      checked = true;
      const r = tcpChainCheck(expect, port.number, name, sniProtocols.has(protocol), view);
      if (r.missing) missing.push(r.missing);
      else seen(r.listener!.name, r.listener!.lastUpdated);
    }
  }
  const nds = kinds.has('listener') ? nameTableCheck(expect, view) : undefined;
  if (nds) missing.push(nds);
  if (missing.length > 0) {
    const reason = exportReason(expect, o.value.namespace);
    const anonymous = view.droppedElements.filter((d) => d.name === undefined);
    if (anonymous.length > 0)
      missing.push(
        `${anonymous.length} proxy config element(s) without a readable name were skipped: ${droppedProxyText(anonymous[0]!)}`,
      );
    return check('proxy', 'missing', reason ? [...missing, reason] : missing, o.source, undefined, now, !!reason);
  }
  if (!checked) {
    // A source with nothing this host needs (an empty dump, a bootstrap-only dump) proves nothing.
    const has = [...kinds].sort().join(', ') || 'nothing';
    return check(
      'proxy',
      'error',
      [
        `nothing to check: the proxy source holds ${has}, the host needs clusters${expect.ports.length ? ', routes or listeners' : ''}`,
      ],
      o.source,
      undefined,
      now,
      true,
    );
  }
  const since = times.sort()[times.length - 1];
  return check('proxy', differs.length ? 'differs' : 'ok', differs, o.source, since, now);
}

/**
 * The proxy ACKed the push that carried the change: for each kind the host needs, istiod's
 * last ACKed nonce is the push `needed` names (from the probe) or a later one; without that
 * knowledge (a real pod), sent = ACKed.
 */
export function checkSync(
  expect: Expectation,
  o: Observed<SyncObservation>,
  now: number,
  needed: Readonly<Partial<Record<XdsKind, string>>> = {},
): HopCheck {
  if (!o.ok) return errorCheck('sync', o);
  const dropped = o.value.dropped ?? [];
  // This proxy's element could not be read: whether it ACKed is unknown, never a pass.
  const unreadable = dropped.filter((d) => d.proxy === o.value.proxyId).map(droppedSynczText);
  if (unreadable.length > 0) return check('sync', 'error', unreadable, o.source, undefined, now, true);
  const status = o.value.proxies.find((p) => p.proxy === o.value.proxyId);
  if (!status) {
    const anonymous = dropped.filter((d) => d.proxy === undefined);
    return check(
      'sync',
      'missing',
      [
        `proxy ${o.value.proxyId} is not connected to this istiod`,
        ...(anonymous.length > 0
          ? [
              `${anonymous.length} syncz element(s) without a readable proxy id were skipped: ${droppedSynczText(anonymous[0]!)}`,
            ]
          : []),
      ],
      o.source,
      undefined,
      now,
    );
  }
  const kinds = new Set<XdsKind>(['cluster']);
  for (const p of expect.ports) {
    const protocol = p.protocol.toUpperCase();
    kinds.add(httpProtocols.has(protocol) ? 'route' : 'listener');
  }
  const detail: string[] = [];
  const versions: number[] = [];
  for (const k of [...kinds].sort()) {
    const acked = status.acked[k];
    const sent = status.sent[k];
    const want = needed[k];
    if (!acked) {
      detail.push(`${k}: nothing ACKed yet${sent ? ` (sent ${sent})` : ''}`);
      continue;
    }
    const pv = pushVersionOf(acked);
    if (pv) versions.push(pv.time);
    if (want !== undefined) {
      const later = isSameOrLaterPush(acked, want);
      if (later === false || (later === undefined && acked !== want))
        detail.push(`${k}: ACKed ${acked}, the change came in push ${want}`);
    } else if (sent && sent !== acked) detail.push(`${k}: sent ${sent}, ACKed ${acked}`);
  }
  const since = versions.length ? new Date(Math.max(...versions)).toISOString() : undefined;
  return check('sync', detail.length ? 'missing' : 'ok', detail, o.source, since, now);
}

// ---------------------------------------------------------------------------------------------
// per host

export interface CheckOptions {
  /** Per xDS kind, the push version in which the probe first saw the host (for the sync hop). */
  readonly needed?: Readonly<Partial<Record<XdsKind, string>>>;
}

export function checkHost(expect: Expectation, inputs: HopInputs, options: CheckOptions = {}): HostReport {
  const now = inputs.now;
  const skipped = (hop: HopCheck['hop'], why: string): HopCheck => ({ hop, status: 'skipped', detail: [why] });
  const proxy = inputs.proxy ? checkProxy(expect, inputs.proxy, now) : skipped('proxy', 'no xDS probe or config dump');
  let sync = inputs.sync
    ? checkSync(expect, inputs.sync, now, options.needed)
    : skipped('sync', 'needs the xDS probe (or --proxy-id) and the istiod debug endpoint');
  // An ACK proves nothing about a change the proxy does not have.
  if (inputs.sync && proxy.status !== 'ok' && proxy.status !== 'skipped' && sync.status === 'ok') {
    sync = { ...sync, status: 'missing', detail: ['the proxy has not received the change: nothing to ACK'] };
  }
  const hops: HopCheck[] = [
    inputs.kube ? checkKube(expect, inputs.kube, now) : skipped('kube', 'no kube access configured'),
    inputs.registry
      ? checkRegistry(expect, inputs.registry, now, inputs.registryDropped)
      : skipped('istiod', 'no istiod debug endpoint or registryz file'),
    proxy,
    sync,
  ];
  return {
    host: expect.host,
    namespace: expect.namespace,
    name: expect.name,
    ok: hops.every((h) => h.status === 'ok' || h.status === 'skipped'),
    hops,
  };
}
