import { z } from 'zod';

const unitMs: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Node's timers take at most 2^31 - 1 ms (about 24.8 days); a longer delay fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `250ms`, `30s`, `5m`, `1h`, `1m30s`, or a number of milliseconds → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (const m of trimmed.matchAll(re)) {
    total += Number(m[1]) * unitMs[m[2]!]!;
    consumed += m[0].length;
  }
  return consumed === trimmed.length && consumed > 0 ? Math.round(total) : undefined;
}

/** Milliseconds as the shortest exact `1h30m`, `45s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return rest > 0 ? `${out}${rest}ms` : out;
}

export interface DurationLimits {
  /** Smallest accepted value in ms (at least 1: a zero interval or timeout spins or fails at once). */
  readonly min: number;
  /** Largest accepted value in ms (at most MAX_TIMER_MS). */
  readonly max: number;
  /** 0 is accepted too, and means "off". */
  readonly zeroMeansOff?: boolean;
}

/**
 * A duration field (`500ms`, `30s`, `5m`, `1h`, or a number of milliseconds) within limits. The
 * limits of every field are documented in docs/configuration-limits.md; a value outside them
 * is a configuration error naming the field.
 */
export function boundedDuration(limits: DurationLimits) {
  const { min, max, zeroMeansOff = false } = limits;
  if (!(min >= 1 && max <= MAX_TIMER_MS && min <= max)) throw new Error(`bad duration limits ${min}..${max}`);
  const range = `${formatDuration(min)} and ${formatDuration(max)}${zeroMeansOff ? ', or 0 (off)' : ''}`;
  return z
    .union([z.number(), z.string()])
    .describe(`A duration (500ms, 30s, 5m, 1h, or milliseconds) between ${range}.`)
    .transform((v, ctx) => {
      const ms = typeof v === 'number' ? v : parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected a duration like 500ms, 30s or 5m, got "${String(v)}"` });
        return z.NEVER;
      }
      if (!Number.isInteger(ms) || ms < 0) {
        ctx.addIssue({ code: 'custom', message: `expected a whole, non-negative number of milliseconds, got ${ms}` });
        return z.NEVER;
      }
      if (ms === 0 && zeroMeansOff) return 0;
      if (ms < min || ms > max) {
        const got = typeof v === 'number' ? `${v} ms` : `"${v}"`;
        const why = ms > MAX_TIMER_MS ? " (Node's timers cannot wait longer than 24.8 days)" : '';
        ctx.addIssue({ code: 'custom', message: `must be between ${range}, got ${got}${why}` });
        return z.NEVER;
      }
      return ms;
    });
}

/** A duration with no field-specific limits: at least 1 ms, at most Node's timer limit. */
export const durationSchema = boundedDuration({ min: 1, max: MAX_TIMER_MS });

/**
 * The limits of every duration of the configuration, by field. One table, so the schema and
 * docs/configuration-limits.md say the same (a unit test compares them).
 */
export const durationLimits = {
  'controller.resyncInterval': { min: 100, max: 24 * 3_600_000 },
  'controller.debounce': { min: 1, max: 60_000 },
  'controller.applicationSettle': { min: 100, max: 600_000, zeroMeansOff: true },
  'controller.shutdownGrace': { min: 100, max: 3_600_000 },
  'sink.requestTimeout': { min: 100, max: 600_000 },
  'leaderElection.leaseDuration': { min: 1000, max: 3_600_000 },
  'leaderElection.renewDeadline': { min: 500, max: 3_600_000 },
  'leaderElection.retryPeriod': { min: 100, max: 600_000 },
  'propagation.deadline': { min: 1000, max: 3_600_000 },
  'policy.shrinkHold.confirmFor': { min: 1000, max: 7 * 24 * 3_600_000 },
  'policy.shrinkHold.recheckAfter': { min: 100, max: 600_000, zeroMeansOff: true },
  'sources[].static.settle': { min: 10, max: 10_000 },
  'sources[].nacos.relistInterval': { min: 1000, max: 24 * 3_600_000 },
  'sources[].nacos.serviceListInterval': { min: 100, max: 24 * 3_600_000, zeroMeansOff: true },
  'sources[].nacos.requestTimeout': { min: 100, max: 600_000 },
  'sources[].nacos.emptyProtection.keepFor': { min: 1000, max: 7 * 24 * 3_600_000, zeroMeansOff: true },
  'sources[].zookeeper.sessionTimeout': { min: 1000, max: 3_600_000 },
  'sources[].zookeeper.relistInterval': { min: 1000, max: 24 * 3_600_000 },
  'sources[].zookeeper.requestTimeout': { min: 100, max: 600_000 },
} as const satisfies Record<string, DurationLimits>;

export type DurationField = keyof typeof durationLimits;

/** The schema of one documented duration field. */
export function durationField(field: DurationField) {
  return boundedDuration(durationLimits[field]);
}
