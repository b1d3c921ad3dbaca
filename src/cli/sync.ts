import { Writable } from 'node:stream';
import { loadConfigFile } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../log.js';
import { adapterFactories } from '../sources/registry.js';
import { buildLocalSink, buildSources } from '../controller/wiring.js';
import { exitCodeOf, reconcileOnce } from '../controller/reconcile.js';
import { stdoutSink } from '../sinks/stdout.js';
import { BridgeMetrics } from '../metrics.js';
import type { Sink } from '../sinks/types.js';
import type { CliIo, SyncFlags } from './main.js';

export async function runSync(flags: SyncFlags, io: CliIo): Promise<number> {
  const { config, baseDir } = await loadConfigFile(flags.config, adapterFactories);
  const logger = createLogger({
    level: flags.logLevel ?? config.log.level,
    destination: { write: (s: string) => io.stderr.write(s) } as never,
  });
  const stdout = new Writable({ write: (chunk, _enc, cb) => (io.stdout.write(String(chunk)), cb()) });

  let sink: Sink;
  if (flags.output) sink = stdoutSink(stdout, flags.output);
  else if (config.sink.kind === 'kube') throw new ConfigError('sink.kind', 'the kube sink is not available in this build');
  else sink = buildLocalSink(config.sink, { stdout, baseDir });

  if (!flags.once) throw new ConfigError('', 'continuous mode needs the kube sink controller; use --once');

  const sources = buildSources(config, { logger, baseDir, env: io.env, apiVersion: 'networking.istio.io/v1', metrics: new BridgeMetrics() });
  const controller = new AbortController();
  try {
    const report = await reconcileOnce(
      sources,
      sink,
      { policy: config.policy.mode, maxDeletes: config.policy.maxDeletesPerRun, dryRun: flags.dryRun === true },
      { logger, signal: controller.signal },
    );
    return exitCodeOf(report, flags.dryRun === true);
  } finally {
    controller.abort();
    await Promise.allSettled(sources.map((s) => s.adapter.close()));
  }
}
