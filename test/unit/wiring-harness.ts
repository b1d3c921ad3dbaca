import { Writable } from 'node:stream';
import type { BridgeConfig } from '../../src/config/schema.js';
import { runContinuous, type ContinuousDeps } from '../../src/controller/run.js';
import { buildSink, buildSources } from '../../src/controller/wiring.js';
import type { Logger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';

/**
 * The sources and sink of `config` as the bridge builds them: paths relative to `baseDir`, no
 * environment, apiVersion networking.istio.io/v1, a stdout that discards what it is given.
 */
export function wire(config: BridgeConfig, baseDir: string, logger: Logger, metrics = new BridgeMetrics()) {
  const { sink } = buildSink(
    config,
    {},
    { stdout: new Writable({ write: (_c, _e, cb) => cb() }), baseDir, logger, metrics },
  );
  const sources = buildSources(config, { logger, baseDir, env: {}, apiVersion: 'networking.istio.io/v1', metrics });
  return { config, sources, sink, logger, metrics };
}

/** Continuous mode over what wire() built: not a dry run, no environment. */
export function runWired(
  wired: ReturnType<typeof wire>,
  shutdown: AbortSignal,
  hooks: Pick<ContinuousDeps, 'onListening' | 'onReport'>,
): Promise<number> {
  return runContinuous({ ...wired, dryRun: false, shutdown, env: {}, ...hooks });
}

/** runWired() until its server listens: the port, and the promise of the exit code. */
export async function listenWired(
  wired: ReturnType<typeof wire>,
  shutdown: AbortSignal,
  onReport?: ContinuousDeps['onReport'],
): Promise<{ port: number; exit: Promise<number> }> {
  let exit: Promise<number> | undefined;
  const port = await new Promise<number>((resolve) => {
    exit = runWired(wired, shutdown, { onListening: resolve, ...(onReport ? { onReport } : {}) });
  });
  return { port, exit: exit! };
}

/** GET http://127.0.0.1:`port``path`: the status and the body. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}
