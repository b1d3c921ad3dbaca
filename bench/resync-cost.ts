/**
 * The CPU of the bridge's own share of an unchanged full resync, in one process and without any
 * server: N Dubbo interfaces of `--m` providers each (the bench's ZooKeeper data, parsed by the
 * ZooKeeper adapter's layouts), synthesized, and planned against what the kube sink would hold
 * for them (every object up to date), as the continuous controller's full run does it with the
 * watched view (the same service objects every run): synthesis, plan, collision check, decision
 * log, controller cache. Server round trips are not in it.
 *   npx tsx bench/resync-cost.ts [--n 10000] [--m 5] [--runs 15] [--once]
 * Prints the CPU of each run and the median; the first runs warm the code and the memo.
 */
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { createLogger } from '../src/log.js';
import { BridgeMetrics } from '../src/metrics.js';
import type { ObservedEntry } from '../src/plan/plan.js';
import type { Sink } from '../src/sinks/types.js';
import { currentOwners, observedOfWritten, planAndApply, type ReconcileReport } from '../src/controller/reconcile.js';
import { cacheFromReport } from '../src/controller/incremental.js';
import { synthAll, type SynthOptions } from '../src/synth/index.js';
import { servicesOfRoots } from '../adapters/zookeeper/layouts.js';
import { bridgeConfig } from './bridge.js';
import { buildSources } from '../src/controller/wiring.js';
import { baseIp, dubboInterface } from './registries.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const n = arg('n', 10_000);
const m = arg('m', 5);
const runs = arg('runs', 15);

const config = bridgeConfig({
  kubeconfig: '/dev/null',
  namespace: 'rb-bench-zookeeper',
  source: { kind: 'zookeeper', zookeeper: { connect: '127.0.0.1:2181/rb-bench', layout: 'dubbo', root: '/dubbo' } },
  qps: 100_000,
  concurrency: 8,
  debounceMs: 100,
  resyncMs: 60_000,
});
// --once: as `sync --once` (every collision logged at warn, here to /dev/null), not as the controller.
const once = process.argv.includes('--once');
const logger = createLogger({
  level: 'warn',
  destination: once ? pino.destination({ dest: '/dev/null', sync: true }) : { write: () => undefined },
});
const sources = buildSources(config, {
  logger,
  baseDir: process.cwd(),
  env: {},
  apiVersion: 'networking.istio.io/v1',
  metrics: new BridgeMetrics(),
});
const source = sources[0]!;
const options: SynthOptions = source.synth;
await source.adapter.close();

const url = (iface: string, ip: string) =>
  encodeURIComponent(
    `dubbo://${ip}:20880/${iface}?anyhost=true&application=bench-app&dubbo=2.0.2&interface=${iface}&methods=ping,pong&pid=1&release=3.2.10&side=provider&timestamp=1700000000000&version=1.0.0`,
  );
const dubbo = Array.from({ length: n }, (_, i) => {
  const iface = dubboInterface(i);
  return {
    name: iface,
    path: `/dubbo/${iface}`,
    providers: Array.from({ length: m }, (_, k) => url(iface, baseIp(i, k))).sort(),
    configurators: [],
  };
});
const { services } = servicesOfRoots(
  [{ root: '/dubbo', namespace: 'rb-bench/dubbo', dubbo, curator: [], metadata: [] }],
  source.name,
  { maxDataBytes: 1024 * 1024, applicationLevel: 'merge' },
);
// What the sink holds: every object as synthesized (owned, same hash).
const observed: ObservedEntry[] = synthAll([{ services, options }]).desired.map((d, i) => ({
  ...observedOfWritten(d, String(1000 + i), `uid-${i}`),
  created: '2026-12-04T00:00:00Z',
}));
const sink: Sink = {
  kind: 'kube',
  observe: () => Promise.resolve(observed),
  apply: () => Promise.resolve([]),
} as unknown as Sink;
const reported = new Set<string>();
const cpu: number[] = [];
for (let r = 0; r < runs; r++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const seen = await sink.observe(new AbortController().signal);
  const synth = synthAll([{ services: [...services], options }], currentOwners(seen));
  const report: ReconcileReport = await planAndApply(
    {
      scope: 'full',
      snapshots: [{ source: source.name, services, rejected: [] }],
      sourceErrors: [],
      sourceHealthy: new Map([[source.name, true]]),
      synth,
      observed: seen,
      started: Date.now(),
    },
    sink,
    { policy: 'sync', maxDeletes: 100_000, dryRun: false },
    { logger, signal: new AbortController().signal, ...(once ? {} : { reportedCollisions: reported }) },
  );
  cacheFromReport(report);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
  if (report.plan.counts.unchanged !== n)
    throw new Error(`expected ${n} unchanged: ${JSON.stringify(report.plan.counts)}`);
  process.stderr.write(
    `run ${r}: CPU ${Math.round((c.user + c.system) / 1000)} ms, wall ${Math.round(performance.now() - t0)} ms, collisions ${report.plan.collisions.length}\n`,
  );
}
const tail = cpu.slice(3).sort((a, b) => a - b);
console.log(
  JSON.stringify({ n, m, runs, cpuMs: cpu.map(Math.round), medianAfterWarmup: Math.round(tail[tail.length >> 1]!) }),
);
