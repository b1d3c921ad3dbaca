import { serviceKeyString } from '../model/service.js';
import { SOURCES_ANNOTATION } from '../synth/service-entry.js';
import type { DesiredEntry } from '../synth/types.js';
import type { SynthOutcome } from '../synth/index.js';
import { sortByKey } from '../util/sort.js';
import { findCollisions, type Collision, type CollisionPort } from './collisions.js';
import {
  elsewhereCollisions,
  elsewhereHolder,
  elsewhereIndex,
  elsewhereReason,
  type ElsewhereIndex,
} from './elsewhere.js';
import { applyPolicies } from './policy.js';

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
  /** Every source publishing it (annotation `registry-bridge.io/sources`), when the sink reads it. */
  readonly sources?: string;
  readonly resourceVersion?: string;
  /** metadata.uid, when the sink reads it (a write's precondition that the object is the same). */
  readonly uid?: string;
  /** Created in this run while the registries were read (controller/early.ts), not before it. */
  readonly early?: boolean;
  /** What Istio builds listeners from, when the sink reads it (collision detection). */
  readonly ports?: readonly CollisionPort[];
  readonly addresses?: readonly string[];
  readonly exportTo?: readonly string[];
  /** spec.resolution, where the sink reads it (NONE with endpoints listens per endpoint). */
  readonly resolution?: string;
  /** Declares endpoints or a workloadSelector (set only when true), where the sink reads it. */
  readonly endpointsOrSelector?: true;
  /**
   * In a namespace the bridge does not write to (the kube sink's cluster-wide view). Never the
   * bridge's to update or delete, whoever manages it (`owned` is false): it only holds hosts
   * and ports, visible where its `exportTo` says (see ./elsewhere.ts and ./collisions.ts).
   */
  readonly elsewhere?: true;
  /** Carries the managed-by label of registry-bridge (an elsewhere entry of another installation). */
  readonly managedByBridge?: true;
  /** metadata.creationTimestamp, where the sink reads it: Istio keeps the oldest entry of a host. */
  readonly created?: string;
}

export type Policy = 'sync' | 'upsert-only' | 'create-only';

export type Action = 'create' | 'update' | 'delete' | 'unchanged' | 'conflict' | 'keep';

export interface Change {
  readonly action: Action;
  readonly namespace: string;
  readonly name: string;
  readonly host?: string;
  readonly source?: string;
  /** Why. Every change but `unchanged` has one. */
  readonly reason?: string;
  readonly desired?: DesiredEntry;
  readonly observed?: ObservedEntry;
  /** A create already written while the registries were read: counted, logged, not written again. */
  readonly applied?: true;
}

/** Objects of services that exist but have nothing usable to publish now. */
export interface EmptyService {
  readonly namespace: string;
  readonly name: string;
  /** Service key string. */
  readonly service: string;
  readonly reason: string;
}

/**
 * What the run read. `full`: every configured source (those whose read failed are fenced by
 * `sourceHealthy`). `keys`: only the services named by change hints; the plan then deletes only
 * an object whose service the read says is gone or empty, and leaves anything it cannot tell
 * apart from a read that missed to the next full run.
 */
export type PlanScope =
  | { readonly kind: 'full' }
  | {
      readonly kind: 'keys';
      /** Service key strings this run asked for. */
      readonly read: ReadonlySet<string>;
    };

export interface PlanInput {
  readonly desired: readonly DesiredEntry[];
  /** Owned objects, plus any other ServiceEntry the sink saw (needed to detect conflicts). */
  readonly observed: readonly ObservedEntry[];
  /** Every configured source and whether its read succeeded this run. */
  readonly sourceHealthy: ReadonlyMap<string, boolean>;
  /**
   * Service key strings the read returned this run (published, empty or invalid): an owned object
   * whose service is not among them is gone from its registry. Defaults to the desired services.
   */
  readonly present?: ReadonlySet<string>;
  /** Services that exist but have nothing to publish: their objects are deleted (reason given). */
  readonly empty?: readonly EmptyService[];
  /** Objects never deleted this run, with the reason (a service that turned invalid keeps its last good object). */
  readonly protectedObjects?: readonly { readonly namespace: string; readonly name: string; readonly reason: string }[];
  readonly policy: Policy;
  /** At most this many deletions in one run; the rest wait for the next run. */
  readonly maxDeletes: number;
  readonly scope?: PlanScope;
  /**
   * Dubbo applications that would be published on an entry of their own in `merge` mode (synth
   * note `application-level-unmapped`), by service key string, with the time this process first
   * saw them so, and how long a new such entry waits (continuous mode; absent: not held).
   */
  readonly applicationSettle?: ApplicationSettle;
  /** The sharp-shrink hold (./policy.ts `shrinkHold`); absent: none. */
  readonly shrink?: ShrinkSettings;
  /** How many services each source listed this run (full runs; the shrink hold reads it). */
  readonly listed?: ReadonlyMap<string, number>;
}

export interface ApplicationSettle {
  readonly now: number;
  readonly settleMs: number;
  readonly unmappedSince: ReadonlyMap<string, number>;
}

/**
 * When a source's read would delete a large share of the entries it owns (a registry restarted
 * empty or without all of its data), the deletions of that source are held until confirmed.
 */
export interface ShrinkSettings {
  /** A shrink is sharp when the run deletes more than this percentage of the source's entries… */
  readonly percent: number;
  /** …and at least this many of them; or when the source lists no service at all. */
  readonly minEntries: number;
  /**
   * `window` (continuous mode): the deletions go through once the shrink has persisted for
   * `ms` since it was first seen (`since`, per source) and a full run reads it again at `now`.
   * `once` (`sync --once`): never confirmed within the run; `--allow-shrink` accepts it.
   */
  readonly confirm:
    | {
        readonly kind: 'window';
        readonly ms: number;
        readonly since: ReadonlyMap<string, number>;
        readonly now: number;
      }
    | { readonly kind: 'once' };
}

/** A source found shrinking sharply this run (see ShrinkSettings). */
export interface Shrink {
  readonly source: string;
  /** Entries the source owned before the run. */
  readonly owned: number;
  /** Of them, the entries the run would delete because their services are gone or empty. */
  readonly deleting: number;
  /** Services the source listed this run. */
  readonly listed: number;
  /** The deletions were held (kept); false once the shrink is confirmed. */
  readonly held: boolean;
  /** Continuous mode: how long it has persisted, and how long until it is confirmed. */
  readonly heldForMs?: number;
  readonly confirmInMs?: number;
}

export interface Plan {
  /** Ordered by namespace, name. */
  readonly changes: readonly Change[];
  readonly counts: Readonly<Record<Action, number>>;
  /** Desired entries Istio would merge or shadow (same host twice, a TCP port shared without addresses). */
  readonly collisions: readonly Collision[];
  /** A keys-scoped plan left a decision to a full run (see PlanScope). */
  readonly needsFullRun: boolean;
  /** Sources whose read would delete a large share of their entries (./policy.ts `shrinkHold`). */
  readonly shrinks: readonly Shrink[];
}

/**
 * The plan: the pure diff (`diffEntries`), then the ordered policy filters of ./policy.ts
 * (source fences, protection, ownership hand-over, policy mode, deletion cap), then the
 * collision check. Pure and deterministic: same inputs, same plan.
 */
export function planChanges(input: PlanInput): Plan {
  const elsewhere = elsewhereIndex(input.observed);
  const { changes, needsFullRun, shrinks } = applyPolicies(diffEntries(input, elsewhere), input);
  const sorted = sortByKey(changes, idOf);
  const counts: Record<Action, number> = { create: 0, update: 0, delete: 0, unchanged: 0, conflict: 0, keep: 0 };
  for (const c of sorted) counts[c.action] += 1;
  const collisions = [...findCollisions(sorted, input.observed), ...elsewhereCollisions(sorted, elsewhere)];
  return { changes: withPortNotes(sorted, collisions), counts, collisions, needsFullRun, shrinks };
}

/**
 * A port collision never withholds an entry: a create or update that shares a TCP port without
 * addresses is written, and its reason says so. Withholding it would not give the port back:
 * the sidecar's `0.0.0.0:<port>` chain belongs to the keeper whether or not the other entry
 * exists (connections to the shadowed service's endpoints on that port go to the keeper's
 * either way), while the entry's other ports, its own address where DNS proxying allocates
 * one, and the namespaces that do not see the keeper would be lost with it. The collision
 * report (log line, gauge, exit 4) asks a human to separate the ports.
 */
function withPortNotes(changes: readonly Change[], collisions: readonly Collision[]): Change[] {
  const writes = new Set<string>();
  for (const c of changes) if (c.action === 'create' || c.action === 'update') writes.add(idOf(c));
  if (writes.size === 0) return [...changes];
  /** Per written object and port: the keeper that shadows it, or what it takes the port from. */
  const notes = new Map<string, Map<number, { by?: string; takes: string[]; count: number }>>();
  const at = (id: string, port: number) => {
    let ports = notes.get(id);
    if (!ports) notes.set(id, (ports = new Map()));
    let n = ports.get(port);
    if (!n) ports.set(port, (n = { takes: [], count: 0 }));
    return n;
  };
  for (const x of collisions) {
    if (x.kind !== 'port' || x.port === undefined) continue;
    const [keeper, shadowed] = x.entries;
    const k = idOf(keeper);
    const s = idOf(shadowed);
    if (shadowed.desired && writes.has(s)) at(s, x.port).by ??= `${keeper.host} (${k})`;
    if (keeper.desired && writes.has(k)) {
      const n = at(k, x.port);
      n.count++;
      if (n.takes.length < 3) n.takes.push(`${shadowed.host} (${s})`);
    }
  }
  if (notes.size === 0) return [...changes];
  return changes.map((c) => {
    const ports = notes.get(idOf(c));
    if (!ports) return c;
    const text = [...ports].map(([port, n]) =>
      n.by !== undefined
        ? `TCP port ${port} is shadowed by ${n.by}`
        : `it takes TCP port ${port} from ${n.takes.join(', ')}${n.count > n.takes.length ? ` and ${n.count - n.takes.length} more` : ''}`,
    );
    return {
      ...c,
      reason: `${c.reason ?? ''}; ${text.join('; ')} for sidecars that see both: written all the same, reported as a collision`,
    };
  });
}

/** A run's synthesis against what the sink holds: the plan's input built from both, then the plan. */
export function planFromSynth(run: {
  readonly synth: SynthOutcome;
  readonly observed: readonly ObservedEntry[];
  readonly sourceHealthy: ReadonlyMap<string, boolean>;
  readonly policy: Policy;
  readonly maxDeletes: number;
  readonly scope: PlanScope;
  readonly applicationSettle?: ApplicationSettle;
  readonly shrink?: ShrinkSettings;
  readonly listed?: ReadonlyMap<string, number>;
}): Plan {
  const { synth, observed } = run;
  const invalid = new Map(synth.invalid.map((r) => [serviceKeyString(r.key), r.reason] as const));
  return planChanges({
    desired: synth.desired,
    observed,
    sourceHealthy: run.sourceHealthy,
    present: new Set(synth.results.map((r) => serviceKeyString(r.kind === 'ok' ? r.entry.key : r.key))),
    empty: synth.empty.map((e) => ({
      namespace: e.namespace,
      name: e.name,
      service: serviceKeyString(e.key),
      reason: e.reason,
    })),
    // A service that turned invalid keeps its last good object until it is fixed or removed.
    protectedObjects: observed.flatMap((o) => {
      const reason = o.owned && o.service !== undefined ? invalid.get(o.service) : undefined;
      return reason === undefined
        ? []
        : [
            {
              namespace: o.namespace,
              name: o.name,
              reason: `the service is invalid now (${reason}); keeping its last good object`,
            },
          ];
    }),
    policy: run.policy,
    maxDeletes: run.maxDeletes,
    scope: run.scope,
    ...(run.applicationSettle ? { applicationSettle: run.applicationSettle } : {}),
    ...(run.shrink ? { shrink: run.shrink } : {}),
    ...(run.listed ? { listed: run.listed } : {}),
  });
}

/**
 * The diff of desired against observed, as a table (d = desired, o = observed at the same
 * namespace/name). "Ours" = owned (managed-by label) with a source label naming a configured
 * source; an owned object of a source this bridge does not configure is another bridge's.
 *
 * | d   | o                                | result                                         |
 * |-----|----------------------------------|------------------------------------------------|
 * | yes | none, host held by no other      | create                                         |
 * | yes | none, host held by an object     | conflict (another namespace or name has it)    |
 * |     | that is not ours                 |                                                |
 * | yes | none, host declared by an entry  | conflict (Istio keeps the oldest entry of a    |
 * |     | elsewhere visible in d's         | host: a new one would be shadowed; see         |
 * |     | namespace                        | ./elsewhere.ts)                                |
 * | yes | not owned                        | conflict (name taken)                          |
 * | yes | ours or another bridge's, other  | update, reason "hand-over" (policy.ts checks   |
 * |     | source label                     | that the previous source is one of ours)       |
 * | yes | ours, same hash                  | unchanged (zero writes)                        |
 * | yes | ours, other hash                 | update                                         |
 * | no  | owned                            | delete, with why (gone, empty, moved); the     |
 * |     |                                  | filters may turn it into keep                  |
 * | no  | not owned, or elsewhere          | not ours: not in the plan                      |
 *
 * An object created early in this run (ObservedEntry.early) with the desired content is a
 * create already applied.
 */
export function diffEntries(input: PlanInput, elsewhere: ElsewhereIndex = elsewhereIndex(input.observed)): Change[] {
  const changes: Change[] = [];
  const observedByName = new Map<string, ObservedEntry>(input.observed.map((o) => [idOf(o), o]));
  const holders = new Map<string, ObservedEntry[]>();
  for (const o of input.observed)
    if (!o.elsewhere) for (const h of o.hosts) holders.set(h, [...(holders.get(h) ?? []), o]);
  const desiredNames = new Set<string>();
  const desiredHosts = new Map<string, DesiredEntry>();
  for (const d of input.desired) {
    desiredNames.add(idOf(d));
    desiredHosts.set(d.host, d);
  }
  const ours = (o: ObservedEntry) => o.owned && o.source !== undefined && input.sourceHealthy.has(o.source);

  for (const d of input.desired) {
    const id = idOf(d);
    const o = observedByName.get(id);
    // Unchanged (nearly every object of a resync): one object, no reason to build.
    if (o?.owned && o.source === d.key.source && o.hash === d.hash && !o.early) {
      changes.push({
        namespace: d.namespace,
        name: d.name,
        host: d.host,
        source: d.key.source,
        desired: d,
        observed: o,
        action: 'unchanged',
      });
      continue;
    }
    const base = { namespace: d.namespace, name: d.name, host: d.host, source: d.key.source, desired: d };
    const service = `service ${d.key.name} of source ${d.key.source}`;
    if (!o) {
      // Another object serving the host: ours elsewhere is moving (it is deleted or updated in
      // this plan); anyone else's is a conflict, whatever its namespace.
      const other = (holders.get(d.host) ?? []).find((h) => idOf(h) !== id && !ours(h));
      if (other)
        changes.push({
          ...base,
          action: 'conflict',
          reason: `host ${d.host} is already served by ServiceEntry ${idOf(other)}, ${
            other.owned
              ? `managed by registry-bridge source "${other.source ?? '(none)'}", which this bridge does not configure`
              : 'which registry-bridge does not own'
          }`,
        });
      else {
        const there = elsewhereHolder(d, elsewhere);
        changes.push(
          there
            ? { ...base, action: 'conflict', reason: elsewhereReason(d, there) }
            : { ...base, action: 'create', reason: `${service} publishes ${d.host}` },
        );
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
        action: 'update',
        reason: `hand-over: source "${d.key.source}" publishes ${d.host} now, not "${o.source ?? '(none)'}"`,
      });
    } else if (o.hash === d.hash) {
      changes.push(
        o.early
          ? {
              ...withObserved,
              action: 'create',
              applied: true,
              reason: `${service} publishes ${d.host} (created while the registries were read)`,
            }
          : { ...withObserved, action: 'unchanged' },
      );
    } else {
      const was = o.sources;
      const now = d.object.metadata.annotations[SOURCES_ANNOTATION];
      changes.push({
        ...withObserved,
        action: 'update',
        reason:
          was !== undefined && now !== undefined && was !== now
            ? `the sources publishing ${d.host} changed: ${was} → ${now}`
            : `${service} changed`,
      });
    }
  }

  const empty = new Map((input.empty ?? []).map((e) => [idOf(e), e]));
  const present = input.present ?? new Set(input.desired.map((d) => serviceKeyString(d.key)));
  for (const o of input.observed) {
    const id = idOf(o);
    if (!o.owned || o.elsewhere || desiredNames.has(id)) continue;
    const base = {
      action: 'delete' as const,
      namespace: o.namespace,
      name: o.name,
      observed: o,
      ...(o.source !== undefined ? { source: o.source } : {}),
      ...(o.hosts[0] ? { host: o.hosts[0] } : {}),
    };
    const e = empty.get(id);
    const service = o.service ?? '(unknown service)';
    const successor = o.hosts.map((h) => desiredHosts.get(h)).find((d) => d !== undefined);
    let reason: string;
    if (e) reason = `service ${e.service} has no usable instance (${e.reason})`;
    else if (successor) reason = `its host moved to ${idOf(successor)}`;
    else if (o.service !== undefined && present.has(o.service))
      reason = `service ${service} publishes another host now`;
    else if (o.early) reason = 'created while the registries were read, then lost its host to a service read later';
    else reason = `service ${service} is no longer listed by source "${o.source ?? '(none)'}"`;
    changes.push({ ...base, reason });
  }
  return changes;
}

/** The changes that write (a create already applied early is not written again). */
export function writesOf(plan: Plan): Change[] {
  return plan.changes.filter(
    (c) => (c.action === 'create' && !c.applied) || c.action === 'update' || c.action === 'delete',
  );
}

export function idOf(c: { readonly namespace: string; readonly name: string }): string {
  return `${c.namespace}/${c.name}`;
}
