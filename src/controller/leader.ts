import {
  CoordinationV1Api,
  V1MicroTime,
  type KubeConfig,
  type V1Lease,
  type V1LeaseSpec,
} from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { KubeRequestAbortedError, statusOf, kubeErrorMessage, withSignal } from '../sinks/kube/client.js';
import { onAbort, sleep } from '../util/abort.js';

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
 * What a replica saw of the Lease, and when, on its own clock, it first saw that record. As in
 * client-go (leaderelection.go, observedRecord/observedTime): a Lease's renewTime was written
 * with its holder's clock, which another replica's clock may be ahead of or behind; comparing
 * the two would let a replica whose clock is ahead take a lease that is being renewed. Only
 * the local clock is compared with itself: the lease is valid until leaseDurationSeconds have
 * passed since the record was last seen to change.
 */
export interface LeaseObservation {
  /** The election record (holder, lease duration, acquire and renew times, transitions) as text. */
  readonly record: string;
  readonly holder: string | undefined;
  readonly leaseDurationMs: number;
  /** The local clock when this record was first seen. */
  readonly observedAt: number;
}

/** The observation after reading `spec` at local time `now`: unchanged record, same observedAt. */
export function observeLease(
  previous: LeaseObservation | undefined,
  spec: V1LeaseSpec | undefined,
  now: number,
): LeaseObservation {
  const time = (t: unknown) => (t === undefined || t === null ? null : new Date(t as string | Date).toISOString());
  const record = JSON.stringify([
    spec?.holderIdentity ?? null,
    spec?.leaseDurationSeconds ?? null,
    time(spec?.acquireTime),
    time(spec?.renewTime),
    spec?.leaseTransitions ?? null,
  ]);
  if (previous?.record === record) return previous;
  return {
    record,
    holder: spec?.holderIdentity || undefined,
    leaseDurationMs: (spec?.leaseDurationSeconds ?? 0) * 1000,
    observedAt: now,
  };
}

/**
 * client-go's decision: another holder's lease may be taken only when no change of its record
 * was seen for its leaseDuration, measured on the local clock. A lease without a holder
 * (released) or held by `identity` may be taken at once.
 */
export function mayTakeLease(observation: LeaseObservation, identity: string, now: number): boolean {
  if (!observation.holder || observation.holder === identity) return true;
  return now >= observation.observedAt + observation.leaseDurationMs;
}

/**
 * coordination.k8s.io Lease election, like client-go's leaderelection: acquire when the lease
 * is free or expired (by observed time, see LeaseObservation), renew every retry period, and
 * stop leading the moment a renewal misses its deadline (the request is aborted then). Losing
 * the lease aborts `lost`: the caller stops writing and exits.
 */
export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly now: () => number;
  private leading = false;
  private lastRenew = 0;
  private observed: LeaseObservation | undefined;
  private readonly lostController = new AbortController();
  /** Aborted by release(): renewals go on while a shutdown drains the writes in flight. */
  private readonly renewing = new AbortController();

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
        if (await this.withinDeadline((s) => this.tryAcquireOrRenew(s), this.options.renewDeadlineMs, signal)) {
          this.leading = true;
          this.lastRenew = this.now();
          log.info({ identity: this.options.identity }, 'became leader');
          this.renewLoop(log);
          return;
        }
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? new Error('aborted');
        log.warn({ err: kubeErrorMessage(err) }, 'lease acquisition failed; retrying');
      }
      await sleep(this.options.retryPeriodMs, signal);
    }
  }

  /** Gives the lease up (on graceful shutdown) so another replica takes over at once. */
  async release(): Promise<void> {
    this.renewing.abort();
    if (!this.leading) return;
    this.leading = false;
    // At most renewDeadline: past it the lease is as good as expired for the others anyway.
    const deadline = AbortSignal.timeout(this.options.renewDeadlineMs);
    try {
      const { name, namespace } = this.options;
      const lease = await this.api.readNamespacedLease({ name, namespace }, withSignal(deadline));
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      lease.spec = {
        ...lease.spec,
        holderIdentity: undefined as never,
        leaseDurationSeconds: 1,
        renewTime: new V1MicroTime(this.now()),
      };
      await this.api.replaceNamespacedLease({ name, namespace, body: lease }, withSignal(deadline));
    } catch (err) {
      this.options.logger.warn(
        { component: 'leader-election', err: kubeErrorMessage(err) },
        'lease release failed; it will expire',
      );
    }
  }

  /**
   * Renews every retry period until release() (not until the shutdown signal: a leader that
   * drains its writes in flight keeps its lease meanwhile), or until a renewal misses its deadline.
   */
  private renewLoop(log: Logger): void {
    const signal = this.renewing.signal;
    const tick = async () => {
      while (this.leading && !signal.aborted) {
        await sleep(this.options.retryPeriodMs, signal).catch(() => undefined);
        if (!this.leading || signal.aborted) return;
        try {
          // An API server that accepts the connection and never answers (frozen, a black-holed
          // network) must not hold the leader past its deadline: the attempt is abandoned then.
          const left = this.lastRenew + this.options.renewDeadlineMs - this.now();
          if (await this.withinDeadline((s) => this.tryAcquireOrRenew(s), left, signal)) {
            this.lastRenew = this.now();
            continue;
          }
          log.error('lease taken by another replica');
        } catch (err) {
          // Released, or the process stops and aborted every kube request: no lease lost.
          if (signal.aborted || err instanceof KubeRequestAbortedError) return;
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
   * The attempt's result, or a RenewDeadlineError once `ms` pass without one: the attempt's
   * requests are aborted then, and when `outer` aborts (shutdown).
   */
  private async withinDeadline(
    attempt: (signal: AbortSignal) => Promise<boolean>,
    ms: number,
    outer: AbortSignal,
  ): Promise<boolean> {
    const controller = new AbortController();
    const unlink = onAbort(outer, () => controller.abort(outer.reason));
    const timer = setTimeout(
      () => controller.abort(new RenewDeadlineError(`no answer from kube-apiserver within ${Math.max(0, ms)} ms`)),
      Math.max(0, ms),
    );
    // Also when a request does not honour its signal: the attempt is then left to finish alone.
    let unlinkLate: () => void = () => undefined;
    const late = new Promise<never>((_, reject) => {
      unlinkLate = onAbort(controller.signal, () => reject(controller.signal.reason as Error));
    });
    const running = attempt(controller.signal);
    running.catch(() => undefined);
    try {
      return await Promise.race([running, late]);
    } finally {
      clearTimeout(timer);
      unlink();
      unlinkLate();
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const options = withSignal(signal);
    const now = this.now();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.options.leaseDurationMs / 1000),
      renewTime: new V1MicroTime(now),
    };
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace }, options);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      const created = { ...spec, acquireTime: new V1MicroTime(now), leaseTransitions: 0 };
      try {
        await this.api.createNamespacedLease(
          { namespace, body: { metadata: { name, namespace }, spec: created } },
          options,
        );
        this.observed = observeLease(undefined, created, this.now());
        return true;
      } catch (createErr) {
        if (statusOf(createErr) === 409) return false; // someone else created it first
        throw createErr;
      }
    }
    this.observed = observeLease(this.observed, lease.spec, this.now());
    if (!mayTakeLease(this.observed, identity, this.now())) return false;
    const holder = lease.spec?.holderIdentity;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    lease.spec = {
      ...lease.spec,
      ...spec,
      leaseTransitions: transitions,
      ...(holder === identity ? {} : { acquireTime: new V1MicroTime(now) }),
    };
    try {
      // The resourceVersion in `lease` makes this a compare-and-swap: a concurrent winner gives 409.
      await this.api.replaceNamespacedLease({ name, namespace, body: lease }, options);
      this.observed = observeLease(this.observed, lease.spec, this.now());
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
