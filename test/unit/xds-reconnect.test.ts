import { describe, expect, it } from 'vitest';
import { reconnectDelayMs, type ReconnectOptions } from '../../src/verify/xds-reconnect.js';

const options: ReconnectOptions = { initialBackoffMs: 500, maxBackoffMs: 15_000, connectTimeoutMs: 10_000 };

describe('reconnectDelayMs: bounded exponential backoff with ±20 % jitter', () => {
  const rows: { name: string; attempt: number; random: number; ms: number }[] = [
    { name: 'first attempt, no jitter (random 0.5)', attempt: 1, random: 0.5, ms: 500 },
    { name: 'doubles per attempt', attempt: 3, random: 0.5, ms: 2000 },
    { name: 'capped at maxBackoffMs', attempt: 10, random: 0.5, ms: 15_000 },
    { name: 'still capped far out (no overflow)', attempt: 5000, random: 0.5, ms: 15_000 },
    { name: 'jitter low end: -20 %', attempt: 1, random: 0, ms: 400 },
    { name: 'jitter high end: +20 % of the cap', attempt: 10, random: 1, ms: 18_000 },
    { name: 'attempt 0 counts as the first', attempt: 0, random: 0.5, ms: 500 },
  ];
  for (const r of rows)
    it(r.name, () => {
      expect(reconnectDelayMs(r.attempt, options, () => r.random)).toBe(r.ms);
    });
});
