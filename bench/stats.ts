import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
/** Order statistics of a sample (nearest-rank percentiles). */
export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly median: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    n: s.length,
    min: round(s[0] ?? NaN),
    median: round(percentile(s, 50)),
    p99: round(percentile(s, 99)),
    max: round(s[s.length - 1] ?? NaN),
    mean: round(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** V8's full GC as a function, without starting node with --expose-gc (memory is sampled after it). */
export function exposedGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** CPU time (user + system, ms) used so far by each process, from /proc (Linux); 0 when unreadable. */
export function processCpuMs(pids: Readonly<Record<string, number>>): Record<string, number> {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    try {
      // Fields after "pid (comm) ": state is [0], utime [11], stime [12] (proc(5), 14 and 15).
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()!.split(' ');
      out[name] = (Number(fields[11]) + Number(fields[12])) * tick;
    } catch {
      out[name] = 0;
    }
  }
  return out;
}

/** after − before, per process. */
export function cpuSince(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
): Record<string, number> {
  return Object.fromEntries(Object.keys(before).map((k) => [k, Math.max(0, (after[k] ?? 0) - before[k]!)]));
}

/**
 * Waits until the named processes are quiet together (under `maxCores` over `windowMs`), up to
 * `timeoutMs`: after a bulk delete, kube-apiserver, etcd and istiod work for seconds, and the
 * next timed run must not pay for it. Returns how long it waited.
 */
export async function waitQuiet(
  pids: Readonly<Record<string, number>>,
  opts: { maxCores?: number; windowMs?: number; timeoutMs?: number } = {},
): Promise<number> {
  const { maxCores = 0.15, windowMs = 500, timeoutMs = 30_000 } = opts;
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const before = processCpuMs(pids);
    await sleep(windowMs);
    const used = Object.values(cpuSince(before, processCpuMs(pids))).reduce((a, b) => a + b, 0);
    if (used / windowMs <= maxCores) break;
  }
  return Date.now() - t0;
}
