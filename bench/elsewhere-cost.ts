/**
 * What the check of hosts declared in other namespaces costs (src/sinks/kube/elsewhere.ts): an
 * own etcd + kube-apiserver (never the tests' shared ones), N ServiceEntries spread over other
 * namespaces, then the bridge's CPU, wall time and heap for the cluster-wide list a `sync --once`
 * makes, and for a full run's observe answered from the cluster-wide watch's cache. Half the
 * entries are Dubbo-like (TCP 20880 and gRPC), half HTTP.
 *
 *   npx tsx bench/elsewhere-cost.ts [--n 10000] [--namespaces 100]
 */
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import PQueue from 'p-queue';
import { silentLogger } from '../src/log.js';
import { BridgeMetrics } from '../src/metrics.js';
import { serviceEntryApi } from '../src/sinks/kube/api.js';
import { Elsewhere } from '../src/sinks/kube/elsewhere.js';
import type { KubeSinkOptions } from '../src/sinks/kube/options.js';
import { startBenchPeers, stopBenchPeers } from './peers.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const N = arg('n', 10_000);
const NAMESPACES = arg('namespaces', 100);
const log = (m: string) => process.stderr.write(`[elsewhere-cost] ${m}\n`);

async function measure<T>(what: string, fn: () => Promise<T>): Promise<T> {
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await fn();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const heap = process.memoryUsage().heapUsed - heap0;
  // What stays while the result is held (a collection with `out` still referenced).
  global.gc?.();
  const kept = process.memoryUsage().heapUsed - heap0;
  log(
    `${what}: wall ${wall.toFixed(0)} ms, bridge CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, heap +${(heap / 2 ** 20).toFixed(1)} MiB, +${(kept / 2 ** 20).toFixed(1)} MiB kept after a collection`,
  );
  return out;
}

async function main(): Promise<void> {
  const started = await startBenchPeers(['kube'], log);
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(started.records.kube!.endpoints.kubeconfig!);
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const target = 'bridge-target';
    for (const name of [target, ...Array.from({ length: NAMESPACES }, (_, i) => `other-${i}`)])
      await core.createNamespace({ body: { metadata: { name } } });
    const queue = new PQueue({ concurrency: 16 });
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      const namespace = `other-${i % NAMESPACES}`;
      void queue.add(() =>
        custom.createNamespacedCustomObject({
          group: 'networking.istio.io',
          version: 'v1',
          namespace,
          plural: 'serviceentries',
          body: {
            apiVersion: 'networking.istio.io/v1',
            kind: 'ServiceEntry',
            metadata: { name: `svc-${i}`, labels: { app: `svc-${i}` } },
            spec: {
              hosts: [`svc-${i}.${namespace}.example`],
              // Half Dubbo-like (a TCP port shared by all of them, and a gRPC one), half HTTP: the
              // check of ports shared without addresses keeps the ports of every entry elsewhere.
              ports:
                i % 2 === 0
                  ? [
                      { number: 20880, name: 'dubbo', protocol: 'TCP' },
                      { number: 50051, name: 'tri', protocol: 'GRPC' },
                    ]
                  : [{ number: 8080, name: 'http', protocol: 'HTTP' }],
              resolution: 'STATIC',
              location: 'MESH_INTERNAL',
              endpoints: Array.from({ length: 5 }, (_, k) => ({ address: `10.${k}.${(i >> 8) & 255}.${i & 255}` })),
            },
          },
        }),
      );
    }
    await queue.onIdle();
    log(`${N} ServiceEntries in ${NAMESPACES} other namespaces created in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    const options: KubeSinkOptions = {
      kc,
      namespaces: [target],
      apiVersion: 'networking.istio.io/v1',
      fieldManager: 'registry-bridge',
      qps: 50,
      concurrency: 8,
      logger: silentLogger(),
      metrics: new BridgeMetrics(),
    };
    const api = serviceEntryApi(options, options.logger);
    const signal = new AbortController().signal;
    for (let r = 1; r <= 3; r++) {
      const elsewhere = new Elsewhere(api, options, options.logger);
      const entries = await measure(`sync --once: cluster-wide list, run ${r}`, () => elsewhere.observe(signal));
      if (entries.length !== N) throw new Error(`listed ${entries.length}, expected ${N}`);
    }
    const watched = new Elsewhere(api, options, options.logger);
    const stop = new AbortController();
    await measure('continuous: the cluster-wide watch primed (list, then watch)', async () => {
      await watched.watch(stop.signal);
      // (its cache is private: read here only to know when the watch is live)
      const cache = (watched as unknown as { cache: { live: boolean; entries: Map<string, unknown> } }).cache;
      while (!(cache.live && cache.entries.size === N)) await new Promise((r) => setTimeout(r, 100));
    });
    for (let r = 1; r <= 3; r++)
      await measure(`continuous: a full run's observe from the watch cache, run ${r}`, () => watched.observe(signal));
    const cached = await watched.observe(signal);
    log(`an entry elsewhere as the cache keeps it: ${JSON.stringify(cached[0])}`);
    stop.abort();
  } finally {
    await stopBenchPeers(started, log);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exitCode = 1;
});
