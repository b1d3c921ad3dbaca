/**
 * Does a long-running Nacos watch hold on to memory? Runs the Nacos source as a Deployment runs
 * it (watch with gRPC push, periodic HTTP re-list, service-name poll) against the real server,
 * with a short re-list interval so an hour of a deployment's re-lists happens in minutes, and
 * samples the live heap after a full GC. With `--churn-rate`, an instance is added to (and
 * later removed from) a random service that many times a second, so gRPC pushes flow as well.
 * Uses the peers that are up (npm run peers:up nacos).
 *   npm run bench:relist-memory -- [--n 1000] [--relist-ms 1000] [--seconds 120] [--churn-rate 5]
 */
import { performance } from 'node:perf_hooks';
import { peer } from '../test/peers/endpoints.js';
import { buildBridge, closeBridge } from './bridge.js';
import { extraInstance, nacosDriver, nacosSource, type Instance } from './registries.js';

const flag = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const n = flag('n', 1000);
const relistMs = flag('relist-ms', 1000);
const seconds = flag('seconds', 120);
const churnRate = flag('churn-rate', 0);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const http = peer('nacos').http!;
const driver = await nacosDriver(http);
await driver.ensure(n, 5, (m) => console.error(m));
const source = nacosSource(http) as { nacos: Record<string, unknown> };
source.nacos.relistInterval = relistMs;
source.nacos.serviceListInterval = Math.max(100, Math.floor(relistMs / 2));
const b = buildBridge({ kubeconfig: peer('kube').kubeconfig!, namespace: 'rb-bench-nacos', source, qps: 100_000, concurrency: 8, debounceMs: 100, resyncMs: 600_000 });
const adapter = b.sources[0]!.adapter;
const stop = new AbortController();
let hints = 0;
await adapter.list(stop.signal);
if (!adapter.watch) throw new Error("the nacos adapter does not watch");
void adapter.watch(() => void (hints += 1), stop.signal);

const heapMiB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};
// Churn: each tick adds an instance to a random service, or removes one added before.
let changes = 0;
const added: { service: number; inst: Instance }[] = [];
const churn = async () => {
  while (!stop.signal.aborted) {
    await new Promise((r) => setTimeout(r, 1000 / churnRate));
    if (stop.signal.aborted) break;
    if (added.length > 0 && (added.length > 50 || Math.random() < 0.5)) {
      const { service, inst } = added.splice(Math.floor(Math.random() * added.length), 1)[0]!;
      await driver.removeInstance(service, inst);
    } else {
      const service = Math.floor(Math.random() * n);
      const inst = extraInstance();
      await driver.addInstance(service, inst);
      added.push({ service, inst });
    }
    changes += 1;
  }
};
const churning = churnRate > 0 ? churn() : Promise.resolve();
const samples: { atS: number; heapMiB: number }[] = [];
const t0 = performance.now();
const step = Math.max(5, Math.floor(seconds / 12));
for (let at = 0; at <= seconds; at += step) {
  await new Promise((r) => setTimeout(r, Math.max(0, t0 + at * 1000 - performance.now())));
  samples.push({ atS: at, heapMiB: Math.round(heapMiB() * 10) / 10 });
  console.error(`t=${at}s heap ${samples.at(-1)!.heapMiB} MiB, hints ${hints}, changes ${changes}`);
}
stop.abort();
await churning;
for (const { service, inst } of added) await driver.removeInstance(service, inst);
await closeBridge(b);
await driver.close();
// Least-squares slope of the second half (after the caches filled).
const tail = samples.slice(Math.floor(samples.length / 2));
const mx = tail.reduce((s, p) => s + p.atS, 0) / tail.length;
const my = tail.reduce((s, p) => s + p.heapMiB, 0) / tail.length;
const slope = tail.reduce((s, p) => s + (p.atS - mx) * (p.heapMiB - my), 0) / tail.reduce((s, p) => s + (p.atS - mx) ** 2, 0);
const relists = (seconds * 1000) / relistMs;
console.log(JSON.stringify({ node: process.version, n, relistMs, seconds, relists, churnRate, changes, hints, first: samples[0], last: samples.at(-1), slopeKiBPerRelist: Math.round(((slope * relistMs) / 1000) * 1024 * 10) / 10 }));
process.exit(0);
