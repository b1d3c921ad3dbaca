/**
 * Does a long-running Nacos watch hold on to memory? Runs the Nacos source as a Deployment runs
 * it (watch with gRPC push, periodic HTTP re-list, service-name poll) against the real server,
 * with a short re-list interval so a day of a deployment's re-lists happens in minutes, and
 * samples the live heap after a full GC. With a churn rate, an instance is added to (and later
 * removed from) a random service that many times a second, so gRPC pushes flow as well.
 *
 * The `relist` scenario of `npm run bench`, or alone with the peers that are up:
 *   npm run bench:relist-memory -- [--n 1000] [--relist-ms 1000] [--seconds 120] [--churn-rate 5]
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { buildBridge, closeBridge } from './bridge.js';
import { extraInstance, nacosDriver, nacosSource, type Instance } from './registries.js';
import { exposedGc, sleep } from './stats.js';

export interface RelistMemoryParams {
  /** Nacos HTTP base (…/nacos) and the kubeconfig the bridge is built with (never written to). */
  readonly httpBase: string;
  readonly kubeconfig: string;
  readonly n: number;
  readonly relistMs: number;
  readonly seconds: number;
  readonly churnRate: number;
  readonly log: (m: string) => void;
}

export interface RelistMemoryResult {
  readonly n: number;
  readonly relistMs: number;
  readonly seconds: number;
  readonly relists: number;
  readonly churnRate: number;
  readonly changes: number;
  readonly hints: number;
  readonly samples: readonly { atS: number; heapMiB: number }[];
  /** Least-squares growth over the second half of the samples (after the caches filled). */
  readonly slopeKiBPerRelist: number;
}

export async function relistMemory(p: RelistMemoryParams): Promise<RelistMemoryResult> {
  const gc = exposedGc();
  const driver = await nacosDriver(p.httpBase);
  await driver.ensure(p.n, 5, p.log);
  const source = nacosSource(p.httpBase) as { nacos: Record<string, unknown> };
  source.nacos.relistInterval = p.relistMs;
  // Every re-list as fast as the interval asks (the default rate would stretch each over 20 s).
  source.nacos.relistRate = 1_000_000;
  source.nacos.serviceListInterval = Math.max(100, Math.floor(p.relistMs / 2));
  const b = buildBridge({
    kubeconfig: p.kubeconfig,
    namespace: 'rb-bench-nacos',
    source,
    qps: 100_000,
    concurrency: 8,
    debounceMs: 100,
    resyncMs: 600_000,
  });
  const adapter = b.sources[0]!.adapter;
  const stop = new AbortController();
  let hints = 0;
  let changes = 0;
  const added: { service: number; inst: Instance }[] = [];
  const samples: { atS: number; heapMiB: number }[] = [];
  try {
    await adapter.list(stop.signal);
    if (!adapter.watch) throw new Error('the nacos adapter does not watch');
    void adapter.watch(() => void (hints += 1), stop.signal);
    // Churn: each tick adds an instance to a random service, or removes one added before.
    const churn = async () => {
      while (!stop.signal.aborted) {
        await sleep(1000 / p.churnRate);
        if (stop.signal.aborted) break;
        if (added.length > 0 && (added.length > 50 || Math.random() < 0.5)) {
          const { service, inst } = added.splice(Math.floor(Math.random() * added.length), 1)[0]!;
          await driver.removeInstance(service, inst);
        } else {
          const service = Math.floor(Math.random() * p.n);
          const inst = extraInstance();
          await driver.addInstance(service, inst);
          added.push({ service, inst });
        }
        changes += 1;
      }
    };
    const churning = p.churnRate > 0 ? churn() : Promise.resolve();
    const heapMiB = () => {
      gc();
      gc();
      return Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 10) / 10;
    };
    const t0 = performance.now();
    const step = Math.max(5, Math.floor(p.seconds / 12));
    for (let at = 0; at <= p.seconds; at += step) {
      await sleep(Math.max(0, t0 + at * 1000 - performance.now()));
      samples.push({ atS: at, heapMiB: heapMiB() });
      p.log(`relist memory: t=${at}s heap ${samples.at(-1)!.heapMiB} MiB, hints ${hints}, changes ${changes}`);
    }
    stop.abort();
    await churning;
  } finally {
    stop.abort();
    for (const { service, inst } of added.splice(0)) await driver.removeInstance(service, inst).catch(() => undefined);
    await closeBridge(b);
    await driver.close();
  }
  const tail = samples.slice(Math.floor(samples.length / 2));
  const mx = tail.reduce((s, x) => s + x.atS, 0) / tail.length;
  const my = tail.reduce((s, x) => s + x.heapMiB, 0) / tail.length;
  const slope =
    tail.reduce((s, x) => s + (x.atS - mx) * (x.heapMiB - my), 0) / tail.reduce((s, x) => s + (x.atS - mx) ** 2, 0);
  return {
    n: p.n,
    relistMs: p.relistMs,
    seconds: p.seconds,
    relists: Math.floor((p.seconds * 1000) / p.relistMs),
    churnRate: p.churnRate,
    changes,
    hints,
    samples,
    slopeKiBPerRelist: Math.round(((slope * p.relistMs) / 1000) * 1024 * 10) / 10,
  };
}

// Alone: with the peers that are up.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { peer } = await import('../test/peers/endpoints.js');
  const flag = (name: string, def: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : def;
  };
  const result = await relistMemory({
    httpBase: peer('nacos').http!,
    kubeconfig: peer('kube').kubeconfig!,
    n: flag('n', 1000),
    relistMs: flag('relist-ms', 1000),
    seconds: flag('seconds', 120),
    churnRate: flag('churn-rate', 0),
    log: (m) => process.stderr.write(`${m}\n`),
  });
  console.log(JSON.stringify({ node: process.version, ...result }));
  process.exit(0);
}
