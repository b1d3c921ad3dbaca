/**
 * The bridge alone in its own process (forked by bench/run.ts), so its RSS, heap and CPU are
 * the bridge's and not the generators'. Commands over IPC:
 *   {cmd:'sync'}      one reconcileOnce (a full sync) → wall time, writes, CPU, memory after GC
 *   {cmd:'start'}     the continuous controller (watches, debounce, resync); answers after its first run
 *   {cmd:'resync'}    the running controller's periodic full resync, triggered now → as for sync
 *                     (under the CPU profiler when RB_BENCH_CPU_PROFILE_DIR names a directory)
 *   {cmd:'memory'}    memory now (after GC) and controller run count
 *   {cmd:'stop'}      stop and exit
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { Controller } from '../src/controller/controller.js';
import { reconcileOnce, type ReconcileReport } from '../src/controller/reconcile.js';
import { apiWrites, buildBridge, closeBridge, type BridgeParams } from './bridge.js';
import { exposedGc } from './stats.js';

const gc = exposedGc();

const params = JSON.parse(process.env.RB_BENCH_BRIDGE ?? '{}') as BridgeParams;
const bridge = buildBridge(params);
const work = new AbortController();
let controller: Controller | undefined;
let runs = 0;
let nextReport: ((r: ReconcileReport) => void) | undefined;
/** RB_BENCH_CPU_PROFILE_DIR: each resync runs under the CPU profiler → resync-<n>.cpuprofile there. */
const profileDir = process.env.RB_BENCH_CPU_PROFILE_DIR;
let profiled = 0;
async function profiling<T>(fn: () => Promise<T>): Promise<T> {
  if (!profileDir) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(profileDir, `resync-${++profiled}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

function memory() {
  gc();
  const m = process.memoryUsage();
  const mib = (x: number) => Math.round((x / 1048576) * 10) / 10;
  // Per V8 space: committed MiB / used MiB (where heapTotal above heapUsed sits).
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics().map((x) => [x.space_name, `${mib(x.space_size)}/${mib(x.space_used_size)}`]),
  );
  // V8's heap limit: Node sizes it from the process's memory limit (a pod's, or the bench's cgroup).
  const heapLimitMiB = mib(getHeapStatistics().heap_size_limit);
  return {
    rssMiB: mib(m.rss),
    heapUsedMiB: mib(m.heapUsed),
    heapTotalMiB: mib(m.heapTotal),
    externalMiB: mib(m.external),
    arrayBuffersMiB: mib(m.arrayBuffers),
    heapLimitMiB,
    spaces,
  };
}

const send = (msg: unknown) => process.send?.(msg);

/** Resolves once the controller has had no run in progress for 300 ms. */
async function idle(c: Controller): Promise<void> {
  let quiet = 0;
  while (quiet < 3) {
    await new Promise((r) => setTimeout(r, 100));
    quiet = c.status().running ? 0 : quiet + 1;
  }
}

process.on('message', (msg: { cmd: string; id: number }) => {
  void (async () => {
    try {
      if (msg.cmd === 'sync') {
        const w0 = await apiWrites(bridge.metrics);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const report = await reconcileOnce(
          bridge.sources,
          bridge.sink,
          { policy: 'sync', maxDeletes: 100_000, dryRun: false },
          { logger: bridge.logger, signal: work.signal },
        );
        const wallMs = performance.now() - t0;
        const cpu = process.cpuUsage(c0);
        const writes = (await apiWrites(bridge.metrics)) - w0;
        send({
          id: msg.id,
          ok: true,
          wallMs,
          cpuMs: (cpu.user + cpu.system) / 1000,
          writes,
          counts: report.plan.counts,
          failedWrites: report.failedWrites,
          sourceErrors: report.sourceErrors,
          memory: memory(),
        });
      } else if (msg.cmd === 'start') {
        controller = new Controller(
          bridge.sources,
          bridge.sink,
          {
            policy: 'sync',
            maxDeletes: 100_000,
            dryRun: false,
            resyncMs: bridge.config.controller.resyncInterval,
            debounceMs: bridge.config.controller.debounce,
          },
          {
            logger: bridge.logger,
            metrics: bridge.metrics,
            onReport: (r) => {
              runs++;
              nextReport?.(r);
              nextReport = undefined;
            },
          },
          work.signal,
        );
        const first = new Promise<ReconcileReport>((r) => (nextReport = r));
        controller.start();
        await first;
        await idle(controller);
        send({ id: msg.id, ok: true });
      } else if (msg.cmd === 'resync') {
        if (!controller) throw new Error('resync needs a started controller');
        await idle(controller);
        const w0 = await apiWrites(bridge.metrics);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const report = await profiling(() => {
          const done = new Promise<ReconcileReport>((r) => (nextReport = r));
          controller!.trigger(0); // no keys: a full run, exactly what the resync ticker does
          return done;
        });
        const wallMs = performance.now() - t0;
        const cpu = process.cpuUsage(c0);
        const writes = (await apiWrites(bridge.metrics)) - w0;
        send({
          id: msg.id,
          ok: true,
          wallMs,
          cpuMs: (cpu.user + cpu.system) / 1000,
          writes,
          counts: report.plan.counts,
          scope: report.scope,
          failedWrites: report.failedWrites,
          sourceErrors: report.sourceErrors,
          memory: memory(),
        });
      } else if (msg.cmd === 'memory') {
        send({ id: msg.id, ok: true, runs, writes: await apiWrites(bridge.metrics), memory: memory() });
      } else if (msg.cmd === 'stop') {
        work.abort();
        await controller?.stop();
        await closeBridge(bridge);
        send({ id: msg.id, ok: true });
        setTimeout(() => process.exit(0), 50);
      }
    } catch (err) {
      send({ id: msg.id, ok: false, error: String((err as Error)?.stack ?? err) });
    }
  })();
});
send({ ready: true });
