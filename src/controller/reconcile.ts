import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { serviceKeyString, type SourceSnapshot } from '../model/service.js';
import { formatDuration } from '../config/duration.js';
import {
  planFromSynth,
  writesOf,
  type ObservedEntry,
  type Plan,
  type Policy,
  type ShrinkSettings,
} from '../plan/plan.js';
import { EarlyCreates } from './early.js';
import type { ApplyOutcome, Sink } from '../sinks/types.js';
import type { SourceAdapter } from '../sources/adapter.js';
import { synthAll, type SynthOptions, type SynthOutcome } from '../synth/index.js';
import type { DesiredEntry } from '../synth/types.js';

export interface ConfiguredSource {
  readonly name: string;
  readonly kind: string;
  readonly adapter: SourceAdapter;
  readonly synth: SynthOptions;
}

export interface ReconcileOptions {
  readonly policy: Policy;
  readonly maxDeletes: number;
  readonly dryRun: boolean;
  /** The sharp-shrink hold (`policy.shrinkHold`); absent: off (`--allow-shrink`, or disabled). */
  readonly shrinkHold?: {
    readonly percent: number;
    readonly minEntries: number;
    /** Continuous mode: how long a shrink must persist before its deletions go through. */
    readonly confirmMs: number;
    /** `sync --once`: read again after this long, once, when a shrink is held (0: no second read). */
    readonly recheckMs: number;
  };
}

export interface ReconcileReport {
  /** `full`: every source was read; `keys`: only services named by change hints. */
  readonly scope: 'full' | 'keys';
  readonly snapshots: readonly SourceSnapshot[];
  readonly sourceErrors: readonly { readonly source: string; readonly error: string }[];
  readonly synth: SynthOutcome;
  readonly plan: Plan;
  /** What the sink held before the writes (owned and foreign). */
  readonly observed: readonly ObservedEntry[];
  readonly outcomes: readonly ApplyOutcome[];
  readonly failedWrites: number;
  readonly durationMs: number;
}

export interface ReconcileDeps {
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /**
   * Collisions already logged at warn by earlier runs of this process (continuous mode): a
   * collision is logged at warn when it is first found, at debug while it persists, so that a
   * fleet of Dubbo services on one TCP port does not log the same thousands of lines every run.
   * Without it (`sync --once`) every collision is logged at warn.
   */
  readonly reportedCollisions?: Set<string>;
  /**
   * Continuous mode: when each source's sharp shrink was first seen by a full run (see
   * ReconcileOptions.shrinkHold); the run updates it. Without it (`sync --once`), a shrink is
   * never confirmed within the run.
   */
  readonly shrinkSince?: Map<string, number>;
  readonly now?: () => number;
  /**
   * Continuous mode: Dubbo applications published on an entry of their own in `merge` mode, by
   * service key string → when this process first saw them so (kept across runs, updated by
   * every full run), and how long a new such entry waits (see settleApplicationLevel in
   * src/plan/policy.ts). Without it (`sync --once`) nothing is held.
   */
  readonly applicationSettle?: { readonly settleMs: number; readonly unmappedSince: Map<string, number> };
}

/**
 * The whole product in one function, as in external-dns: read every source, synthesize the
 * desired state, observe the sink, plan, apply. `sync --once` calls it once; the controller
 * calls it on a ticker and on change hints. Level-triggered: every run enforces everything.
 */
export async function reconcileOnce(
  sources: readonly ConfiguredSource[],
  sink: Sink,
  options: ReconcileOptions,
  deps: ReconcileDeps,
): Promise<ReconcileReport> {
  const now = deps.now ?? Date.now;
  const started = now();
  const log = deps.logger.child({ component: 'reconcile' });

  // The sink is observed while the registries are read (the two do not depend on each other),
  // and a sink that takes early creates gets them while the read goes on.
  const observing = sink.observe(deps.signal);
  const early = sink.earlyCreates && !options.dryRun ? new EarlyCreates(sink, observing, deps.signal, log) : undefined;
  const [reads, observed] = await Promise.all([
    Promise.allSettled(
      sources.map((s) =>
        s.adapter.list(deps.signal, early ? (service) => early.offer(service, s.name, s.synth) : undefined),
      ),
    ),
    observing,
  ]);
  const snapshots: SourceSnapshot[] = [];
  const sourceErrors: { source: string; error: string }[] = [];
  const sourceHealthy = new Map<string, boolean>();
  const inputs = [];
  for (const [i, read] of reads.entries()) {
    const source = sources[i]!;
    if (read.status === 'fulfilled') {
      snapshots.push(read.value);
      sourceHealthy.set(source.name, true);
      inputs.push({ services: read.value.services, options: source.synth });
      for (const r of read.value.rejected)
        log.warn({ source: source.name, ref: r.ref, reason: r.reason }, 'registry entry rejected');
    } else {
      sourceHealthy.set(source.name, false);
      sourceErrors.push({ source: source.name, error: describeError(read.reason) });
      log.error(
        { source: source.name, err: describeError(read.reason) },
        'source unavailable; its deletions are fenced',
      );
    }
  }

  const synth = synthAll(inputs, currentOwners(observed));
  const earlyWrites = early ? await early.settle() : undefined;
  return planAndApply(
    {
      scope: 'full',
      snapshots,
      sourceErrors,
      sourceHealthy,
      synth,
      observed,
      started,
      ...(earlyWrites ? { earlyWrites } : {}),
    },
    sink,
    options,
    deps,
  );
}

/**
 * Keeps `since` (service key string → first seen) to the Dubbo applications this full run
 * publishes on an entry of their own in `merge` mode: new ones from now, gone ones forgotten.
 */
export function trackUnmapped(since: Map<string, number>, synth: SynthOutcome, now: number): void {
  const current = new Set(
    synth.notes.filter((n) => n.note.code === 'application-level-unmapped').map((n) => n.service),
  );
  for (const key of since.keys()) if (!current.has(key)) since.delete(key);
  for (const key of current) if (!since.has(key)) since.set(key, now);
}

/** host → service key string of the objects the bridge owns now. */
export function currentOwners(observed: readonly ObservedEntry[]): Map<string, string> {
  const owners = new Map<string, string>();
  for (const o of observed) if (o.owned && o.service !== undefined) for (const h of o.hosts) owners.set(h, o.service);
  return owners;
}

export interface PlanInputs {
  /** `full`: every source read; `keys`: only the services named by change hints. */
  readonly scope: 'full' | 'keys';
  readonly snapshots: readonly SourceSnapshot[];
  readonly sourceErrors: readonly { readonly source: string; readonly error: string }[];
  readonly sourceHealthy: ReadonlyMap<string, boolean>;
  readonly synth: SynthOutcome;
  readonly observed: readonly ObservedEntry[];
  readonly started: number;
  /** Creates already sent while the registries were read (object id → outcome). */
  readonly earlyWrites?: ReadonlyMap<string, ApplyOutcome>;
  /** Keys scope: the service key strings this run read. */
  readonly keysRead?: ReadonlySet<string>;
}

/** Plan against what was observed, apply the writes, log one summary line. Shared by both scopes. */
export async function planAndApply(
  input: PlanInputs,
  sink: Sink,
  options: ReconcileOptions,
  deps: ReconcileDeps,
): Promise<ReconcileReport> {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'reconcile' });
  const { synth, observed, snapshots, sourceErrors } = input;
  for (const r of synth.invalid)
    log.warn(
      { source: r.key.source, service: r.key.name, group: r.key.group, namespace: r.key.namespace, reason: r.reason },
      'service skipped',
    );
  const noteCounts: Record<string, number> = {};
  for (const n of synth.notes) {
    noteCounts[n.note.code] = (noteCounts[n.note.code] ?? 0) + 1;
    if (n.note.code === 'instance-rejected') {
      // A bad instance is dropped and named; its service goes on with the others.
      log.warn(
        { source: n.source, service: n.service, instance: n.note.instance, reason: n.note.detail },
        'instance rejected',
      );
      continue;
    }
    // Worked-around data problems are worth one line each; the rest is detail.
    const level =
      n.note.code === 'unknown-protocol' ||
      n.note.code === 'instance-skipped' ||
      n.note.code === 'partial-ports' ||
      n.note.code === 'port-renamed'
        ? 'info'
        : 'debug';
    log[level]({ service: n.service, code: n.note.code, detail: n.note.detail }, 'synth note');
  }

  // Objects created early in this run are part of what the sink holds now: the plan decides
  // about them like any other (an early create the plan does not want is deleted by the plan,
  // under the policy mode and the deletion cap).
  const early = [...(input.earlyWrites?.values() ?? [])].filter((o) => o.ok);
  const settle = deps.applicationSettle;
  if (settle && input.scope === 'full') trackUnmapped(settle.unmappedSince, synth, now());
  const plan = planFromSynth({
    synth,
    observed: early.length > 0 ? withEarly(observed, early) : observed,
    sourceHealthy: input.sourceHealthy,
    policy: options.policy,
    maxDeletes: options.maxDeletes,
    scope: input.scope === 'keys' ? { kind: 'keys', read: input.keysRead ?? new Set() } : { kind: 'full' },
    ...(settle
      ? { applicationSettle: { now: now(), settleMs: settle.settleMs, unmappedSince: settle.unmappedSince } }
      : {}),
    ...shrinkInputs(input, options, deps),
  });
  // The summary of a held or confirmed shrink first, then the decisions it explains.
  if (input.scope === 'full') trackShrinks(plan, input, options, deps, log);
  logDecisions(plan, input.scope, log, deps.reportedCollisions);

  const writes = writesOf(plan);
  const applied =
    writes.length > 0 || sink.kind === 'stdout'
      ? await sink.apply(sink.kind === 'stdout' ? plan.changes : writes, { dryRun: options.dryRun }, deps.signal)
      : [];
  const outcomes = [...early, ...applied];
  let failedWrites = 0;
  for (const o of outcomes) {
    if (!o.ok) {
      failedWrites += 1;
      if (o.aborted) {
        // Stopping (shutdown grace passed, lease lost): expected, not a failure of the server.
        log.warn(
          { action: o.change.action, namespace: o.change.namespace, name: o.change.name, err: o.error },
          'write not completed: stopping',
        );
        continue;
      }
      log.error(
        { action: o.change.action, namespace: o.change.namespace, name: o.change.name, status: o.status, err: o.error },
        'write failed',
      );
    }
  }
  const durationMs = now() - input.started;
  log.info(
    {
      scope: input.scope,
      sources: input.sourceHealthy.size,
      sourceErrors: sourceErrors.length,
      services: snapshots.reduce((n, s) => n + s.services.length, 0),
      rejectedEntries: snapshots.reduce((n, s) => n + s.rejected.length, 0),
      rejectedInstances: noteCounts['instance-rejected'] ?? 0,
      invalid: synth.invalid.length,
      empty: synth.empty.length,
      notes: noteCounts,
      desired: synth.desired.length,
      ...plan.counts,
      collisions: plan.collisions.length,
      failedWrites,
      dryRun: options.dryRun,
      durationMs,
    },
    'reconcile finished',
  );
  return { scope: input.scope, snapshots, sourceErrors, synth, plan, observed, outcomes, failedWrites, durationMs };
}

/** The plan's shrink-hold settings and per-source listing counts, for a full run. */
function shrinkInputs(
  input: PlanInputs,
  options: ReconcileOptions,
  deps: ReconcileDeps,
): { shrink?: ShrinkSettings; listed?: ReadonlyMap<string, number> } {
  const hold = options.shrinkHold;
  if (hold === undefined || input.scope !== 'full') return {};
  return {
    shrink: {
      percent: hold.percent,
      minEntries: hold.minEntries,
      confirm: deps.shrinkSince
        ? { kind: 'window', ms: hold.confirmMs, since: deps.shrinkSince, now: input.started }
        : { kind: 'once' },
    },
    listed: new Map(input.snapshots.map((s) => [s.source, s.services.length])),
  };
}

/**
 * After a full run: one warn line per source whose sharp shrink holds its deletions (or whose
 * shrink was confirmed this run), and the continuous mode's record of when each shrink was
 * first seen (kept while the source shrinks, forgotten once it does not or its read fails).
 */
function trackShrinks(
  plan: Plan,
  input: PlanInputs,
  options: ReconcileOptions,
  deps: ReconcileDeps,
  log: Logger,
): void {
  const since = deps.shrinkSince;
  const hold = options.shrinkHold;
  for (const s of plan.shrinks) {
    const fields = { source: s.source, owned: s.owned, deleting: s.deleting, listed: s.listed };
    if (!s.held)
      log.warn(
        { ...fields, heldForMs: s.heldForMs },
        `source "${s.source}" shrank sharply and stayed so for ${formatDuration(hold?.confirmMs ?? 0)} (policy.shrinkHold.confirmFor): its deletions go through`,
      );
    else if (since)
      log.warn(
        { ...fields, heldForMs: s.heldForMs, confirmInMs: s.confirmInMs },
        `source "${s.source}" would lose ${s.deleting} of its ${s.owned} entries in one run: deletions held; deleted in ${formatDuration(s.confirmInMs ?? 0)} if the shrink persists, kept if the services come back`,
      );
    else
      log.warn(
        fields,
        `source "${s.source}" would lose ${s.deleting} of its ${s.owned} entries in one run: deletions held (a restarted or incomplete registry?); sync --once exits 4, run it with --allow-shrink to accept the shrink`,
      );
  }
  if (!since) return;
  // A read that fails restarts the window: a shrink is confirmed only by reads that saw it for
  // the whole window (a registry unreachable meanwhile may come back with its data).
  const shrinking = new Set(plan.shrinks.map((s) => s.source));
  for (const source of input.sourceHealthy.keys()) {
    if (shrinking.has(source)) {
      if (!since.has(source)) since.set(source, input.started);
    } else since.delete(source);
  }
}

/** What the sink holds after a successful write of `d`, as the plan reads it. */
export function observedOfWritten(d: DesiredEntry, resourceVersion?: string, uid?: string): ObservedEntry {
  return {
    namespace: d.namespace,
    name: d.name,
    hosts: [d.host],
    owned: true,
    source: d.key.source,
    hash: d.hash,
    service: serviceKeyString(d.key),
    ...(resourceVersion ? { resourceVersion } : {}),
    ...(uid ? { uid } : {}),
  };
}

/** What the sink held, with the objects created early in this run (marked early). */
function withEarly(observed: readonly ObservedEntry[], early: readonly ApplyOutcome[]): ObservedEntry[] {
  const byId = new Map(observed.map((o) => [`${o.namespace}/${o.name}`, o]));
  for (const o of early) {
    const d = o.change.desired;
    if (!d) continue;
    byId.set(`${d.namespace}/${d.name}`, {
      ...(o.ok ? observedOfWritten(d, o.resourceVersion, o.uid) : observedOfWritten(d)),
      early: true,
    });
  }
  return [...byId.values()];
}

/**
 * One line per decision about a user's object, at info (a conflict or a collision at warn),
 * with the reason and the run's scope. `unchanged` objects are not logged (nothing was decided
 * about them beyond "equal").
 */
function logDecisions(plan: Plan, scope: 'full' | 'keys', log: Logger, reported?: Set<string>): void {
  for (const c of plan.changes) {
    if (c.action === 'unchanged') continue;
    const fields = {
      action: c.action,
      scope,
      namespace: c.namespace,
      name: c.name,
      ...(c.host !== undefined ? { host: c.host } : {}),
      ...(c.source !== undefined ? { source: c.source } : {}),
      reason: c.reason,
    };
    if (c.action === 'conflict') log.warn(fields, 'conflict');
    else log.info(fields, c.action);
  }
  logCollisions(plan, scope, log, reported);
}

/** A collision at warn when first found, at debug while it persists (see ReconcileDeps). */
function logCollisions(plan: Plan, scope: 'full' | 'keys', log: Logger, reported?: Set<string>): void {
  const seen = new Set<string>();
  let persisting = 0;
  // The debug lines of persisting collisions are not even built when debug is off.
  const debug = log.isLevelEnabled('debug');
  for (const x of plan.collisions) {
    const objects = x.entries.map((e) => `${e.namespace}/${e.name}`);
    const key = `${x.kind}|${x.port ?? ''}|${objects.join('|')}`;
    seen.add(key);
    const known = reported?.has(key) === true;
    if (known) persisting++;
    if (known && !debug) continue;
    log[known ? 'debug' : 'warn'](
      {
        scope,
        kind: x.kind,
        ...(x.port !== undefined ? { port: x.port } : {}),
        hosts: x.entries.map((e) => e.host),
        objects,
        reason: x.reason,
      },
      x.kind === 'port'
        ? `collision: ${x.entries[0].host} and ${x.entries[1].host} share TCP port ${x.port}`
        : `collision: host ${x.entries[0].host} twice`,
    );
  }
  if (reported === undefined) return;
  if (persisting > 0)
    log.info(
      { scope, collisions: plan.collisions.length, persisting },
      'collisions still present (each logged at warn when first found; registry_bridge_collisions counts them)',
    );
  // A keys-scoped run sees only the collisions of the services it read: it adds, never forgets.
  if (scope === 'full') reported.clear();
  for (const k of seen) reported.add(k);
}
