/**
 * The Lease expiry decision of leader election (src/controller/leader.ts), as client-go makes
 * it: by the time a candidate observed the Lease's record change, on the candidate's own clock,
 * never by comparing the holder's renewTime (written with the holder's clock) with it.
 */
import { V1MicroTime, type V1LeaseSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { mayTakeLease, observeLease, type LeaseObservation } from '../../src/controller/leader.js';

const LEASE_SECONDS = 15;
const T0 = Date.parse('2026-01-01T00:00:00Z');

/** The Lease as its holder writes it at `holderNow` (its own clock). */
function renewedBy(holder: string, holderNow: number, acquiredAt = T0): V1LeaseSpec {
  return {
    holderIdentity: holder,
    leaseDurationSeconds: LEASE_SECONDS,
    acquireTime: new V1MicroTime(acquiredAt),
    renewTime: new V1MicroTime(holderNow),
    leaseTransitions: 1,
  };
}

/**
 * A candidate polling every `periodMs` (its clock = the holder's + `skewMs`) while the holder
 * renews every `renewEveryMs` for `renewingForMs`; the first candidate time at which it may take
 * the lease, or undefined within `horizonMs`.
 */
function firstTake(o: {
  skewMs: number;
  renewEveryMs: number;
  renewingForMs: number;
  periodMs: number;
  horizonMs: number;
}): number | undefined {
  let seen: LeaseObservation | undefined;
  for (let t = 0; t <= o.horizonMs; t += o.periodMs) {
    const lastRenewal = Math.min(Math.floor(t / o.renewEveryMs) * o.renewEveryMs, o.renewingForMs);
    const spec = renewedBy('replica-a', T0 + lastRenewal);
    const candidateNow = T0 + t + o.skewMs;
    seen = observeLease(seen, spec, candidateNow);
    if (mayTakeLease(seen, 'replica-b', candidateNow)) return t;
  }
  return undefined;
}

describe('leader election: lease expiry by observed time', () => {
  it('a candidate whose clock is 60 s ahead does not take a lease that is being renewed', () => {
    // The holder renews every 2 s for 2 minutes; the candidate looks every second.
    expect(
      firstTake({ skewMs: 60_000, renewEveryMs: 2_000, renewingForMs: 120_000, periodMs: 1_000, horizonMs: 120_000 }),
    ).toBeUndefined();
  });

  it('a candidate whose clock is 60 s ahead takes the lease leaseDuration after the last renewal it saw', () => {
    // Renewals stop at 30 s (the holder died): taken 15 s after the candidate saw the last one.
    const t = firstTake({
      skewMs: 60_000,
      renewEveryMs: 2_000,
      renewingForMs: 30_000,
      periodMs: 1_000,
      horizonMs: 120_000,
    });
    expect(t).toBe(30_000 + LEASE_SECONDS * 1000);
  });

  it('a candidate whose clock is 60 s behind does not wait 60 s longer', () => {
    const t = firstTake({
      skewMs: -60_000,
      renewEveryMs: 2_000,
      renewingForMs: 30_000,
      periodMs: 1_000,
      horizonMs: 180_000,
    });
    expect(t).toBe(30_000 + LEASE_SECONDS * 1000);
  });

  it('the observation time stays while the record is unchanged, and moves when it changes', () => {
    const first = observeLease(undefined, renewedBy('replica-a', T0), T0 + 500);
    const same = observeLease(first, renewedBy('replica-a', T0), T0 + 9_000);
    expect(same.observedAt).toBe(T0 + 500);
    const renewed = observeLease(same, renewedBy('replica-a', T0 + 2_000), T0 + 9_500);
    expect(renewed.observedAt).toBe(T0 + 9_500);
    expect(mayTakeLease(renewed, 'replica-b', T0 + 9_500 + LEASE_SECONDS * 1000 - 1)).toBe(false);
    expect(mayTakeLease(renewed, 'replica-b', T0 + 9_500 + LEASE_SECONDS * 1000)).toBe(true);
  });

  it('a renewTime long past is not enough: a candidate that just started waits leaseDuration on its clock', () => {
    const now = T0 + 3_600_000;
    const seen = observeLease(undefined, renewedBy('replica-a', T0), now);
    expect(mayTakeLease(seen, 'replica-b', now)).toBe(false);
    expect(mayTakeLease(seen, 'replica-b', now + LEASE_SECONDS * 1000)).toBe(true);
  });

  it('a released lease (no holder) is taken at once; the holder always renews its own', () => {
    const released = observeLease(
      undefined,
      { leaseDurationSeconds: 1, renewTime: new V1MicroTime(T0), leaseTransitions: 1 },
      T0,
    );
    expect(mayTakeLease(released, 'replica-b', T0)).toBe(true);
    const own = observeLease(undefined, renewedBy('replica-b', T0), T0);
    expect(mayTakeLease(own, 'replica-b', T0)).toBe(true);
  });
});
