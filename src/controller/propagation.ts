import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DesiredEntry } from '../synth/types.js';
import { expectationOfDesired, verifyHosts, type VerifyDeps, type VerifyTarget } from '../verify/index.js';
import type { ReconcileReport } from './reconcile.js';
import { linkedSignal, onAbort } from '../util/abort.js';

/** How long past its deadline a propagation round may run before it is given up. */
const ROUND_GRACE_MS = 5_000;

export interface PropagationOptions {
  /** A hop not ok this long after the write counts as a propagation failure. */
  readonly deadlineMs: number;
  /** At most this many hosts verified per round (istiod load stays small). */
  readonly maxHostsPerRound: number;
}

export interface Unpropagated {
  readonly host: string;
  readonly hops: readonly { readonly hop: string; readonly detail: readonly string[] }[];
  readonly writtenAt: string;
}

/**
 * Continuous propagation checks: after each applied change, the changed hosts (only those) are
 * verified in the background through every configured hop; latencies go to
 * registry_bridge_propagation_seconds, misses to registry_bridge_propagation_failures_total.
 * Single-flight: hosts changed while a round runs wait for the next one (latest spec wins).
 */
export class PropagationChecker {
  private readonly pending = new Map<string, VerifyTarget>();
  private running: Promise<void> | undefined;
  private readonly failures = new Map<string, Unpropagated>();
  /** What each listed host's last change should look like, to check it again (recheck). */
  private readonly failedTargets = new Map<string, VerifyTarget>();

  constructor(
    private readonly deps: VerifyDeps,
    private readonly options: PropagationOptions,
    private readonly logger: Logger,
    private readonly signal: AbortSignal,
  ) {
    // While hosts are listed, they are checked again now and then: a hop that was slow or down
    // (istiod restarting) clears without waiting for the host's next change.
    const every = Math.min(60_000, Math.max(10_000, 2 * options.deadlineMs));
    const timer = setInterval(() => this.recheck('periodic'), every);
    timer.unref();
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  /** Hook for the controller's onReport. */
  onReport(report: ReconcileReport): void {
    const writtenAt = this.deps.clock();
    const changed: DesiredEntry[] = [];
    for (const o of report.outcomes) {
      if (!o.ok) continue;
      if (o.change.action === 'delete') {
        if (o.change.host) this.forget(o.change.host);
        continue;
      }
      if (o.change.desired) changed.push(o.change.desired);
    }
    for (const e of changed) this.pending.set(e.host, { expectation: expectationOfDesired(e), writtenAt });
    if (this.pending.size > 0 && !this.running) this.running = this.drain().finally(() => (this.running = undefined));
  }

  /**
   * Checks every listed host again (its last change, no new latency observed): called when a
   * check that could not run can run again (the xDS stream to istiod is back), so a host that
   * has propagated meanwhile leaves the list without waiting for its next change.
   */
  recheck(why: 'reconnected' | 'periodic' = 'reconnected'): void {
    if (this.signal.aborted || (why === 'periodic' && this.running)) return;
    let queued = 0;
    for (const [host, target] of this.failedTargets) {
      if (this.pending.has(host)) continue; // a newer change is queued already
      this.pending.set(host, { expectation: target.expectation });
      queued++;
    }
    if (queued === 0) return;
    const log = this.logger.child({ component: 'propagation' });
    if (why === 'reconnected') log.info({ hosts: queued }, 're-checking the unpropagated hosts');
    else log.debug({ hosts: queued }, 're-checking the unpropagated hosts');
    if (!this.running) this.running = this.drain().finally(() => (this.running = undefined));
  }

  private forget(host: string): void {
    this.failures.delete(host);
    this.failedTargets.delete(host);
  }

  private fail(target: VerifyTarget, hops: Unpropagated['hops']): void {
    const host = target.expectation.host;
    // A re-check (no writtenAt) keeps the time of the write that is still not propagated.
    const writtenAt =
      target.writtenAt !== undefined
        ? new Date(target.writtenAt).toISOString()
        : (this.failures.get(host)?.writtenAt ?? new Date(this.deps.clock()).toISOString());
    this.failures.set(host, { host, hops, writtenAt });
    if (target.writtenAt !== undefined || !this.failedTargets.has(host)) this.failedTargets.set(host, target);
  }

  /** Hosts whose last change did not reach every hop within the deadline. */
  unpropagated(): Unpropagated[] {
    return [...this.failures.values()].sort((a, b) => (a.host < b.host ? -1 : 1));
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    const log = this.logger.child({ component: 'propagation' });
    while (this.pending.size > 0 && !this.signal.aborted) {
      const batch = [...this.pending.values()].slice(0, this.options.maxHostsPerRound);
      for (const t of batch) this.pending.delete(t.expectation.host);
      // A change is measured and counted once: checks of a listed host again (no writtenAt)
      // observe no latency, count no failure and log a miss at debug only.
      const fresh = batch.filter((t) => t.writtenAt !== undefined);
      const again = batch.filter((t) => t.writtenAt === undefined);
      if (fresh.length > 0) await this.round(fresh, false, log);
      if (again.length > 0 && !this.signal.aborted) await this.round(again, true, log);
    }
  }

  private async round(batch: VerifyTarget[], again: boolean, log: Logger): Promise<void> {
    const { metrics: _metrics, logger: _logger, ...quiet } = this.deps;
    const deps: VerifyDeps = again ? quiet : this.deps;
    const missLevel = again ? 'debug' : 'warn';
    // A read that never answers (istiod or kube-apiserver restarting under the probe) must not
    // hold the checker: the round is given up a little after its deadline.
    const limitMs = this.options.deadlineMs + ROUND_GRACE_MS;
    const bounded = linkedSignal(this.signal, limitMs);
    const givenUp = new Promise<never>((_, reject) =>
      onAbort(bounded.signal, () => reject(new Error(`the check did not finish within ${limitMs} ms`))),
    );
    givenUp.catch(() => undefined);
    try {
      const report = await Promise.race([
        verifyHosts(batch, deps, { timeoutMs: this.options.deadlineMs, signal: bounded.signal }),
        givenUp,
      ]);
      for (const h of report.hosts) {
        const target = batch.find((t) => t.expectation.host === h.host);
        if (h.ok) {
          if (again && this.failures.has(h.host)) log.info({ host: h.host }, 'propagated (checked again)');
          this.forget(h.host);
          log.debug(
            { host: h.host, latencies: Object.fromEntries(h.hops.map((x) => [x.hop, x.latencyMs])) },
            'propagated',
          );
        } else {
          const hops = h.hops.filter((x) => x.status !== 'ok').map((x) => ({ hop: x.hop, detail: x.detail }));
          if (target) this.fail(target, hops);
          log[missLevel]({ host: h.host, hops }, 'change did not propagate within the deadline');
        }
      }
    } catch (err) {
      if (this.signal.aborted) return;
      // A check that cannot run (istiod or its xDS stream gone) is no pass: every host of the
      // round is unpropagated, with the reason, until a later check passes.
      const detail = describeError(err);
      log[missLevel]({ err: detail, hosts: batch.length }, 'propagation check failed; the hosts count as unpropagated');
      for (const t of batch) this.fail(t, [{ hop: 'check', detail: [detail] }]);
    } finally {
      bounded.dispose();
    }
  }
}
