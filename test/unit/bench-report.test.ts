/**
 * The benchmark's arithmetic and its verdicts (bench/stats.ts, bench/report.ts): a wrong
 * percentile or a target judged on half the samples would publish a wrong "yes" in the README.
 */
import { describe, expect, it } from 'vitest';
import { markdown, targets } from '../../bench/report.js';
import { percentile, summarize } from '../../bench/stats.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('bench stats', () => {
  it('nearest-rank percentiles', () => {
    expect(percentile(range(100), 99)).toBe(99);
    expect(percentile(range(100), 50)).toBe(50);
    expect(percentile(range(200), 99)).toBe(198);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([3, 9], 50)).toBe(3);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarize sorts, rounds to 0.01 and keeps n', () => {
    expect(summarize([3.14159, 1, 2])).toEqual({ n: 3, min: 1, median: 2, p99: 3.14, max: 3.14, mean: 2.05 });
  });
});

/** A run's result as bench/run.ts writes it, with only what targets() and markdown() read. */
function result(over: Record<string, unknown> = {}) {
  const cpu = (values: number[]) => summarize(values);
  return {
    startedAt: '2026-12-03T00:00:00Z',
    durationS: 1,
    machine: { cpus: 2, cpuModel: 'x', memGiB: 24, node: 'v20' },
    params: { n: [10000], m: 5, concurrency: 8, qps: 100000, debounceMs: 100, registries: ['zookeeper'] },
    cold: [],
    incremental: [],
    burst: [],
    resync: {
      registry: 'zookeeper',
      n: 10000,
      m: 5,
      runs: 3,
      apiWrites: [0, 0, 0],
      cpuMs: cpu([228, 360, 423]),
      wallMs: cpu([277, 482, 559]),
      settled: { runs: 3, apiWrites: [0, 0, 0], cpuMs: cpu([328, 360, 423]), wallMs: cpu([419, 491, 603]) },
    },
    ...over,
  };
}
const verdict = (r: Record<string, unknown>, prefix: string) =>
  targets(r).find((t) => String(t.target).startsWith(prefix))?.met;

describe('bench targets', () => {
  it('the resync target needs every resync, right after start-up and after it, under 1 s with no write', () => {
    expect(verdict(result(), 'unchanged resync')).toBe(true);
    const slowLater = result();
    slowLater.resync.settled.cpuMs = summarize([300, 400, 1200]);
    expect(verdict(slowLater, 'unchanged resync')).toBe(false);
    const writesLater = result();
    writesLater.resync.settled.apiWrites = [0, 1, 0];
    expect(verdict(writesLater, 'unchanged resync')).toBe(false);
    const slowFirst = result();
    slowFirst.resync.cpuMs = summarize([300, 400, 1001]);
    expect(verdict(slowFirst, 'unchanged resync')).toBe(false);
    const small = result();
    small.resync.n = 1000;
    expect(verdict(small, 'unchanged resync')).toBeNull();
  });

  it('cold sync is met at 90 % of the raw loop and not below', () => {
    const cold = (ratio: number) => result({ cold: [{ registry: 'zookeeper', n: 1000, ratio }] });
    expect(verdict(cold(0.9), 'cold sync')).toBe(true);
    expect(verdict(cold(0.87), 'cold sync')).toBe(false);
  });

  it('change → ServiceEntry: p99 against debounce + 100 ms, and no timeouts', () => {
    const inc = (p99s: number[], timeouts = 0) =>
      result({
        incremental: [{ registry: 'nacos', n: 1000, debounceMs: 100, timeouts, changeToKubeMs: summarize(p99s) }],
      });
    expect(verdict(inc([120, 150, 199]), 'change')).toBe(true);
    expect(verdict(inc([120, 150, 226]), 'change')).toBe(false);
    expect(verdict(inc([120, 150, 199], 1), 'change')).toBe(false);
  });

  it('RSS counts every sample, not only the last', () => {
    const mem = (peak: number) =>
      result({
        memory: {
          n: 10000,
          m: 5,
          afterColdSync: { rssMiB: 184 },
          afterFullSync: { rssMiB: 230 },
          afterChurn: { rssMiB: 212, heapUsedMiB: 69 },
          afterEachResync: [{ rssMiB: 230 }, { rssMiB: peak }, { rssMiB: 231 }],
          samples: [{ memory: { rssMiB: 210 } }],
        },
      });
    expect(verdict(mem(255.9), 'RSS')).toBe(true);
    expect(verdict(mem(256.1), 'RSS')).toBe(false);
  });

  it('the Markdown shows both sets of resyncs', () => {
    const md = markdown({ ...result(), targets: targets(result()) });
    expect(md).toContain('CPU ms 228 / 360 / 423');
    expect(md).toContain('after that idle time');
    expect(md).toContain('CPU ms 328 / 360 / 423');
  });
});
