import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DesiredEntry } from '../synth/types.js';
import { expectationOfDesired, verifyHosts, type VerifyDeps, type VerifyTarget } from '../verify/index.js';
import type { ReconcileReport } from './reconcile.js';

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

  constructor(
    private readonly deps: VerifyDeps,
    private readonly options: PropagationOptions,
    private readonly logger: Logger,
    private readonly signal: AbortSignal,
  ) {}

  /** Hook for the controller's onReport. */
  onReport(report: ReconcileReport): void {
    const writtenAt = this.deps.clock();
    const changed: DesiredEntry[] = [];
    for (const o of report.outcomes) {
      if (!o.ok) continue;
      if (o.change.action === 'delete') {
        if (o.change.host) this.failures.delete(o.change.host);
        continue;
      }
      if (o.change.desired) changed.push(o.change.desired);
    }
    for (const e of changed) this.pending.set(e.host, { expectation: expectationOfDesired(e), writtenAt });
    if (this.pending.size > 0 && !this.running) this.running = this.drain().finally(() => (this.running = undefined));
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
      try {
        const report = await verifyHosts(batch, this.deps, { timeoutMs: this.options.deadlineMs, signal: this.signal });
        for (const h of report.hosts) {
          const target = batch.find((t) => t.expectation.host === h.host);
          if (h.ok) {
            this.failures.delete(h.host);
            log.debug(
              { host: h.host, latencies: Object.fromEntries(h.hops.map((x) => [x.hop, x.latencyMs])) },
              'propagated',
            );
          } else {
            const hops = h.hops.filter((x) => x.status !== 'ok').map((x) => ({ hop: x.hop, detail: x.detail }));
            this.failures.set(h.host, {
              host: h.host,
              hops,
              writtenAt: new Date(target?.writtenAt ?? this.deps.clock()).toISOString(),
            });
            log.warn({ host: h.host, hops }, 'change did not propagate within the deadline');
          }
        }
      } catch (err) {
        if (this.signal.aborted) return;
        // A check that cannot run (istiod or its xDS stream gone) is no pass: every host of the
        // round is unpropagated, with the reason, until a later check passes.
        const detail = describeError(err);
        log.warn({ err: detail, hosts: batch.length }, 'propagation check failed; the hosts count as unpropagated');
        for (const t of batch) {
          const host = t.expectation.host;
          this.failures.set(host, {
            host,
            hops: [{ hop: 'check', detail: [detail] }],
            writtenAt: new Date(t.writtenAt ?? this.deps.clock()).toISOString(),
          });
        }
      }
    }
  }
}
