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
 * Protocols whose outbound listener Istio builds as plain TCP: one filter chain per
 * (listen address, port), matched without host names. HTTP-family ports share a port through
 * virtual hosts, UDP builds no listener; everything else is TCP-like, unknown and unset
 * protocols included. TLS and HTTPS are counted too: without a VirtualService they are
 * forwarded as TCP, and the bridge cannot see VirtualServices.
 */
const NOT_TCP_LIKE = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'UDP']);
export function isTcpLike(protocol: string | undefined): boolean {
  return !NOT_TCP_LIKE.has((protocol ?? '').toUpperCase());
}

interface Entry extends CollisionSide {
  readonly ports: readonly CollisionPort[];
  readonly addresses: readonly string[];
  readonly exportTo: readonly string[];
  /** Exists in the cluster already (Istio orders services by creation time: older first). */
  readonly existing: boolean;
}

/**
 * Entries Istio would merge or shadow, among those that exist after the plan is applied (the
 * desired ones it writes or keeps, and the observed ones it leaves, where the sink says what
 * they hold):
 * - the same host in two entries (Istio merges or drops them by namespace and creation time);
 * - a TCP-like port (isTcpLike) in two entries that have no `addresses` and are both visible
 *   in some namespace (exportTo: unset or `*` everywhere, `.` their own namespace, `~` nowhere).
 *   A sidecar then has one `0.0.0.0:<port>` listener whose single catch-all TCP filter chain
 *   goes to one of them: Istio orders services by creation time, then host name, then
 *   namespace, and the first one keeps the port (pilot/pkg/networking/core/listener.go,
 *   mergeTCPFilterChains; model.SortServicesByCreationTime). Entries that exist already are
 *   older than the ones this plan creates.
 * Each collision names the entry that keeps the port first. Ordered, deterministic.
 */
export function findCollisions(changes: readonly Change[], observed: readonly ObservedEntry[]): Collision[] {
  const entries = new Map<string, Entry>();
  const gone = new Set<string>();
  for (const c of changes) {
    const id = `${c.namespace}/${c.name}`;
    if (c.action === 'delete') gone.add(id);
    const d = c.desired;
    if (!d || !(c.action === 'create' || c.action === 'update' || c.action === 'unchanged')) continue;
    entries.set(id, {
      namespace: d.namespace,
      name: d.name,
      host: d.host,
      desired: true,
      ports: d.object.spec.ports,
      addresses: [],
      exportTo: d.object.spec.exportTo ?? [],
      existing: c.action !== 'create' || c.applied === true,
    });
  }
  for (const o of observed) {
    const id = `${o.namespace}/${o.name}`;
    // Entries elsewhere (namespaces the bridge does not write to) hold hosts only: ./elsewhere.ts.
    if (o.elsewhere || entries.has(id) || gone.has(id) || o.hosts.length === 0) continue;
    for (const host of o.hosts)
      entries.set(`${id}#${host}`, {
        namespace: o.namespace,
        name: o.name,
        host,
        desired: false,
        ports: o.ports ?? [],
        addresses: o.addresses ?? [],
        exportTo: o.exportTo ?? [],
        existing: true,
      });
  }

  const all = [...entries.values()].sort(istioOrder);
  const collisions: Collision[] = [];
  const byHost = new Map<string, Entry>();
  for (const e of all) {
    const first = byHost.get(e.host);
    if (!first) byHost.set(e.host, e);
    else if (first.desired || e.desired)
      collisions.push({
        kind: 'host',
        entries: [side(first), side(e)],
        reason: `host ${e.host} is in ServiceEntry ${first.namespace}/${first.name} and ${e.namespace}/${e.name}; Istio keeps the first`,
      });
  }
  // Per port: the entries on it without addresses, in Istio's order; each later one visible
  // together with an earlier one is shadowed by the first such.
  const byPort = new Map<number, Entry[]>();
  for (const e of all) {
    if (e.addresses.length > 0) continue;
    for (const p of new Set(e.ports.filter((p) => isTcpLike(p.protocol)).map((p) => p.number))) {
      // Appended in place: a fleet of 10,000 entries on one port (Dubbo's 20880) copied the
      // list once per entry, 50 million element copies per full run.
      const list = byPort.get(p);
      if (list) list.push(e);
      else byPort.set(p, [e]);
    }
  }
  for (const [port, list] of [...byPort].sort((a, b) => a[0] - b[0])) {
    for (let i = 1; i < list.length; i++) {
      const e = list[i]!;
      let holder: Entry | undefined;
      for (let j = 0; j < i && holder === undefined; j++) {
        const h = list[j]!;
        if (h.host !== e.host && sharesVisibility(h, e)) holder = h;
      }
      if (!holder || !(holder.desired || e.desired)) continue;
      collisions.push({
        kind: 'port',
        port,
        entries: [side(holder), side(e)],
        reason: `TCP port ${port} of ${e.host} (${e.namespace}/${e.name}) is shadowed by ${holder.host} (${holder.namespace}/${holder.name}): neither has addresses, so sidecars that see both send all of 0.0.0.0:${port} to ${holder.host}`,
      });
    }
  }
  return collisions;
}

function side(e: Entry): CollisionSide {
  return { namespace: e.namespace, name: e.name, host: e.host, desired: e.desired };
}

/** Existing first (older), then host name, then namespace: Istio's order as far as the plan knows it. */
function istioOrder(a: Entry, b: Entry): number {
  if (a.existing !== b.existing) return a.existing ? -1 : 1;
  if (a.host !== b.host) return a.host < b.host ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Where an entry is visible: everywhere, or in these namespaces. */
function visibility(e: Entry): { everywhere: boolean; namespaces: Set<string> } {
  const to = e.exportTo.length === 0 ? ['*'] : e.exportTo;
  const namespaces = new Set<string>();
  let everywhere = false;
  for (const t of to) {
    if (t === '*') everywhere = true;
    else if (t === '.') namespaces.add(e.namespace);
    else if (t !== '~') namespaces.add(t);
  }
  return { everywhere, namespaces };
}

function sharesVisibility(a: Entry, b: Entry): boolean {
  const x = visibility(a);
  const y = visibility(b);
  if (x.everywhere) return y.everywhere || y.namespaces.size > 0;
  if (y.everywhere) return x.namespaces.size > 0;
  for (const n of x.namespaces) if (y.namespaces.has(n)) return true;
  return false;
}
