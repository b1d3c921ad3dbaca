import { Writable } from 'node:stream';
import { loadConfigFile } from '../config/load.js';
import { checkSecretRefs } from '../config/secret.js';
import { createLogger } from '../log.js';
import { adapterFactories } from '../sources/registry.js';
import { buildSink, buildSources, reconcileOptionsOf } from '../controller/wiring.js';
import { reconcileOnce } from '../controller/reconcile.js';
import { exitCodeOf } from '../controller/exit-code.js';
import { runContinuous } from '../controller/run.js';
import { BridgeMetrics } from '../metrics.js';
import { onAbort, settleWithin } from '../util/abort.js';
import { formatDuration } from '../config/duration.js';
import type { CliIo, SyncFlags } from './types.js';

/** How long closing the sources and the sink may take at the end of a run. */
const CLOSE_GRACE_MS = 5_000;

export async function runSync(flags: SyncFlags, io: CliIo, shutdown?: AbortSignal): Promise<number> {
  const { config, baseDir } = await loadConfigFile(flags.config, adapterFactories);
  await checkSecretRefs(config.sources, io.env, baseDir);
  const logger = createLogger({
    level: flags.logLevel ?? config.log.level,
    destination: { write: (s: string) => io.stderr.write(s) } as never,
  });
  const metrics = new BridgeMetrics();
  const stdout = new Writable({ write: (chunk, _enc, cb) => (io.stdout.write(String(chunk)), cb()) });

  const { sink, kc, apiVersion, preflight, requests } = buildSink(config, flags, {
    stdout,
    baseDir,
    logger,
    metrics,
    env: io.env,
  });
  // Shutdown: kube requests in flight get controller.shutdownGrace to finish, then they are
  // aborted (each write among them is reported as not written), so that an API server that
  // holds a request (its storage gone) does not hold the process for its own timeout.
  const grace = config.controller.shutdownGrace;
  let graceTimer: NodeJS.Timeout | undefined;
  const unlinkShutdown = shutdown
    ? onAbort(shutdown, () => {
        graceTimer = setTimeout(() => {
          if (!requests) return;
          logger.warn(
            { component: 'main', shutdownGraceMs: grace },
            'shutdown grace passed: aborting the kube requests still in flight',
          );
          requests.abortAll(`shutting down: no answer within controller.shutdownGrace (${grace} ms)`);
        }, grace);
        graceTimer.unref();
      })
    : () => undefined;
  // Unreachable API server, rejected credentials, missing CRDs, RBAC: one clear line, exit 1.
  try {
    await preflight?.(shutdown ?? new AbortController().signal);
  } catch (err) {
    clearTimeout(graceTimer);
    unlinkShutdown();
    throw err;
  }

  const sources = buildSources(config, { logger, baseDir, env: io.env, apiVersion, metrics });
  const ownShutdown = new AbortController();
  const signal = shutdown ?? ownShutdown.signal;
  try {
    if (!flags.once) {
      return await runContinuous({
        config,
        sources,
        sink,
        ...(kc ? { kc } : {}),
        logger,
        metrics,
        dryRun: flags.dryRun === true,
        shutdown: signal,
        env: io.env,
        ...(requests ? { requests } : {}),
      });
    }
    const options = reconcileOptionsOf(config, {
      dryRun: flags.dryRun === true,
      allowShrink: flags.allowShrink === true,
    });
    let report = await reconcileOnce(sources, sink, options, { logger, signal });
    // A registry that has just restarted may answer before its data is back: on a sharp shrink
    // every source is read once more after a short delay (everything else is applied already).
    const recheckMs = options.shrinkHold?.recheckMs ?? 0;
    const shrinking = report.plan.shrinks.filter((s) => s.held).map((s) => s.source);
    if (shrinking.length > 0 && recheckMs > 0 && !signal.aborted) {
      logger
        .child({ component: 'reconcile' })
        .warn(
          { sources: shrinking, recheckInMs: recheckMs },
          `sharp shrink of ${shrinking.map((s) => `"${s}"`).join(', ')}: reading the sources again in ${formatDuration(recheckMs)} (policy.shrinkHold.recheckAfter)`,
        );
      if (await sleep(recheckMs, signal)) report = await reconcileOnce(sources, sink, options, { logger, signal });
    }
    return exitCodeOf(report, flags.dryRun === true);
  } finally {
    ownShutdown.abort();
    // Bounded: a write in flight to an API server that went silent cannot be aborted, and must
    // not keep a process that is done (a lost lease, a shutdown) from exiting.
    await settleWithin(
      (async () => {
        await Promise.allSettled(sources.map((s) => s.adapter.close()));
        await sink.close?.();
      })(),
      CLOSE_GRACE_MS,
    );
    clearTimeout(graceTimer);
    unlinkShutdown();
  }
}

/** Waits `ms`; false when the signal aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', aborted);
      resolve(ok);
    };
    const aborted = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', aborted, { once: true });
  });
}
