/**
 * npm run bench [-- --n 1000,5000,10000 --m 5 --changes 200 --scenarios cold,incremental,burst,resync,memory]
 *
 * Measures the bridge against the real servers of the harness (test/peers): ZooKeeper, Nacos,
 * kube-apiserver with the Istio CRDs, istiod. Starts its own instances of them on free ports
 * (./peers.ts), never the shared peers of the tests, and stops them at the end. Writes
 * bench/results/latest.{json,md,svg,png}.
 * Flags (defaults finish in ~10 minutes on 2 cores):
 *   --n 1000               service counts (ascending; the largest is used for resync and memory)
 *   --m 5                  instances per service
 *   --registries zookeeper,nacos   (also rnacos: r-nacos, the same generator as Java Nacos)
 *   --scenarios cold,incremental,burst,resync,memory
 *   --repeat 2             cold-sync repetitions (bridge and baseline alternate)
 *   --changes 200          incremental changes per registry (half add, half remove)
 *   --istiod-samples 20    new services timed to istiod's registryz (ZooKeeper)
 *   --nacos-changes 200 --nacos-istiod-samples 20   the same for Nacos
 *   --incremental-n <min n> services in the registry during incremental and burst
 *   --nacos-max-n 5000     largest N generated in Nacos (persistent instances register slowly)
 *   --nacos-fuzzy-watch on|off   new Nacos services by fuzzy watch (on) or the names poll (off)
 *   --nacos-push-delay <ms> start Java Nacos with nacos.naming.push.pushTaskDelay=<ms> (default:
 *                          the server's 500 ms)
 *   --debounce 100         controller debounce (ms)
 *   --concurrency 8        kube write concurrency (bridge and baseline)
 *   --qps 100000           the sink's client-side rate limit (high: measure the pipeline, not the limiter)
 *   --burst-changes 1000 --burst-services 100
 *   --churn 3600 --churn-rate 50   memory scenario: instance changes and their rate per second
 *   --keep                 leave the bench's servers running at the end, with the registries and
 *                          ServiceEntries in them (for bench/profile.ts and bench/memory-profile.ts:
 *                          RB_PEERS_FILE=<the state file it prints>; stop them with
 *                          RB_PEERS_FILE=<the same> npm run peers:down)
 *   --resync-ms 60000      the continuous controller's full-resync interval (incremental, burst)
 *   --idle-seconds 120     resync scenario: the bridge's CPU over this long with nothing changing
 *   --resync-runs 5        resync scenario: resyncs timed right after start-up, and again after the idle time
 * Environment: RB_BENCH_BRIDGE_NODE_ARGS="--trace-gc" adds node flags to the bridge process (resync, memory);
 *   RB_BENCH_CPU_PROFILE_DIR=<dir> profiles its resyncs.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Controller } from '../src/controller/controller.js';
import { reconcileOnce } from '../src/controller/reconcile.js';
import type { Started } from '../test/peers/lib/orchestrator.js';
import { apiWrites, buildBridge, closeBridge, type BridgeParams } from './bridge.js';
import { countSEs, deleteAllSEs, ensureNamespace, loadKc, rawApply, watchSEs, type SeEvent } from './kube.js';
import {
  extraInstance,
  nacosDriver,
  zookeeperDriver,
  zookeeperRemoveService,
  type Instance,
  type RegistryDriver,
  setNacosFuzzyWatch,
} from './registries.js';
import { imageNodeOptions, memoryCgroup } from './cgroup.js';
import { startBenchPeers, stopBenchPeers } from './peers.js';
import { relistMemory } from './relist-memory.js';
import { writeResults } from './report.js';
import { cpuSince, processCpuMs, sleep, summarize, waitQuiet } from './stats.js';
import { mapLimit } from '../src/util/concurrency.js';

const here = dirname(fileURLToPath(import.meta.url));
const t00 = Date.now();
const log = (m: string) => process.stderr.write(`[bench +${((Date.now() - t00) / 1000).toFixed(1)}s] ${m}\n`);

function flag(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const num = (name: string, def: number) => Number(flag(name, String(def)));

const sizes = list(flag('n', '1000'))
  .map(Number)
  .sort((a, b) => a - b);
const params = {
  n: sizes,
  m: num('m', 5),
  registries: list(flag('registries', 'zookeeper,nacos')) as RegistryDriver['kind'][],
  scenarios: list(flag('scenarios', 'cold,incremental,burst,resync,memory,relist')),
  repeat: num('repeat', 2),
  changes: num('changes', 200),
  istiodSamples: num('istiod-samples', 20),
  nacosChanges: num('nacos-changes', 200),
  nacosIstiodSamples: num('nacos-istiod-samples', 20),
  incrementalN: num('incremental-n', sizes[0]!),
  nacosMaxN: num('nacos-max-n', 5000),
  debounceMs: num('debounce', 100),
  concurrency: num('concurrency', 8),
  qps: num('qps', 100_000),
  burstChanges: num('burst-changes', 1000),
  burstServices: num('burst-services', 100),
  churn: num('churn', 3600),
  churnRate: num('churn-rate', 50),
  keep: process.argv.includes('--keep'),
  resyncMs: num('resync-ms', 60_000),
  // relist: a Nacos watch's live heap over many re-lists (re-list every relistMs, with churn).
  relistMs: num('relist-interval', 1000),
  relistSeconds: num('relist-seconds', 120),
  // resync: the bridge's CPU over this many seconds of no change after the resyncs (0: skip).
  idleSeconds: num('idle-seconds', 120),
  // resync: the periodic resyncs timed right after start-up, and again after the idle time.
  resyncRuns: num('resync-runs', 5),
  relistChurnRate: num('relist-churn', 10),
  // The bridge process's memory cgroup (0: none). 512 sizes V8's heap as the chart's 256Mi does.
  bridgeMemoryLimitMiB: num('bridge-memory-limit', 512),
  nacosPushTaskDelayMs: flag('nacos-push-delay', '') === '' ? 'server default (500)' : num('nacos-push-delay', 500),
  // New Nacos services: announced by fuzzy watch (on, the default) or found by the names poll (off).
  nacosFuzzyWatch: flag('nacos-fuzzy-watch', 'on') !== 'off',
};
setNacosFuzzyWatch(params.nacosFuzzyWatch);
if (typeof params.nacosPushTaskDelayMs === 'number')
  process.env.RB_NACOS_PUSH_TASK_DELAY_MS = String(params.nacosPushTaskDelayMs);
const want = (s: string) => params.scenarios.includes(s);
const nsOf = (r: string) => `rb-bench-${r}`;

const results: Record<string, unknown> = {
  startedAt: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '?',
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  params,
  cold: [] as unknown[],
  incremental: [] as unknown[],
  burst: [] as unknown[],
  notes: [] as string[],
};
const notes = results.notes as string[];

async function main(): Promise<void> {
  const peerNames = ['kube', 'istiod', ...params.registries];
  log(`peers: ${peerNames.join(', ')}`);
  const started: Started = await startBenchPeers(peerNames, log, { keep: params.keep });
  results.peers = started.reports.map((r) => ({ name: r.name, version: r.version, reused: r.reused }));
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const drivers: RegistryDriver[] = [];
  try {
    const ep = (name: string) => started.records[name]!.endpoints;
    // What the bench's Nacos batches pushes for.
    if (params.registries.includes('nacos') && ep('nacos').pushTaskDelayMs !== undefined)
      (results.params as Record<string, unknown>).nacosPushTaskDelayMs = Number(ep('nacos').pushTaskDelayMs);
    const kubeconfig = ep('kube').kubeconfig!;
    const istiodDebug = ep('istiod').debug!;
    const kc = loadKc(kubeconfig);
    for (const r of params.registries) {
      drivers.push(
        r === 'zookeeper' ? await zookeeperDriver(ep('zookeeper').connect!) : await nacosDriver(ep(r).http!, r),
      );
      await ensureNamespace(kc, nsOf(r));
      await deleteAllSEs(kc, nsOf(r));
    }
    const bridgeParams = (driver: RegistryDriver, over: Partial<BridgeParams> = {}): BridgeParams => ({
      kubeconfig,
      namespace: nsOf(driver.kind),
      source: driver.sourceConfig(),
      qps: params.qps,
      concurrency: params.concurrency,
      debounceMs: params.debounceMs,
      resyncMs: params.resyncMs,
      ...over,
    });
    const maxN = sizes[sizes.length - 1]!;
    // Whose CPU a cold sync costs: the bench process (the bridge runs in it) and every peer.
    const cpuPids: Record<string, number> = { bridge: process.pid };
    for (const [name, rec] of Object.entries(started.records)) if (rec?.pid) cpuPids[name] = rec.pid;

    // ---- 1. cold sync vs raw baseline, per N and registry
    for (const n of sizes) {
      for (const d of drivers) {
        if (nacosLike(d) && n > params.nacosMaxN) {
          notes.push(`nacos: N=${n} skipped (above --nacos-max-n ${params.nacosMaxN})`);
          continue;
        }
        await d.ensure(n, params.m, log);
        if (want('cold'))
          await guard(
            `cold ${d.kind} N=${n}`,
            async () => void (results.cold as unknown[]).push(await coldScenario(d, n, kc, bridgeParams(d), cpuPids)),
          );
      }
    }

    // ---- 2./3. incremental and burst (continuous mode, in-process)
    for (const d of drivers) {
      if (!want('incremental') && !want('burst')) break;
      const n = nacosLike(d) ? Math.min(params.incrementalN, params.nacosMaxN) : params.incrementalN;
      await d.ensure(n, params.m, log);
      await guard(`continuous ${d.kind}`, () => continuousScenarios(d, n, kc, istiodDebug, bridgeParams(d), ep));
    }

    // ---- 5b. a long-running Nacos watch's live heap over many re-lists (with pushes flowing)
    if (want('relist') && params.registries.includes('nacos')) {
      await guard('relist memory', async () => {
        const n = Math.min(params.incrementalN, params.nacosMaxN);
        results.relist = await relistMemory({
          httpBase: ep('nacos').http!,
          kubeconfig,
          n,
          relistMs: params.relistMs,
          seconds: params.relistSeconds,
          churnRate: params.relistChurnRate,
          log,
        });
      });
    }

    // ---- 4./5. resync and memory at the largest N, the bridge in its own process
    if (want('resync') || want('memory')) {
      const d = drivers.find((x) => x.kind === 'zookeeper') ?? drivers[0]!;
      const n = nacosLike(d) ? Math.min(maxN, params.nacosMaxN) : maxN;
      await d.ensure(n, params.m, log);
      await guard('resync/memory', () => bridgeProcessScenarios(d, n, kc, bridgeParams(d)));
    }

    if (!params.keep) for (const d of drivers) await deleteAllSEs(kc, nsOf(d.kind));
  } finally {
    for (const d of drivers) await d.close().catch(() => undefined);
    results.finishedAt = new Date().toISOString();
    results.durationS = Math.round((Date.now() - t00) / 1000);
    await writeResults(join(here, 'results'), results, log);
    if (params.keep)
      log(
        `servers left running: RB_PEERS_FILE=${process.env.RB_PEERS_FILE} (stop them with RB_PEERS_FILE=${process.env.RB_PEERS_FILE} npm run peers:down)`,
      );
    else await stopBenchPeers(started, log).catch((e: unknown) => log(`stopping peers: ${String(e)}`));
  }
}

/** A failing scenario is recorded and the others still run. */
async function guard(what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const msg = `${what} failed: ${String((err as Error)?.message ?? err).slice(0, 300)}`;
    log(msg);
    notes.push(msg);
  }
}

// ------------------------------------------------------------------------------------ cold

async function coldScenario(
  d: RegistryDriver,
  n: number,
  kc: ReturnType<typeof loadKc>,
  bp: BridgeParams,
  pids: Record<string, number>,
) {
  const ns = nsOf(d.kind);
  const bridgeMs: number[] = [];
  const rawMs: number[] = [];
  const cpu = { bridge: [] as Record<string, number>[], raw: [] as Record<string, number>[] };
  const firstWriteMs: number[] = [];
  const bridgeWrites: number[] = [];
  // One untimed dry run first (server-side dry-run applies: nothing is stored): it gives the raw
  // loop its objects, and it warms what a long-running deployment has warm and the raw loop never
  // touches: the registry server's read path (a Java Nacos just started spends seconds of its 2
  // cores JIT-compiling its instance list on the first 1,000 reads) and the bench process's copy
  // of the bridge. kube-apiserver's apply path is warmed for both.
  let desired: object[];
  {
    const b = buildBridge(bp);
    const report = await reconcileOnce(
      b.sources,
      b.sink,
      { policy: 'sync', maxDeletes: 100_000, dryRun: true },
      { logger: b.logger, signal: new AbortController().signal },
    );
    await closeBridge(b);
    desired = report.synth.desired.map((e) => e.object);
  }
  for (let r = 0; r < params.repeat; r++) {
    const order = r % 2 === 0 ? ['bridge', 'raw'] : ['raw', 'bridge'];
    for (const which of order) {
      await deleteAllSEs(kc, ns);
      // Let kube-apiserver, etcd and istiod digest the deletions before the clock starts.
      await sleep(500);
      await waitQuiet(kubeSide(pids));
      if (which === 'bridge') {
        const b = buildBridge(bp);
        // When the first write went out: early creates start before the registry read ends.
        let firstWriteAt: number | undefined;
        const apply = b.sink.apply.bind(b.sink);
        b.sink.apply = (changes, o, signal) => ((firstWriteAt ??= performance.now()), apply(changes, o, signal));
        const c0 = processCpuMs(pids);
        const t0 = performance.now();
        const report = await reconcileOnce(
          b.sources,
          b.sink,
          { policy: 'sync', maxDeletes: 100_000, dryRun: false },
          { logger: b.logger, signal: new AbortController().signal },
        );
        const ms = performance.now() - t0;
        if (firstWriteAt !== undefined) firstWriteMs.push(firstWriteAt - t0);
        cpu.bridge.push(cpuSince(c0, processCpuMs(pids)));
        await closeBridge(b);
        if (report.failedWrites > 0 || report.sourceErrors.length > 0)
          throw new Error(`cold sync failed: ${report.failedWrites} writes, ${JSON.stringify(report.sourceErrors)}`);
        desired = report.synth.desired.map((e) => e.object);
        bridgeMs.push(ms);
        bridgeWrites.push(await apiWrites(b.metrics));
        log(`cold ${d.kind} N=${n} #${r + 1} bridge: ${desired.length} SEs in ${ms.toFixed(0)} ms`);
      } else {
        const c0 = processCpuMs(pids);
        const t0 = performance.now();
        await rawApply(kc, desired, params.concurrency, 'registry-bridge');
        const ms = performance.now() - t0;
        cpu.raw.push(cpuSince(c0, processCpuMs(pids)));
        rawMs.push(ms);
        log(`cold ${d.kind} N=${n} #${r + 1} raw:    ${desired.length} SEs in ${ms.toFixed(0)} ms`);
      }
    }
  }
  const count = await countSEs(kc, ns);
  const b = summarize(bridgeMs);
  const raw = summarize(rawMs);
  return {
    registry: d.kind,
    n,
    m: params.m,
    objects: desired.length,
    objectsInKube: count,
    bridgeMs: b,
    rawMs: raw,
    bridgeWritesPerRun: bridgeWrites,
    bridgePerS: Math.round((desired.length / b.median) * 1000),
    rawPerS: Math.round((desired.length / raw.median) * 1000),
    /** bridge throughput / raw throughput, medians */
    ratio: Math.round((raw.median / b.median) * 1000) / 1000,
    /** CPU ms per run of each process (the bridge is the bench process), median over the repeats. */
    cpuMs: { bridge: medianPer(cpu.bridge), raw: medianPer(cpu.raw) },
    /** From the start of the bridge's run to its first write. */
    bridgeFirstWriteMs: summarize(firstWriteMs),
  };
}

/** Java Nacos and r-nacos: the same API, the same generator, the same limits. */
function nacosLike(d: RegistryDriver): boolean {
  return d.kind === 'nacos' || d.kind === 'rnacos';
}

/** The processes a bulk delete keeps busy: kube-apiserver, etcd, istiod. */
function kubeSide(pids: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).filter(([k]) => k === 'kube' || k === 'etcd' || k === 'istiod'));
}

function medianPer(runs: readonly Record<string, number>[]): Record<string, number> {
  const names = Object.keys(runs[0] ?? {});
  return Object.fromEntries(names.map((k) => [k, Math.round(summarize(runs.map((r) => r[k] ?? 0)).median)]));
}

// ------------------------------------------------------------------ incremental and burst

interface Tracker {
  latest: Map<string, { hosts: string[]; addrs: Set<string> }>;
  waiters: Set<(e: SeEvent) => void>;
}

function waitFor(t: Tracker, match: (e: SeEvent) => boolean, timeoutMs: number): Promise<SeEvent | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      t.waiters.delete(w);
      resolve(undefined);
    }, timeoutMs);
    const w = (e: SeEvent) => {
      if (!match(e)) return;
      clearTimeout(timer);
      t.waiters.delete(w);
      resolve(e);
    };
    t.waiters.add(w);
  });
}

const addrsOf = (e: SeEvent) => new Set((e.obj.spec?.endpoints ?? []).map((x) => x.address ?? ''));

async function continuousScenarios(
  d: RegistryDriver,
  n: number,
  kc: ReturnType<typeof loadKc>,
  istiodDebug: string,
  bp: BridgeParams,
  ep: (name: string) => Record<string, string>,
) {
  const ns = nsOf(d.kind);
  const tracker: Tracker = { latest: new Map(), waiters: new Set() };
  const stopWatch = await watchSEs(kc, ns, (e) => {
    const name = e.obj.metadata?.name ?? '';
    if (e.type === 'DELETED') tracker.latest.delete(name);
    else tracker.latest.set(name, { hosts: e.obj.spec?.hosts ?? [], addrs: addrsOf(e) });
    for (const w of [...tracker.waiters]) w(e);
  });
  const b = buildBridge(bp);
  // When the adapter first hinted each service (its watch or push fired): from there on, the
  // time is the bridge's own (debounce, read, synth, plan, write).
  const hintAt = new Map<string, number>();
  for (const s of b.sources) {
    const adapter = s.adapter;
    const watch = adapter.watch?.bind(adapter);
    if (watch) {
      adapter.watch = (onChange, signal) =>
        watch((keys) => {
          const at = performance.now();
          for (const k of keys ?? []) if (!hintAt.has(k.name)) hintAt.set(k.name, at);
          onChange(keys);
        }, signal);
    }
  }
  const work = new AbortController();
  let runs = 0;
  let firstRun!: () => void;
  const first = new Promise<void>((r) => (firstRun = r));
  const controller = new Controller(
    b.sources,
    b.sink,
    { policy: 'sync', maxDeletes: 100_000, dryRun: false, resyncMs: bp.resyncMs, debounceMs: bp.debounceMs },
    { logger: b.logger, metrics: b.metrics, onReport: () => (runs++, firstRun()) },
    work.signal,
  );
  const t0 = performance.now();
  controller.start();
  await first;
  log(
    `continuous ${d.kind} N=${n}: first reconcile in ${(performance.now() - t0).toFixed(0)} ms; debounce ${bp.debounceMs} ms`,
  );
  await sleep(2000); // watches armed, first writes echoed
  try {
    if (want('incremental')) {
      const add: number[] = [];
      const remove: number[] = [];
      // The same changes timed from the registry's answer to the write (ZooKeeper create/delete,
      // Nacos register/deregister, which for persistent instances is a Raft commit) instead of
      // from the moment the change was issued: what is left is the bridge's, plus the push.
      const fromAck: number[] = [];
      const fromHint: number[] = [];
      const sinceHint = (svc: number, at: number) => {
        const h = hintAt.get(d.serviceName(svc));
        if (h !== undefined && h <= at) fromHint.push(at - h);
      };
      let timeouts = 0;
      const changes = nacosLike(d) ? params.nacosChanges : params.changes;
      for (let k = 0; k < changes / 2; k++) {
        const svc = Math.floor(Math.random() * n);
        const inst = extraInstance();
        let t = performance.now();
        hintAt.delete(d.serviceName(svc));
        const seen = waitFor(tracker, (e) => e.type !== 'DELETED' && addrsOf(e).has(inst.ip), 15_000);
        await d.addInstance(svc, nacosLike(d) ? { ...inst, port: 8080 } : inst);
        let acked = performance.now();
        const ev = await seen;
        if (ev) {
          add.push(ev.at - t);
          fromAck.push(Math.max(0, ev.at - acked));
          sinceHint(svc, ev.at);
        } else timeouts++;
        await sleep(50 + Math.random() * 50);
        const name = ev?.obj.metadata?.name;
        t = performance.now();
        hintAt.delete(d.serviceName(svc));
        const gone = waitFor(tracker, (e) => e.obj.metadata?.name === name && !addrsOf(e).has(inst.ip), 15_000);
        await d.removeInstance(svc, nacosLike(d) ? { ...inst, port: 8080 } : inst);
        acked = performance.now();
        const ev2 = await gone;
        if (ev2) {
          remove.push(ev2.at - t);
          fromAck.push(Math.max(0, ev2.at - acked));
          sinceHint(svc, ev2.at);
        } else timeouts++;
        await sleep(50 + Math.random() * 50);
      }
      const both = [...add, ...remove];
      log(
        `incremental ${d.kind}: p50 ${summarize(both).median} ms p99 ${summarize(both).p99} ms (${timeouts} timeouts)`,
      );

      // a NEW service → ServiceEntry ADDED in kube → visible in istiod's registryz
      const kubeNew: number[] = [];
      const istiodNew: number[] = [];
      let istiodTimeouts = 0;
      const newServices: { svc: number; inst: Instance }[] = [];
      for (let k = 0; k < (nacosLike(d) ? params.nacosIstiodSamples : params.istiodSamples); k++) {
        const svc = 900_000 + Math.floor(Math.random() * 90_000);
        const inst = { ...extraInstance(), port: nacosLike(d) ? 8080 : 20880 };
        const t = performance.now();
        const seen = waitFor(tracker, (e) => e.type === 'ADDED' && addrsOf(e).has(inst.ip), 15_000);
        await d.addInstance(svc, inst);
        newServices.push({ svc, inst });
        const ev = await seen;
        if (!ev) {
          istiodTimeouts++;
          continue;
        }
        kubeNew.push(ev.at - t);
        const host = ev.obj.spec?.hosts?.[0] ?? '';
        let found = false;
        while (performance.now() - t < 30_000) {
          const body = await (await fetch(`${istiodDebug}/debug/registryz`)).text();
          if (body.includes(`"hostname": "${host}"`) || body.includes(`"hostname":"${host}"`)) {
            found = true;
            break;
          }
          await sleep(20);
        }
        if (found) istiodNew.push(performance.now() - t);
        else istiodTimeouts++;
      }
      log(
        `new service ${d.kind}: kube p50 ${summarize(kubeNew).median} ms, istiod registryz p50 ${summarize(istiodNew).median} ms p99 ${summarize(istiodNew).p99} ms`,
      );
      for (const s of newServices) {
        if (d.kind === 'zookeeper') await zookeeperRemoveService(ep('zookeeper').connect!, s.svc);
        else await d.removeInstance(s.svc, s.inst).catch((e: unknown) => notes.push(`cleanup: ${String(e)}`));
      }
      (results.incremental as unknown[]).push({
        registry: d.kind,
        n,
        m: params.m,
        debounceMs: bp.debounceMs,
        changes: both.length,
        timeouts,
        changeToKubeMs: summarize(both),
        ackToKubeMs: summarize(fromAck),
        hintToKubeMs: summarize(fromHint),
        addToKubeMs: summarize(add),
        removeToKubeMs: summarize(remove),
        newServiceToKubeMs: summarize(kubeNew),
        newServiceToIstiodMs: summarize(istiodNew),
        istiodTimeouts,
        samples: {
          changeToKubeMs: both.map((x) => Math.round(x * 10) / 10),
          newServiceToIstiodMs: istiodNew.map((x) => Math.round(x)),
        },
      });
      await sleep(1000);
    }

    if (want('burst')) {
      const services = Math.min(params.burstServices, n);
      const per = Math.ceil(params.burstChanges / services);
      const plan: { svc: number; inst: Instance }[] = [];
      for (let i = 0; i < services; i++)
        for (let k = 0; k < per; k++)
          plan.push({ svc: i, inst: { ...extraInstance(), port: nacosLike(d) ? 8080 : 20880 } });
      const burst = async (label: 'add' | 'remove') => {
        const wanted = new Set(plan.map((p) => p.inst.ip));
        const converged = () => {
          let present = 0;
          for (const v of tracker.latest.values()) for (const a of v.addrs) if (wanted.has(a)) present++;
          return label === 'add' ? present === wanted.size : present === 0;
        };
        const w0 = await apiWrites(b.metrics);
        const r0 = runs;
        const t = performance.now();
        const done = converged() ? Promise.resolve(undefined) : waitFor(tracker, () => converged(), 60_000);
        await mapLimit(plan, nacosLike(d) ? 64 : 256, (p) =>
          label === 'add' ? d.addInstance(p.svc, p.inst) : d.removeInstance(p.svc, p.inst),
        );
        const issuedMs = performance.now() - t;
        const ev = await done;
        const convergeMs = ev ? ev.at - t : NaN;
        await sleep(2 * bp.debounceMs + 3000); // trailing runs and writes
        const writes = (await apiWrites(b.metrics)) - w0;
        const entry = {
          registry: d.kind,
          n,
          kind: label,
          changes: plan.length,
          services,
          issuedMs: Math.round(issuedMs),
          convergeMs: Math.round(convergeMs),
          apiWrites: writes,
          reconcileRuns: runs - r0,
          debounceMs: bp.debounceMs,
        };
        log(
          `burst ${d.kind} ${label}: ${plan.length} changes issued in ${entry.issuedMs} ms, converged in ${entry.convergeMs} ms, ${writes} API writes, ${entry.reconcileRuns} runs`,
        );
        (results.burst as unknown[]).push(entry);
      };
      await burst('add');
      await burst('remove');
    }
  } finally {
    work.abort();
    await controller.stop();
    await closeBridge(b);
    stopWatch();
  }
}

// ------------------------------------------------------------- resync + memory (own process)

async function bridgeProcessScenarios(d: RegistryDriver, n: number, kc: ReturnType<typeof loadKc>, bp: BridgeParams) {
  const ns = nsOf(d.kind);
  await deleteAllSEs(kc, ns);
  await sleep(Math.min(5000, 500 + n / 5));
  // The bridge bundled as the product ships (npm run bench builds it with scripts/bundle.mjs):
  // tsx's loader alone adds ~90 MiB RSS, unbundled modules ~25 MiB. Run directly with tsx and
  // no fresh bundle, the bench falls back to the TypeScript source (and says so).
  const bundled = join(here, '..', 'dist', 'bench', 'bridge-process.mjs');
  const mtime = (p: string) => (existsSync(p) ? statSync(p).mtimeMs : Infinity);
  const useCompiled =
    existsSync(bundled) &&
    statSync(bundled).mtimeMs >=
      Math.max(mtime(join(here, 'bridge-process.ts')), mtime(join(here, '..', 'dist', 'src', 'cli', 'main.js')));
  if (!useCompiled)
    log('bridge process from the TypeScript source under tsx (run `npm run bench` to measure the bundled bridge)');
  // As in the chart's pod: a memory limit, from which Node sizes V8's heap (bench/cgroup.ts).
  const cgroup =
    params.bridgeMemoryLimitMiB > 0 ? memoryCgroup('rb-bench-bridge', params.bridgeMemoryLimitMiB) : undefined;
  if (cgroup instanceof Error) {
    const note = `the bridge process runs without a memory limit, so with V8's heap sized for this whole machine (no cgroup for --bridge-memory-limit ${params.bridgeMemoryLimitMiB}: ${cgroup.message})`;
    log(note);
    notes.push(note);
  }
  const limited = cgroup instanceof Error ? undefined : cgroup;
  // The node flags the container image sets (Dockerfile), as the deployed bridge has them.
  const imageOptions = imageNodeOptions(join(here, '..', 'Dockerfile'));
  const spawnBridge = () => {
    // RB_BENCH_BRIDGE_NODE_ARGS: extra node flags for the bridge only (e.g. --trace-gc).
    const nodeArgs = [
      ...(useCompiled ? [] : ['--import', 'tsx']),
      ...(process.env.RB_BENCH_BRIDGE_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
    ];
    const child: ChildProcess = fork(useCompiled ? bundled : join(here, 'bridge-process.ts'), [], {
      // In the cgroup before node starts (it reads the limit once, when it sizes the heap).
      ...(limited
        ? {
            execPath: '/bin/sh',
            execArgv: ['-c', `echo $$ > '${limited.procs}' && exec "$@"`, 'sh', process.execPath, ...nodeArgs],
          }
        : { execArgv: nodeArgs }),
      env: {
        ...process.env,
        ...(imageOptions !== undefined ? { NODE_OPTIONS: imageOptions } : {}),
        RB_BENCH_BRIDGE: JSON.stringify({ ...bp, resyncMs: 60_000 }),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let seq = 0;
    const pending = new Map<number, (v: Record<string, unknown>) => void>();
    // A bridge that dies (the cgroup's OOM killer, a crash) fails the scenario instead of hanging it.
    let exited: Error | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      child.on('message', (m: Record<string, unknown>) => (m.ready ? resolve() : pending.get(m.id as number)?.(m)));
      child.on('exit', (code, signal) => {
        exited = new Error(
          `the bridge process exited (${signal ? `signal ${signal}${signal === 'SIGKILL' && limited ? ", the memory cgroup's OOM killer?" : ''}` : `code ${code}`})`,
        );
        reject(exited);
        for (const answer of pending.values()) answer({ ok: false, error: exited.message });
      });
    });
    ready.catch(() => undefined);
    const ask = async (cmd: string) => {
      await ready;
      if (exited) throw exited;
      return new Promise<Record<string, unknown>>((resolve, reject) => {
        const id = ++seq;
        pending.set(id, (m) => (pending.delete(id), m.ok ? resolve(m) : reject(new Error(String(m.error)))));
        child.send({ cmd, id });
      });
    };
    const stop = async () => {
      await ask('stop').catch(() => undefined);
      const gone = new Promise<void>((r) =>
        child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()),
      );
      child.kill();
      await gone; // then its cgroup is empty and can be removed
    };
    return { ask, stop, pid: child.pid };
  };
  const stats = (rs: Record<string, unknown>[]) => ({
    runs: rs.length,
    apiWrites: rs.map((r) => r.writes as number),
    cpuMs: summarize(rs.map((r) => r.cpuMs as number)),
    wallMs: summarize(rs.map((r) => r.wallMs as number)),
    counts: rs[0]!.counts,
  });
  const runtime = `${useCompiled ? 'node dist/bench/bridge-process.mjs (bundled like dist/registry-bridge.mjs)' : 'tsx bench/bridge-process.ts'}${imageOptions ? ` with the image's NODE_OPTIONS "${imageOptions}"` : ''}${limited ? ` in a ${limited.limitMiB} MiB memory cgroup` : ', no memory limit'}`;

  // The deployed bridge's life in one process: cold sync, the continuous controller (watches
  // armed, periodic resyncs), then churn. Memory is measured in this process only.
  const bridge = spawnBridge();
  const resyncs: Record<string, unknown>[] = [];
  const settled: Record<string, unknown>[] = [];
  let idle: { seconds: number; cpuMs: number; msPerS: number } | undefined;
  try {
    const ask = bridge.ask;
    const cold = await ask('sync');
    log(
      `bridge process N=${n}: cold sync ${Math.round(cold.wallMs as number)} ms, ${cold.writes} writes, memory ${JSON.stringify(cold.memory)}`,
    );
    // The continuous controller's periodic resync (the scenario's target): watches armed, the
    // registry answered from the watched view, the kube list and the plan done in full.
    const tStart = performance.now();
    await ask('start');
    log(
      `bridge process N=${n}: continuous controller started, first run done and idle after ${Math.round(performance.now() - tStart)} ms`,
    );
    for (let i = 0; i < params.resyncRuns; i++) resyncs.push(await ask('resync'));
    log(
      `resync N=${n} (continuous): writes ${resyncs.map((r) => r.writes).join(',')}, CPU median ${stats(resyncs).cpuMs.median} ms, wall median ${stats(resyncs).wallMs.median} ms`,
    );
    // What the running bridge costs while nothing changes: watches (or pushes) live, the
    // periodic resync (every 60 s here) and the adapters' own re-lists and polls included.
    if (params.idleSeconds > 0 && bridge.pid !== undefined) {
      const pid = { bridge: bridge.pid };
      const c0 = processCpuMs(pid).bridge!;
      const t0 = performance.now();
      await sleep(params.idleSeconds * 1000);
      const seconds = (performance.now() - t0) / 1000;
      const cpuMs = processCpuMs(pid).bridge! - c0;
      idle = { seconds: Math.round(seconds), cpuMs: Math.round(cpuMs), msPerS: Math.round(cpuMs / seconds) };
      log(`idle N=${n}: ${idle.msPerS} ms of the bridge's CPU a second over ${idle.seconds} s with nothing changing`);
      // The same resync once the start-up is long over (every Nacos subscription answered): what
      // each periodic resync costs for the rest of the bridge's life.
      for (let i = 0; i < params.resyncRuns; i++) settled.push(await ask('resync'));
      log(
        `resync N=${n} (continuous, ${idle.seconds} s after start-up): writes ${settled.map((r) => r.writes).join(',')}, CPU median ${stats(settled).cpuMs.median} ms, wall median ${stats(settled).wallMs.median} ms`,
      );
    }
    if (want('memory')) {
      const afterSync = resyncs[resyncs.length - 1]!.memory;
      await sleep(1000);
      const samples: { atS: number; changes: number; memory: unknown; runs: unknown }[] = [];
      const s0 = await ask('memory');
      samples.push({ atS: 0, changes: 0, memory: s0.memory, runs: s0.runs });
      const t0 = performance.now();
      const live: { svc: number; inst: Instance }[] = [];
      const interval = 1000 / params.churnRate;
      let next = performance.now();
      for (let k = 0; k < params.churn; k++) {
        // Alternate, once 25 added instances are live: add an instance to a random service, or
        // remove a random one of those added earlier. (Removing the instance just added, 20 ms
        // later, is no change at all to a registry that batches its pushes, as Nacos does.)
        if (live.length >= 50 || (live.length >= 25 && k % 2 === 1)) {
          const p = live.splice(Math.floor(Math.random() * live.length), 1)[0]!;
          await d.removeInstance(p.svc, p.inst);
        } else {
          const p = {
            svc: Math.floor(Math.random() * n),
            inst: { ...extraInstance(), port: nacosLike(d) ? 8080 : 20880 },
          };
          await d.addInstance(p.svc, p.inst);
          live.push(p);
        }
        next += interval;
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
        if ((k + 1) % Math.max(1, Math.floor(params.churn / 6)) === 0) {
          const s = await ask('memory');
          samples.push({
            atS: Math.round((performance.now() - t0) / 1000),
            changes: k + 1,
            memory: s.memory,
            runs: s.runs,
          });
          log(`churn ${k + 1}/${params.churn}: ${JSON.stringify(s.memory)} runs ${s.runs}`);
        }
      }
      for (const p of live.splice(0)) await d.removeInstance(p.svc, p.inst);
      await sleep(3000);
      const end = await ask('memory');
      samples.push({
        atS: Math.round((performance.now() - t0) / 1000),
        changes: params.churn,
        memory: end.memory,
        runs: end.runs,
      });
      results.memory = {
        registry: d.kind,
        n,
        m: params.m,
        runtime,
        afterFullSync: afterSync,
        // After each of the resyncs, the first right after the watches were armed.
        afterEachResync: resyncs.map((r) => r.memory),
        afterColdSync: cold.memory,
        afterChurn: end.memory,
        churn: `${params.churn} instance changes (${(params.churn / 3600).toFixed(2)} h at 1 change/s) at ${params.churnRate}/s on random services, bridge in continuous mode (debounce ${bp.debounceMs} ms): ${Number(end.runs) - Number(s0.runs)} controller runs`,
        samples,
      };
    }
  } finally {
    await bridge.stop();
  }

  // An unchanged full reconcile without watches, as `sync --once` does against a synced cluster
  // (a full registry walk and a full kube list), in a process of its own: three full walks would
  // leave their garbage in the V8 heap of the process whose memory is measured above.
  const once = spawnBridge();
  const onces = [];
  try {
    for (let i = 0; i < 3; i++) onces.push(await once.ask('sync'));
  } finally {
    await once.stop();
    limited?.remove();
  }
  const res = {
    registry: d.kind,
    n,
    m: params.m,
    runtime,
    ...stats(resyncs),
    once: stats(onces),
    ...(idle ? { idle } : {}),
    ...(settled.length > 0 ? { settled: stats(settled) } : {}),
  };
  results.resync = res;
  log(
    `full reconcile N=${n} without watches (sync --once): writes ${res.once.apiWrites.join(',')}, CPU median ${res.once.cpuMs.median} ms, wall median ${res.once.wallMs.median} ms`,
  );
}

process.on('unhandledRejection', (err) => log(`unhandled: ${String((err as Error)?.message ?? err)}`));
main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`failed: ${String((err as Error)?.stack ?? err)}`);
    process.exit(1);
  },
);
