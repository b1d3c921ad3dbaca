import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { serviceKeyString, type SourceSnapshot } from '../model/service.js';
import { planChanges, writesOf, type Change, type ObservedEntry, type Plan, type Policy } from '../plan/plan.js';
import { EarlyCreates } from './early.js';
import type { ApplyOutcome, Sink } from '../sinks/types.js';
import type { SourceAdapter } from '../sources/adapter.js';
import { synthAll, type SynthOptions, type SynthOutcome } from '../synth/index.js';

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
  readonly now?: () => number;
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

/** Owned objects of services that exist but are invalid now: kept, with the reason. */
function lastGoodOfInvalid(
  synth: SynthOutcome,
  observed: readonly ObservedEntry[],
): { namespace: string; name: string; reason: string }[] {
  const invalid = new Map(synth.invalid.map((r) => [serviceKeyString(r.key), r.reason] as const));
  return observed.flatMap((o) => {
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
  });
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

  const plan = planChanges({
    desired: synth.desired,
    observed,
    sourceHealthy: input.sourceHealthy,
    protectedObjects: [
      ...synth.empty.map((e) => ({ namespace: e.namespace, name: e.name, reason: `empty protection: ${e.reason}` })),
      // A service that turned invalid keeps its last good object until it is fixed or removed.
      ...lastGoodOfInvalid(synth, observed),
    ],
    policy: options.policy,
    maxDeletes: options.maxDeletes,
  });
  for (const c of plan.changes) {
    if (c.action === 'conflict')
      log.warn({ action: c.action, namespace: c.namespace, name: c.name, host: c.host, reason: c.reason }, 'conflict');
    else if (c.action === 'keep')
      log.info({ action: c.action, namespace: c.namespace, name: c.name, reason: c.reason }, 'kept');
    else log.debug({ action: c.action, namespace: c.namespace, name: c.name, host: c.host }, 'planned');
  }

  const { writes, done } = input.earlyWrites
    ? withoutEarly(writesOf(plan), input.earlyWrites, synth, input.sourceHealthy)
    : { writes: writesOf(plan), done: [] };
  const applied =
    writes.length > 0 || sink.kind === 'stdout'
      ? await sink.apply(sink.kind === 'stdout' ? plan.changes : writes, { dryRun: options.dryRun }, deps.signal)
      : [];
  const outcomes = [...done, ...applied];
  let failedWrites = 0;
  for (const o of outcomes) {
    if (!o.ok) {
      failedWrites += 1;
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
      failedWrites,
      dryRun: options.dryRun,
      durationMs,
    },
    'reconcile finished',
  );
  return { scope: input.scope, snapshots, sourceErrors, synth, plan, observed, outcomes, failedWrites, durationMs };
}

/**
 * The plan's writes less the creates already written early with the same content (their
 * outcomes are the run's), plus a delete for each early object the plan does not want: it
 * lost a host clash to a service read later that publishes nothing. A failed early create
 * stays in the writes and is tried again. Early objects of a source whose read then failed are
 * left alone, as every deletion of such a source is.
 */
function withoutEarly(
  planned: readonly Change[],
  early: ReadonlyMap<string, ApplyOutcome>,
  synth: SynthOutcome,
  sourceHealthy: ReadonlyMap<string, boolean>,
): { writes: Change[]; done: ApplyOutcome[] } {
  const done = [...early.values()].filter((o) => o.ok);
  const writes = planned.filter((c) => {
    const o = c.action === 'create' ? early.get(`${c.namespace}/${c.name}`) : undefined;
    return !(o?.ok && o.change.desired?.hash === c.desired?.hash);
  });
  const wanted = new Set(synth.desired.map((d) => `${d.namespace}/${d.name}`));
  for (const [id, o] of early) {
    const { namespace, name, host, source } = o.change;
    if (!o.ok || wanted.has(id) || source === undefined || sourceHealthy.get(source) !== true) continue;
    writes.push({
      action: 'delete',
      namespace,
      name,
      ...(host !== undefined ? { host } : {}),
      source,
      reason: 'created while the registries were read, then lost its host to a service read later',
    });
  }
  return { writes, done };
}
