import type { DesiredEntry } from '../synth/types.js';
import { sortByKey } from '../util/sort.js';

/** A ServiceEntry as the sink sees it now. */
export interface ObservedEntry {
  readonly namespace: string;
  readonly name: string;
  readonly hosts: readonly string[];
  /** Carries `app.kubernetes.io/managed-by: registry-bridge`. */
  readonly owned: boolean;
  /** Value of the source label, for owned objects. */
  readonly source?: string;
  /** Content hash of what the object holds (computed from its spec), for owned objects. */
  readonly hash?: string;
  /** The registry service that produced it (annotation), for owned objects. */
  readonly service?: string;
  readonly resourceVersion?: string;
}

export type Policy = 'sync' | 'upsert-only' | 'create-only';

export type Action = 'create' | 'update' | 'delete' | 'unchanged' | 'conflict' | 'keep';

export interface Change {
  readonly action: Action;
  readonly namespace: string;
  readonly name: string;
  readonly host?: string;
  readonly source?: string;
  /** Why: for conflict and keep always, for others when useful. */
  readonly reason?: string;
  readonly desired?: DesiredEntry;
  readonly observed?: ObservedEntry;
}

export interface PlanInput {
  readonly desired: readonly DesiredEntry[];
  /** Owned objects, plus any other ServiceEntry the sink saw (needed to detect conflicts). */
  readonly observed: readonly ObservedEntry[];
  /** Every configured source and whether its last full read succeeded. */
  readonly sourceHealthy: ReadonlyMap<string, boolean>;
  /** Objects never deleted this run, with the reason: services that exist but have nothing to publish (empty protection), or turned invalid. */
  readonly protectedObjects?: readonly { readonly namespace: string; readonly name: string; readonly reason: string }[];
  readonly policy: Policy;
  /** At most this many deletions in one run; the rest wait for the next run. */
  readonly maxDeletes: number;
}

export interface Plan {
  /** Ordered by namespace, name. */
  readonly changes: readonly Change[];
  readonly counts: Readonly<Record<Action, number>>;
}

/**
 * The diff of desired against observed, as a table (d = desired, o = observed at same name):
 *
 * | d   | o                      | result                                              |
 * |-----|------------------------|-----------------------------------------------------|
 * | yes | none, host free        | create                                              |
 * | yes | none, host not ours    | conflict (another object serves the host)           |
 * | yes | not owned              | conflict (name taken)                               |
 * | yes | owned by other source  | conflict (never steal from another source)          |
 * | yes | owned, same hash       | unchanged (zero writes)                             |
 * | yes | owned, other hash      | update; unchanged+keep under create-only            |
 * | no  | owned                  | delete under sync, if its source read succeeded,    |
 * |     |                        | it is not protected, and the cap is not reached;    |
 * |     |                        | otherwise keep with the reason                      |
 * | no  | not owned              | not ours: not in the plan                           |
 *
 * Pure and deterministic: same inputs, same plan.
 */
export function planChanges(input: PlanInput): Plan {
  const changes: Change[] = [];
  const observedByName = new Map<string, ObservedEntry>(input.observed.map((o) => [`${o.namespace}/${o.name}`, o]));
  const foreignHosts = new Map<string, ObservedEntry>();
  for (const o of input.observed) {
    if (o.owned) continue;
    for (const h of o.hosts) if (!foreignHosts.has(h)) foreignHosts.set(h, o);
  }
  const desiredNames = new Set<string>();

  for (const d of input.desired) {
    const id = `${d.namespace}/${d.name}`;
    desiredNames.add(id);
    const base = { namespace: d.namespace, name: d.name, host: d.host, source: d.key.source, desired: d };
    const o = observedByName.get(id);
    if (!o) {
      const other = foreignHosts.get(d.host);
      if (other) {
        changes.push({
          ...base,
          action: 'conflict',
          reason: `host ${d.host} is already served by ServiceEntry ${other.namespace}/${other.name}, which registry-bridge does not own`,
        });
      } else {
        changes.push({ ...base, action: 'create' });
      }
      continue;
    }
    const withObserved = { ...base, observed: o };
    if (!o.owned) {
      changes.push({
        ...withObserved,
        action: 'conflict',
        reason: `a ServiceEntry named ${id} exists and is not managed by registry-bridge`,
      });
    } else if (o.source !== d.key.source) {
      changes.push({
        ...withObserved,
        action: 'conflict',
        reason: `${id} is managed by registry-bridge source "${o.source ?? '(none)'}", not "${d.key.source}"`,
      });
    } else if (o.hash === d.hash) {
      changes.push({ ...withObserved, action: 'unchanged' });
    } else if (input.policy === 'create-only') {
      changes.push({ ...withObserved, action: 'keep', reason: 'differs, but policy create-only never updates' });
    } else {
      changes.push({ ...withObserved, action: 'update' });
    }
  }

  const protectedReason = new Map<string, string>(
    (input.protectedObjects ?? []).map((p) => [`${p.namespace}/${p.name}`, p.reason]),
  );
  const deletions: Change[] = [];
  for (const o of input.observed) {
    const id = `${o.namespace}/${o.name}`;
    if (!o.owned || desiredNames.has(id)) continue;
    const base = {
      namespace: o.namespace,
      name: o.name,
      observed: o,
      ...(o.source !== undefined ? { source: o.source } : {}),
      ...(o.hosts[0] ? { host: o.hosts[0] } : {}),
    };
    const guarded = protectedReason.get(id);
    const healthy = o.source === undefined ? undefined : input.sourceHealthy.get(o.source);
    if (guarded !== undefined) {
      changes.push({ ...base, action: 'keep', reason: guarded });
    } else if (input.policy !== 'sync') {
      changes.push({ ...base, action: 'keep', reason: `policy ${input.policy} never deletes` });
    } else if (healthy === undefined) {
      changes.push({
        ...base,
        action: 'keep',
        reason: `source "${o.source ?? '(none)'}" is not configured; orphaned objects are left for a human`,
      });
    } else if (!healthy) {
      changes.push({
        ...base,
        action: 'keep',
        reason: `source "${o.source}" could not be read this run; deletions are fenced`,
      });
    } else {
      deletions.push({ ...base, action: 'delete' });
    }
  }
  sortByKey(deletions, idOf).forEach((c, i) => {
    changes.push(
      i < input.maxDeletes
        ? c
        : {
            ...c,
            action: 'keep',
            reason: `deletion cap of ${input.maxDeletes} per run reached (${deletions.length} planned); deleting in a later run`,
          },
    );
  });

  const sorted = sortByKey(changes, idOf);
  const counts: Record<Action, number> = { create: 0, update: 0, delete: 0, unchanged: 0, conflict: 0, keep: 0 };
  for (const c of sorted) counts[c.action] += 1;
  return { changes: sorted, counts };
}

/** The changes that write. */
export function writesOf(plan: Plan): Change[] {
  return plan.changes.filter((c) => c.action === 'create' || c.action === 'update' || c.action === 'delete');
}

function idOf(c: Change): string {
  return `${c.namespace}/${c.name}`;
}
