import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { statusOf, kubeErrorMessage } from '../sinks/kube/client.js';
import { sleep } from '../util/abort.js';

export interface LeaderElectionOptions {
  readonly kc: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  /** Give up leadership when a renewal has not succeeded for this long (< leaseDuration). */
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

/**
 * coordination.k8s.io Lease election, like client-go's leaderelection: acquire when the lease
 * is free or expired, renew every retry period, and stop leading the moment a renewal misses
 * its deadline. Losing the lease aborts `lost`: the caller stops writing and exits.
 */
export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly now: () => number;
  private leading = false;
  private lastRenew = 0;
  private readonly lostController = new AbortController();

  constructor(private readonly options: LeaderElectionOptions) {
    this.api = options.kc.makeApiClient(CoordinationV1Api);
    this.now = options.now ?? Date.now;
  }

  /** Aborted when leadership is lost after having been acquired. */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Resolves once this process leads; rejects if `signal` aborts first. */
  async acquire(signal: AbortSignal): Promise<void> {
    const log = this.options.logger.child({
      component: 'leader-election',
      lease: `${this.options.namespace}/${this.options.name}`,
    });
    for (;;) {
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      try {
        if (await this.withinDeadline(this.tryAcquireOrRenew(), this.options.renewDeadlineMs)) {
          this.leading = true;
          this.lastRenew = this.now();
          log.info({ identity: this.options.identity }, 'became leader');
          this.renewLoop(signal, log);
          return;
        }
      } catch (err) {
        log.warn({ err: kubeErrorMessage(err) }, 'lease acquisition failed; retrying');
      }
      await sleep(this.options.retryPeriodMs, signal);
    }
  }

  /** Gives the lease up (on graceful shutdown) so another replica takes over at once. */
  async release(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.api.readNamespacedLease({ name: this.options.name, namespace: this.options.namespace });
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      lease.spec = {
        ...lease.spec,
        holderIdentity: undefined as never,
        leaseDurationSeconds: 1,
        renewTime: new V1MicroTime(this.now()),
      };
      await this.api.replaceNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
        body: lease,
      });
    } catch (err) {
      this.options.logger.warn(
        { component: 'leader-election', err: kubeErrorMessage(err) },
        'lease release failed; it will expire',
      );
    }
  }

  private renewLoop(signal: AbortSignal, log: Logger): void {
    const tick = async () => {
      while (this.leading && !signal.aborted) {
        await sleep(this.options.retryPeriodMs, signal).catch(() => undefined);
        if (!this.leading || signal.aborted) return;
        try {
          // An API server that accepts the connection and never answers (frozen, a black-holed
          // network) must not hold the leader past its deadline: the attempt is abandoned then.
          const left = this.lastRenew + this.options.renewDeadlineMs - this.now();
          if (await this.withinDeadline(this.tryAcquireOrRenew(), left)) {
            this.lastRenew = this.now();
            continue;
          }
          log.error('lease taken by another replica');
        } catch (err) {
          if (this.now() - this.lastRenew < this.options.renewDeadlineMs) {
            log.warn({ err: kubeErrorMessage(err) }, 'lease renewal failed; retrying within the deadline');
            continue;
          }
          log.error(
            { err: kubeErrorMessage(err), sinceRenewMs: this.now() - this.lastRenew },
            'lease renewal deadline passed',
          );
        }
        this.leading = false;
        this.lostController.abort(new Error('leadership lost'));
        return;
      }
    };
    void tick();
  }

  /**
   * The attempt's result, or a RenewDeadlineError once `ms` pass without one (the attempt is
   * left to finish on its own; its outcome is then of no interest).
   */
  private async withinDeadline(attempt: Promise<boolean>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RenewDeadlineError(`no answer from kube-apiserver within ${Math.max(0, ms)} ms`)),
        Math.max(0, ms),
      );
    });
    attempt.catch(() => undefined);
    try {
      return await Promise.race([attempt, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = this.now();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.options.leaseDurationMs / 1000),
      renewTime: new V1MicroTime(now),
    };
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { ...spec, acquireTime: new V1MicroTime(now), leaseTransitions: 0 },
          },
        });
        return true;
      } catch (createErr) {
        if (statusOf(createErr) === 409) return false; // someone else created it first
        throw createErr;
      }
    }
    const holder = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime as unknown as string | Date).getTime() : 0;
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    const expired = renewed + duration < now;
    if (holder && holder !== identity && !expired) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    lease.spec = {
      ...lease.spec,
      ...spec,
      leaseTransitions: transitions,
      ...(holder === identity ? {} : { acquireTime: new V1MicroTime(now) }),
    };
    try {
      // The resourceVersion in `lease` makes this a compare-and-swap: a concurrent winner gives 409.
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false;
      throw err;
    }
  }
}

/** A lease request that got no answer within the time left before the renew deadline. */
export class RenewDeadlineError extends Error {
  override readonly name = 'RenewDeadlineError';
}
