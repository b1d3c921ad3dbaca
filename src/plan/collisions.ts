import type { Change, ObservedEntry } from './plan.js';

/** A port as Istio builds listeners from it. */
export interface CollisionPort {
  readonly number: number;
  /** Istio protocol name as written in the ServiceEntry ('' or missing = unset). */
  readonly protocol?: string;
}

/** Two ServiceEntries Istio would merge or shadow. */
export interface Collision {
  readonly kind: 'host' | 'port';
  /** `namespace/name` of both, the first the one Istio keeps (see findCollisions). */
  readonly entries: readonly [CollisionSide, CollisionSide];
  /** The shared TCP-like port (kind `port`). */
  readonly port?: number;
  readonly reason: string;
}

export interface CollisionSide {
  readonly namespace: string;
  readonly name: string;
  readonly host: string;
  /** Written by this bridge (desired), or only observed in the cluster. */
  readonly desired: boolean;
}

/**
 * Protocols whose outbound listener Istio builds with a catch-all TCP filter chain, matched
 * without host names (pilot/pkg/networking/core/listener.go, buildSidecarOutboundListener):
 * TCP, Mongo, MySQL, Redis (ListenerProtocolTCP), and any unset or unknown protocol
 * (protocol.Unsupported → ListenerProtocolAuto: an HTTP chain by ALPN plus that TCP chain).
 * Not: the HTTP family (HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-Web share a port through virtual
 * hosts), UDP (no listener), and HTTPS and TLS: without addresses their chain on 0.0.0.0 matches
 * the SNI of the entry's host (tls.go, buildSidecarOutboundTLSFilterChainOpts), so distinct hosts
 * never take each other's connections. Names are case-insensitive, as protocol.Parse reads them.
 */
const NOT_TCP_LIKE = new Set(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB', 'UDP', 'HTTPS', 'TLS']);
export function isTcpLike(protocol: string | undefined): boolean {
  return !NOT_TCP_LIKE.has((protocol ?? '').toUpperCase());
}

/** What Istio builds an entry's outbound listeners from, wherever it lives. */
export interface ListenerFields {
  readonly ports?: readonly CollisionPort[];
  readonly addresses?: readonly string[];
  readonly exportTo?: readonly string[];
  readonly resolution?: string;
  /** Declares endpoints or a workloadSelector (with resolution NONE: a listener per endpoint). */
  readonly endpointsOrSelector?: boolean;
}

/**
 * The ports of an entry that Istio serves on a sidecar's `0.0.0.0:<port>` listener with a
 * catch-all TCP chain (buildSidecarOutboundListeners): TCP-like ports (isTcpLike) of an entry
 * with no `addresses` (with addresses the listener is `<address>:<port>`, or a CIDR match),
 * whatever its resolution (STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS all leave the address
 * 0.0.0.0) except NONE with endpoints or a workloadSelector, which gets a listener per endpoint
 * address instead. `location` (MESH_INTERNAL or MESH_EXTERNAL) plays no part.
 */
export function wildcardTcpPorts(e: ListenerFields): number[] {
  if ((e.addresses?.length ?? 0) > 0) return [];
  if ((e.resolution ?? '').toUpperCase() === 'NONE' && e.endpointsOrSelector === true) return [];
  return [...new Set((e.ports ?? []).filter((p) => isTcpLike(p.protocol)).map((p) => p.number))];
}

interface Entry extends CollisionSide, ListenerFields {
  /**
   * metadata.creationTimestamp: '' when it exists but is not known (older than anything this
   * run creates), undefined when this plan creates it (the youngest).
   */
  readonly created: string | undefined;
}

/** Visibility as Istio indexes it (PushContext.initServiceRegistry). */
type Visibility =
  | { readonly kind: 'public' }
  | { readonly kind: 'none' }
  /** Namespace → 0 (private: `.` or its own namespace by name) or 1 (exported to it by name). */
  | { readonly kind: 'named'; readonly tiers: ReadonlyMap<string, 0 | 1> };

function visibilityOf(e: ListenerFields & { readonly namespace: string }): Visibility {
  const to = e.exportTo ?? [];
  if (to.length === 0 || to.includes('*')) return { kind: 'public' };
  if (to.includes('~')) return { kind: 'none' };
  const tiers = new Map<string, 0 | 1>();
  for (const t of to) {
    const ns = t === '.' ? e.namespace : t;
    tiers.set(ns, ns === e.namespace || tiers.get(ns) === 0 ? 0 : 1);
  }
  return { kind: 'named', tiers };
}

/**
 * Istio's order of the services a sidecar in one namespace sees, for one tier: oldest first by
 * creation time, then host name, then namespace (model.SortServicesByCreationTime; a
 * ServiceEntry's service is named by its host).
 */
function olderFirst(a: Entry, b: Entry): number {
  const x = a.created ?? '\uffff';
  const y = b.created ?? '\uffff';
  if (x !== y) return x < y ? -1 : 1;
  if (a.host !== b.host) return a.host < b.host ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Namespaces no entry names in its exportTo: only public entries are seen there. */
const ELSEWHERE_VIEW = '';

/**
 * Entries Istio would merge or shadow, among those that exist after the plan is applied (the
 * desired ones it writes or keeps, the foreign ones observed in the target namespaces, and, for
 * ports, the entries of every other namespace the sink reads: ObservedEntry.elsewhere):
 *
 * - the same host in two entries of the target namespaces (Istio keeps one service per host;
 *   hosts held in other namespaces are ./elsewhere.ts's);
 * - a port that two entries with different hosts serve on `0.0.0.0:<port>` (wildcardTcpPorts)
 *   and that a sidecar sees both of. Such a sidecar has one `0.0.0.0:<port>` listener whose
 *   catch-all TCP chain forwards every connection on that port (to any address without a
 *   listener of its own) to one of them; the others' chains are dropped as conflicts
 *   (listener.go, mergeTCPFilterChains; pilot_conflict_outbound_listener_tcp_over_current_tcp).
 *   The one that keeps it is the first service the sidecar's scope lists: those private to the
 *   sidecar's namespace (`exportTo` `.` or that namespace), then those exported to it by name,
 *   then the public ones (`exportTo` unset or `*`), each group oldest first by creation time,
 *   then host name, then namespace (PushContext.servicesExportedToNamespace,
 *   SortServicesByCreationTime). So the keeper depends on the sidecar's namespace: the check
 *   looks at every namespace an entry names and at "any other namespace" (public entries
 *   only). Entries this plan creates are the youngest. Sidecars whose Sidecar resource narrows
 *   what they import, and sidecars with DNS proxying (which then listen on each entry's
 *   auto-allocated address), may see less; the check assumes the default scope.
 *
 * A pair is reported when the bridge writes at least one side. Each collision names the entry
 * that keeps the port first. Ordered, deterministic.
 */
export function findCollisions(changes: readonly Change[], observed: readonly ObservedEntry[]): Collision[] {
  const entries = new Map<string, Entry>();
  const gone = new Set<string>();
  for (const c of changes) {
    const id = `${c.namespace}/${c.name}`;
    if (c.action === 'delete') gone.add(id);
    const d = c.desired;
    if (!d || !(c.action === 'create' || c.action === 'update' || c.action === 'unchanged')) continue;
    const spec = d.object.spec;
    entries.set(id, {
      namespace: d.namespace,
      name: d.name,
      host: d.host,
      desired: true,
      ports: spec.ports,
      addresses: [],
      exportTo: spec.exportTo ?? [],
      resolution: spec.resolution,
      endpointsOrSelector: (spec.endpoints?.length ?? 0) > 0,
      created: c.action === 'create' && c.applied !== true ? undefined : (c.observed?.created ?? ''),
    });
  }
  for (const o of observed) {
    const id = `${o.namespace}/${o.name}`;
    if (entries.has(id) || gone.has(id) || o.hosts.length === 0) continue;
    // Entries elsewhere count for ports only (their hosts are ./elsewhere.ts's).
    if (o.elsewhere && wildcardTcpPorts(o).length === 0) continue;
    for (const host of o.hosts)
      entries.set(`${id}#${host}`, {
        namespace: o.namespace,
        name: o.name,
        host,
        desired: false,
        ports: o.ports ?? [],
        addresses: o.addresses ?? [],
        exportTo: o.exportTo ?? [],
        ...(o.resolution !== undefined ? { resolution: o.resolution } : {}),
        ...(o.endpointsOrSelector ? { endpointsOrSelector: true } : {}),
        created: o.created ?? '',
      });
  }

  const all = [...entries.values()];
  const collisions: Collision[] = [];
  const elsewhere = new Set(observed.filter((o) => o.elsewhere).map((o) => `${o.namespace}/${o.name}`));
  const byHost = new Map<string, Entry>();
  for (const e of [...all].sort(olderFirst)) {
    if (elsewhere.has(`${e.namespace}/${e.name}`)) continue;
    const first = byHost.get(e.host);
    if (!first) byHost.set(e.host, e);
    else if (first.desired || e.desired)
      collisions.push({
        kind: 'host',
        entries: [side(first), side(e)],
        reason: `host ${e.host} is in ServiceEntry ${first.namespace}/${first.name} and ${e.namespace}/${e.name}; Istio keeps the first`,
      });
  }

  const byPort = new Map<number, Entry[]>();
  for (const e of all)
    for (const p of wildcardTcpPorts(e)) {
      const list = byPort.get(p);
      if (list) list.push(e);
      else byPort.set(p, [e]);
    }
  for (const [port, list] of [...byPort].sort((a, b) => a[0] - b[0]))
    if (list.length > 1 && list.some((e) => e.desired)) collisions.push(...portCollisions(port, list));
  return collisions;
}

/** The pairs (keeper, shadowed) on one port, over every namespace view (see findCollisions). */
function portCollisions(port: number, list: readonly Entry[]): Collision[] {
  const publics: Entry[] = [];
  /** view namespace → [entry, tier] of the entries exported to it by name or privately. */
  const named = new Map<string, [Entry, 0 | 1][]>();
  for (const e of list) {
    const v = visibilityOf(e);
    if (v.kind === 'public') publics.push(e);
    else if (v.kind === 'named')
      for (const [ns, tier] of v.tiers) {
        const at = named.get(ns);
        if (at) at.push([e, tier]);
        else named.set(ns, [[e, tier]]);
      }
  }
  publics.sort(olderFirst);
  const publicDesired = publics.filter((e) => e.desired);
  /** keeper → shadowed → the views where it holds (insertion order: deterministic). */
  const pairs = new Map<Entry, Map<Entry, string[]>>();
  const add = (keeper: Entry, shadowed: Entry, view: string) => {
    if (keeper === shadowed || keeper.host === shadowed.host || !(keeper.desired || shadowed.desired)) return;
    let byShadowed = pairs.get(keeper);
    if (!byShadowed) pairs.set(keeper, (byShadowed = new Map()));
    const where = byShadowed.get(shadowed);
    if (where) where.push(view);
    else byShadowed.set(shadowed, [view]);
  };
  const views: [string, [Entry, 0 | 1][]][] = [
    [ELSEWHERE_VIEW, []],
    ...[...named].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
  ];
  for (const [view, local] of views) {
    const ordered = [...local].sort((a, b) => a[1] - b[1] || olderFirst(a[0], b[0])).map(([e]) => e);
    const keeper = ordered[0] ?? publics[0];
    if (!keeper) continue;
    const seen = ordered.length + publics.length;
    if (seen < 2) continue;
    // Everyone else seen there is shadowed by the keeper; only pairs with a side of ours count.
    const others = keeper.desired ? [...ordered, ...publics] : [...ordered.filter((e) => e.desired), ...publicDesired];
    for (const e of others) add(keeper, e, view);
  }
  const out: Collision[] = [];
  for (const [keeper, byShadowed] of pairs)
    for (const [shadowed, where] of byShadowed)
      out.push({
        kind: 'port',
        port,
        entries: [side(keeper), side(shadowed)],
        reason:
          `TCP port ${port} of ${shadowed.host} (${shadowed.namespace}/${shadowed.name}) is shadowed by ${keeper.host} ` +
          `(${keeper.namespace}/${keeper.name}) for sidecars ${describeViews(where)}: neither has addresses, so those sidecars ` +
          `send all of 0.0.0.0:${port} to ${keeper.host} (${why(keeper, shadowed, where)})`,
      });
  return out;
}

function describeViews(views: readonly string[]): string {
  const names = views.filter((v) => v !== ELSEWHERE_VIEW);
  const other = views.includes(ELSEWHERE_VIEW);
  if (names.length === 0) return 'in every namespace that sees both';
  return `in namespace${names.length > 1 ? 's' : ''} ${names.join(', ')}${other ? ' and every other namespace that sees both' : ''}`;
}

/** Why Istio puts the keeper first, in the first namespace listed. */
function why(keeper: Entry, shadowed: Entry, views: readonly string[]): string {
  const view = views[0] ?? ELSEWHERE_VIEW;
  const tier = (e: Entry): number => {
    const v = visibilityOf(e);
    return v.kind === 'named' ? (v.tiers.get(view) ?? 2) : 2;
  };
  const [k, s] = [tier(keeper), tier(shadowed)];
  if (k < s)
    return k === 0
      ? `private to ${view}, listed before entries exported by name or to everyone`
      : `exported to ${view} by name, listed before entries exported to everyone`;
  const age = (e: Entry) =>
    e.created === undefined ? 'created by this run' : e.created === '' ? 'existing' : `created ${e.created}`;
  if (keeper.created !== shadowed.created) return `the older: ${age(keeper)}, the other ${age(shadowed)}`;
  return `same creation time, first by host name`;
}

function side(e: Entry): CollisionSide {
  return { namespace: e.namespace, name: e.name, host: e.host, desired: e.desired };
}
