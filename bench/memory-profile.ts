/**
 * Where the bridge's memory goes at N services, step by step (after GC at each step):
 *   node --expose-gc --import tsx bench/memory-profile.ts [zookeeper|nacos]
 * Uses the servers `npm run bench -- --keep` left running (RB_PEERS_FILE=<the state file it
 * printed>): the registry's services and their ServiceEntries. Dry-run: it never writes.
 */
import { performance } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { Controller } from '../src/controller/controller.js';
import { peer } from '../test/peers/endpoints.js';
import { buildBridge, closeBridge } from './bridge.js';
import { nacosSource, zookeeperSource } from './registries.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const mib = (x: number) => Math.round((x / 1048576) * 10) / 10;
const rows: { step: string; rssMiB: number; heapUsedMiB: number; heapTotalMiB: number; externalMiB: number }[] = [];
function step(name: string) {
  gc!();
  gc!();
  const m = process.memoryUsage();
  rows.push({
    step: name,
    rssMiB: mib(m.rss),
    heapUsedMiB: mib(m.heapUsed),
    heapTotalMiB: mib(m.heapTotal),
    externalMiB: mib(m.external),
  });
  console.log(JSON.stringify(rows.at(-1)));
}

step('node + tsx, nothing loaded');
const kind = process.argv[2] === 'nacos' ? 'nacos' : 'zookeeper';
const source = kind === 'zookeeper' ? zookeeperSource(peer('zookeeper').connect!) : nacosSource(peer('nacos').http!);
const b = buildBridge({
  kubeconfig: peer('kube').kubeconfig,
  namespace: `rb-bench-${kind}`,
  source,
  qps: 100_000,
  concurrency: 8,
  debounceMs: 100,
  resyncMs: 600_000,
});
step('bridge built (modules loaded)');
const ac = new AbortController();
await b.sources[0]!.adapter.watch?.(() => {}, ac.signal);
step('adapter watching (view armed)');
let reports = 0;
const c = new Controller(
  b.sources,
  b.sink,
  { policy: 'sync', maxDeletes: 100_000, dryRun: true, resyncMs: 600_000, debounceMs: 100 },
  { logger: b.logger, metrics: b.metrics, onReport: () => void reports++ },
  ac.signal,
);
const t0 = performance.now();
c.start();
while (reports < 1) await new Promise((r) => setTimeout(r, 100));
console.log(`first full run after ${Math.round(performance.now() - t0)} ms`);
await new Promise((r) => setTimeout(r, 2000));
step('controller after its first full run');
for (let i = 0; i < 3; i++) {
  const before = reports;
  c.trigger(0);
  while (reports === before) await new Promise((r) => setTimeout(r, 50));
}
step('after 3 more full resyncs');
if (process.env.RB_HEAP_SNAPSHOT) console.log(`heap snapshot: ${writeHeapSnapshot()}`);
ac.abort();
await c.stop();
await closeBridge(b);
console.table(rows);
process.exit(0);
