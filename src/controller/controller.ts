import type { Logger } from '../log.js';
import type { BridgeMetrics } from '../metrics.js';
import type { Sink } from '../sinks/types.js';
import { describeError } from '../errors.js';
import { exitCodeOf, ExitCode } from './exit-code.js';
import { reconcileOnce, type ConfiguredSource, type ReconcileOptions, type ReconcileReport } from './reconcile.js';
import { cacheFromReport, reconcileKeys, type ControllerCache } from './incremental.js';
import { serviceKeyString, type ServiceKey } from '../model/service.js';

export interface ControllerOptions extends ReconcileOptions {
  /** Full reconcile at least this often (repairs drift whatever the watches do). */
  readonly resyncMs: number;
  /**
   * Change-triggered runs start at most once per this window: a hint after a quiet window runs
   * at once, hints inside the window wait for its end and coalesce into one run.
   */
  readonly debounceMs: number;
  /** Backoff after a failed run (doubles up to resyncMs). */
  readonly retryMs?: number;
  /** How long a new entry of a Dubbo application at application level only waits (0: not at all). */
  readonly applicationSettleMs?: number;
}

export interface ControllerDeps {
  readonly logger: Logger;
  readonly metrics: BridgeMetrics;
  readonly now?: () => number;
  /** Called after every run (tests, the verifier hook). */
  readonly onReport?: (report: ReconcileReport) => void;
}

export interface ControllerStatus {
  /** A run finished (successfully or not) recently enough. */
  readonly lastRunAt: number | undefined;
  readonly lastSuccessAt: number | undefined;
  readonly runs: number;
  readonly running: boolean;
}

/**
 * Level-triggered controller, single-flight with a dirty flag. Change hints (adapter watches,
 * kube watches) mark it dirty. A hint runs at once when no run started within the debounce
 * window, and otherwise at the window's end, so an isolated change costs no waiting and a
 * burst still coalesces: its first change runs alone, the rest in the runs that follow (the
 * leading and trailing edges of a throttle). A run in progress is never interrupted; a dirty
 * flag makes the next one follow it, at the end of the window the finished run started (a full
 * run that a keys-scoped one asked for follows at once). A ticker runs a full reconcile every resync interval; a
 * failed run is retried with capped backoff, which hints do not shorten.
 */
export class Controller {
  private dirty = false;
  /** Services named by change hints since the last run; a hint without keys means "everything". */
  private readonly dirtyKeys = new Map<string, ServiceKey>();
  /** Collisions logged at warn so far (see ReconcileDeps.reportedCollisions). */
  private readonly reportedCollisions = new Set<string>();
  /** Dubbo applications on an entry of their own (merge mode) → first seen so (see ReconcileDeps.applicationSettle). */
  private readonly unmappedSince = new Map<string, number>();
  private settleTimer: NodeJS.Timeout | undefined;
  /** When each source's sharp shrink was first seen (see ReconcileDeps.shrinkSince). */
  private readonly shrinkSince = new Map<string, number>();
  /** A full run due when a held shrink's confirmation window ends. */
  private shrinkTimer: NodeJS.Timeout | undefined;
  private fullNeeded = true;
  private cache: ControllerCache | undefined;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastRunAt: number | undefined;
  private lastSuccessAt: number | undefined;
  private runs = 0;
  /** When the last run started (the debounce window is measured from it). */
  private lastStartAt = Number.NEGATIVE_INFINITY;
  private stopped = false;
  private current: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  constructor(
    private readonly sources: readonly ConfiguredSource[],
    private readonly sink: Sink,
    private readonly options: ControllerOptions,
    private readonly deps: ControllerDeps,
    private readonly signal: AbortSignal,
  ) {
    this.now = deps.now ?? Date.now;
  }

  /** Starts watches and the resync ticker; runs the first reconcile at once. */
  start(): void {
    const log = this.deps.logger.child({ component: 'controller' });
    for (const source of this.sources) {
      source.adapter
        .watch?.((keys) => this.hint(keys), this.signal)
        .catch((err: unknown) =>
          log.warn({ source: source.name, err: describeError(err) }, 'watch failed; periodic resync continues'),
        );
    }
    this.sink
      .watch?.(() => this.hint(), this.signal)
      .catch((err: unknown) => log.warn({ err: describeError(err) }, 'sink watch failed; periodic resync continues'));
    this.resyncTimer = setInterval(() => this.trigger(0), this.options.resyncMs);
    this.resyncTimer.unref();
    this.signal.addEventListener('abort', () => void this.stop(), { once: true });
    this.trigger(0);
  }

  /**
   * A change hint: marks the state dirty (with keys, only those services are reconciled, unless
   * a full run is due anyway). The run starts at once if none started within the debounce
   * window, else when the window ends. A run already scheduled (a retry backoff included) is
   * not brought forward.
   */
  hint(keys?: readonly ServiceKey[]): void {
    if (this.timer) {
      this.mark(keys);
      return;
    }
    this.trigger(Math.max(0, this.lastStartAt + this.options.debounceMs - this.now()), keys);
  }

  /**
   * Marks the state dirty and schedules a run in `delayMs` (a resync, a retry). A run already
   * scheduled stays unless `delayMs` is 0, which runs at once.
   */
  trigger(delayMs: number, keys?: readonly ServiceKey[]): void {
    if (this.stopped) return;
    this.mark(keys);
    if (this.running) return; // the run in progress will see the flag
    if (this.timer) {
      if (delayMs > 0) return; // already scheduled within the window
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.current = this.runLoop();
    }, delayMs);
  }

  private mark(keys: readonly ServiceKey[] | undefined): void {
    this.dirty = true;
    if (keys && keys.length > 0) for (const k of keys) this.dirtyKeys.set(serviceKeyString(k), k);
    else this.fullNeeded = true;
  }

  status(): ControllerStatus {
    return { lastRunAt: this.lastRunAt, lastSuccessAt: this.lastSuccessAt, runs: this.runs, running: this.running };
  }

  /** Stops scheduling; resolves when the run in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    if (this.shrinkTimer) clearTimeout(this.shrinkTimer);
    await this.current;
  }

  private async runLoop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const log = this.deps.logger.child({ component: 'controller' });
    try {
      let followAtOnce = true;
      while (this.dirty && !this.stopped && !this.signal.aborted) {
        // Hints that came during a run start the next one at the debounce window's end (one run
        // start per window, as for hints between runs); a full run a keys-scoped one asked for
        // follows at once.
        const wait = this.lastStartAt + this.options.debounceMs - this.now();
        if (!followAtOnce && wait > 0) {
          // Scheduled as is: the dirty keys and flags stay for that run.
          this.timer ??= setTimeout(() => {
            this.timer = undefined;
            this.current = this.runLoop();
          }, wait);
          return;
        }
        followAtOnce = false;
        this.dirty = false;
        const full = this.fullNeeded || !this.cache;
        const keys = [...this.dirtyKeys.values()];
        this.fullNeeded = false;
        this.dirtyKeys.clear();
        const started = this.now();
        this.lastStartAt = started;
        let ok = false;
        try {
          const reconcileDeps = {
            logger: this.deps.logger,
            signal: this.signal,
            now: this.now,
            reportedCollisions: this.reportedCollisions,
            ...(this.options.applicationSettleMs
              ? { applicationSettle: { settleMs: this.options.applicationSettleMs, unmappedSince: this.unmappedSince } }
              : {}),
            shrinkSince: this.shrinkSince,
          };
          let report = full
            ? undefined
            : await reconcileKeys(keys, this.sources, this.sink, this.cache!, this.options, reconcileDeps);
          if (!report) {
            report = await reconcileOnce(this.sources, this.sink, this.options, reconcileDeps);
            this.cache = cacheFromReport(report);
          }
          // Anything not applied as planned is settled by a full run, not by the cache.
          if (report.failedWrites > 0 || report.sourceErrors.length > 0) this.fullNeeded = true;
          // A keys-scoped run that left a deletion to a full run: that run follows at once.
          if (report.plan.needsFullRun) {
            this.fullNeeded = true;
            this.dirty = true;
          }
          followAtOnce = report.plan.needsFullRun;
          this.record(report);
          this.scheduleSettled();
          this.scheduleShrinkConfirmation(report);
          ok = exitCodeOf(report, false) !== ExitCode.Failed;
          this.deps.onReport?.(report);
        } catch (err) {
          if (this.signal.aborted) break;
          this.fullNeeded = true;
          this.deps.metrics.reconcileRuns.inc({ result: 'failed' });
          log.error({ err: describeError(err) }, 'reconcile failed');
        }
        this.runs += 1;
        this.lastRunAt = this.now();
        this.deps.metrics.reconcileDuration.observe((this.lastRunAt - started) / 1000);
        if (ok) {
          this.failures = 0;
          this.lastSuccessAt = this.lastRunAt;
          this.deps.metrics.lastSuccess.set(this.lastRunAt / 1000);
        } else {
          this.failures += 1;
          const backoff = Math.min(this.options.resyncMs, (this.options.retryMs ?? 500) * 2 ** (this.failures - 1));
          const jittered = Math.round(backoff * (0.5 + Math.random() / 2));
          log.info({ retryInMs: jittered, failures: this.failures }, 'retrying after failure');
          this.running = false;
          this.trigger(jittered);
          return;
        }
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * A full run when the first held application-level entry has settled (nothing else may
   * trigger one before the resync interval).
   */
  private scheduleSettled(): void {
    const settleMs = this.options.applicationSettleMs ?? 0;
    if (settleMs <= 0 || this.unmappedSince.size === 0) return;
    const now = this.now();
    const waits = [...this.unmappedSince.values()].map((t) => t + settleMs - now).filter((ms) => ms > 0);
    if (waits.length === 0) return;
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(
      () => {
        this.settleTimer = undefined;
        this.trigger(0);
      },
      Math.min(...waits) + 1,
    );
    this.settleTimer.unref();
  }

  /**
   * A held shrink is confirmed by a full run once its window has passed: one is scheduled for
   * then (plus a moment, so that the run's start is past the window), whatever the resync
   * interval.
   */
  private scheduleShrinkConfirmation(report: ReconcileReport): void {
    if (report.scope !== 'full') return;
    const waits = report.plan.shrinks.flatMap((s) => (s.held && s.confirmInMs !== undefined ? [s.confirmInMs] : []));
    if (this.shrinkTimer) clearTimeout(this.shrinkTimer);
    this.shrinkTimer = undefined;
    if (waits.length === 0 || this.stopped) return;
    this.shrinkTimer = setTimeout(
      () => {
        this.shrinkTimer = undefined;
        this.trigger(0);
      },
      Math.min(...waits) + SHRINK_CONFIRM_MARGIN_MS,
    );
    this.shrinkTimer.unref();
  }

  private record(report: ReconcileReport): void {
    const m = this.deps.metrics;
    const code = exitCodeOf(report, false);
    m.reconcileRuns.inc({
      result: code === ExitCode.Converged ? 'success' : code === ExitCode.Degraded ? 'degraded' : 'failed',
    });
    for (const o of report.outcomes) if (o.ok) m.changes.inc({ action: o.change.action });
    if (report.scope === 'keys') return; // per-source totals come from full runs only
    m.conflicts.set(report.plan.counts.conflict);
    m.collisions.set(report.plan.collisions.length);
    m.invalidServices.set(report.synth.invalid.length);
    const held = new Map(report.plan.shrinks.map((s) => [s.source, s.held ? s.deleting : 0]));
    for (const s of this.sources) m.heldDeletions.set({ source: s.name, reason: 'shrink' }, held.get(s.name) ?? 0);
    const failed = new Set(report.sourceErrors.map((e) => e.source));
    for (const s of this.sources) {
      m.sourceUp.set({ source: s.name }, failed.has(s.name) ? 0 : 1);
      if (failed.has(s.name)) m.sourceErrors.inc({ source: s.name });
    }
    for (const snap of report.snapshots) {
      m.sourceServices.set({ source: snap.source }, snap.services.length);
      // Counted here only (once per run that saw them), not by the adapters as well.
      if (snap.rejected.length > 0) m.rejectedEntries.inc({ source: snap.source }, snap.rejected.length);
    }
    // Instances synthesis dropped (bad address or port) count as rejected entries of their source.
    for (const n of report.synth.notes)
      if (n.note.code === 'instance-rejected') m.rejectedEntries.inc({ source: n.source });
  }
}

/** How long after a shrink's confirmation window the confirming full run starts. */
const SHRINK_CONFIRM_MARGIN_MS = 50;
