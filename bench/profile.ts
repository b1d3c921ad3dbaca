/**
 * One unchanged resync under the CPU profiler, for "where does the time go":
 *   node --cpu-prof --cpu-prof-dir=bench/results/prof --import tsx bench/profile.ts [zookeeper|nacos]
 *   npx tsx bench/profile-summary.ts bench/results/prof/<file>.cpuprofile
 * Uses the servers `npm run bench -- --keep` left running (RB_PEERS_FILE=<the state file it
 * printed>), their registry and ServiceEntries;
 * dry-run, so it never writes: with the objects in place that is exactly an unchanged resync.
 * With `cold` after the registry (`... bench/profile.ts nacos cold`), each run first deletes the
 * namespace's ServiceEntries and then writes them all: the bridge's side of a cold sync alone.
 */
import { performance } from 'node:perf_hooks';
import { reconcileOnce } from '../src/controller/reconcile.js';
import { peer } from '../test/peers/endpoints.js';
import { apiWrites, buildBridge, closeBridge } from './bridge.js';
import { deleteAllSEs, ensureNamespace, loadKc } from './kube.js';
import { sleep } from './stats.js';
import { nacosSource, zookeeperSource } from './registries.js';

const kind = process.argv[2] === 'nacos' ? 'nacos' : 'zookeeper';
const source = kind === 'zookeeper' ? zookeeperSource(peer('zookeeper').connect!) : nacosSource(peer('nacos').http!);
const b = buildBridge({
  kubeconfig: peer('kube').kubeconfig,
  namespace: `rb-bench-${kind}`,
  source,
  qps: 100_000,
  concurrency: 8,
  debounceMs: 100,
  resyncMs: 60_000,
});
const cold = process.argv[3] === 'cold';
for (let i = 0; i < 3; i++) {
  if (cold) {
    const kc = loadKc(peer('kube').kubeconfig!);
    await ensureNamespace(kc, `rb-bench-${kind}`);
    await deleteAllSEs(kc, `rb-bench-${kind}`);
    await sleep(2_000); // let kube-apiserver and istiod digest the deletes
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await reconcileOnce(
    b.sources,
    b.sink,
    { policy: 'sync', maxDeletes: 100_000, dryRun: !cold },
    { logger: b.logger, signal: new AbortController().signal },
  );
  const cpu = process.cpuUsage(c0);
  console.log(
    JSON.stringify({
      run: i,
      wallMs: Math.round(performance.now() - t0),
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      counts: r.plan.counts,
      writes: await apiWrites(b.metrics),
    }),
  );
}
await closeBridge(b);
process.exit(0);
