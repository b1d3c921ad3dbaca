import type { DesiredEntry } from '../synth/types.js';
import type { Collision, CollisionSide } from './collisions.js';
import type { Change, ObservedEntry } from './plan.js';

/**
 * Hosts that ServiceEntries in namespaces the bridge does not write to already declare
 * (ObservedEntry.elsewhere, from the kube sink's cluster-wide view).
 *
 * Istio keeps one service per host for a sidecar: of the entries with that host visible in the
 * sidecar's namespace, those exported to it privately or by name come first, then the public
 * ones, each oldest first by creation time, and the first one wins
 * (PushContext.servicesExportedToNamespace; SidecarScope keeps "the first Service, which is the
 * oldest", so that "newly created Services cannot take ownership unexpectedly").
 *
 * The rule: an entry elsewhere whose exportTo makes it visible in the namespace the bridge writes
 * the host to (unset, `*`, or that namespace by name) holds the host.
 * - The bridge has no entry for the host yet: it does not write one (`conflict`). A new entry
 *   would be the youngest, shadowed wherever the other is visible, and would silently take the
 *   host over the day the other is deleted.
 * - The bridge's entry exists already: it is kept and written as usual (deleting it would cut
 *   off consumers that use it now), and the pair is reported as a collision, naming the one
 *   Istio keeps.
 * An entry elsewhere exported only to other namespaces (`.`, `~`, names) is a deliberate local
 * override there: not reported.
 *
 * Hosts only: TCP ports that entries elsewhere serve without addresses are checked with the
 * target namespaces' entries in ./collisions.ts (findCollisions), by Istio's listener rule.
 */
export type ElsewhereIndex = ReadonlyMap<string, readonly ObservedEntry[]>;

/** host → the entries elsewhere that declare it, oldest first. */
export function elsewhereIndex(observed: readonly ObservedEntry[]): ElsewhereIndex {
  const byHost = new Map<string, ObservedEntry[]>();
  for (const o of observed)
    if (o.elsewhere) for (const h of new Set(o.hosts)) byHost.set(h, [...(byHost.get(h) ?? []), o]);
  for (const list of byHost.values()) list.sort(olderFirst);
  return byHost;
}

/** The entry a sidecar in `namespace` sees: exportTo unset or `*`, that namespace, or `.` there. */
export function visibleIn(e: ObservedEntry, namespace: string): boolean {
  const to = e.exportTo === undefined || e.exportTo.length === 0 ? ['*'] : e.exportTo;
  return to.some((t) => t === '*' || t === namespace || (t === '.' && e.namespace === namespace));
}

/** The oldest entry elsewhere that declares d's host and is visible in d's namespace. */
export function elsewhereHolder(d: DesiredEntry, index: ElsewhereIndex): ObservedEntry | undefined {
  return (index.get(d.host) ?? []).find((e) => visibleIn(e, d.namespace));
}

export function elsewhereReason(d: DesiredEntry, e: ObservedEntry): string {
  return (
    `host ${d.host} is already declared by ServiceEntry ${e.namespace}/${e.name} in another namespace ` +
    `(${describeEntry(e)}, visible in ${d.namespace}); Istio keeps the oldest ServiceEntry of a host, ` +
    `so ${d.namespace}/${d.name} is not written`
  );
}

/**
 * The collisions with entries elsewhere, one per (our entry, entry elsewhere) pair whose host is
 * visible in our entry's namespace: the withheld ones (conflict) and the ones the bridge keeps.
 * The first side is the one Istio keeps (older first; a withheld entry is always the newer).
 */
export function elsewhereCollisions(changes: readonly Change[], index: ElsewhereIndex): Collision[] {
  if (index.size === 0) return [];
  const out: Collision[] = [];
  for (const c of changes) {
    const d = c.desired;
    if (!d) continue;
    const withheld = c.action === 'conflict' && c.observed === undefined;
    const exists = c.action === 'update' || c.action === 'unchanged' || c.action === 'keep' || c.action === 'create';
    if (!withheld && !exists) continue;
    for (const e of index.get(d.host) ?? []) {
      if (!visibleIn(e, d.namespace)) continue;
      const ours: CollisionSide = { namespace: d.namespace, name: d.name, host: d.host, desired: true };
      const theirs: CollisionSide = { namespace: e.namespace, name: e.name, host: d.host, desired: false };
      const created = withheld ? undefined : c.observed?.created;
      const known = created !== undefined && e.created !== undefined;
      const oursFirst = known && created < e.created;
      const where = `${describeEntry(e)}, visible in ${d.namespace}`;
      out.push({
        kind: 'host',
        entries: oursFirst ? [ours, theirs] : [theirs, ours],
        reason: withheld
          ? `host ${d.host} is declared by ServiceEntry ${e.namespace}/${e.name} (${where}); ` +
            `${d.namespace}/${d.name} is not written: Istio keeps the oldest ServiceEntry of a host`
          : `host ${d.host} is in ServiceEntry ${d.namespace}/${d.name} and in ${e.namespace}/${e.name} ` +
            `(${where}); Istio keeps the older` +
            (known ? `, ${oursFirst ? `${d.namespace}/${d.name}` : `${e.namespace}/${e.name}`}` : ' of the two'),
      });
    }
  }
  return out;
}

function describeEntry(e: ObservedEntry): string {
  const to =
    e.exportTo === undefined || e.exportTo.length === 0 ? 'exportTo unset' : `exportTo ${e.exportTo.join(',')}`;
  const by = e.managedByBridge ? `, managed by another registry-bridge` : '';
  return `${to}${by}${e.created !== undefined ? `, created ${e.created}` : ''}`;
}

function olderFirst(a: ObservedEntry, b: ObservedEntry): number {
  const x = a.created ?? '';
  const y = b.created ?? '';
  if (x !== y) return x < y ? -1 : 1;
  const i = `${a.namespace}/${a.name}`;
  const j = `${b.namespace}/${b.name}`;
  return i < j ? -1 : i > j ? 1 : 0;
}
