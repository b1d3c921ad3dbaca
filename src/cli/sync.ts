import { Writable } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadConfigFile } from '../config/load.js';
import { createLogger } from '../log.js';
import { adapterFactories } from '../sources/registry.js';
import { buildLocalSink, buildSources } from '../controller/wiring.js';
import { exitCodeOf, reconcileOnce } from '../controller/reconcile.js';
import { runContinuous } from '../controller/run.js';
import { stdoutSink } from '../sinks/stdout.js';
import { kubeSink } from '../sinks/kube/sink.js';
import { loadKubeConfig } from '../sinks/kube/client.js';
import type { Sink } from '../sinks/types.js';
import { BridgeMetrics } from '../metrics.js';
import type { CliIo, SyncFlags } from './main.js';

export async function runSync(flags: SyncFlags, io: CliIo, shutdown?: AbortSignal): Promise<number> {
  const { config, baseDir } = await loadConfigFile(flags.config, adapterFactories);
  const logger = createLogger({
    level: flags.logLevel ?? config.log.level,
    destination: { write: (s: string) => io.stderr.write(s) } as never,
  });
  const metrics = new BridgeMetrics();
  const stdout = new Writable({ write: (chunk, _enc, cb) => (io.stdout.write(String(chunk)), cb()) });

  let sink: Sink;
  let kc: KubeConfig | undefined;
  let apiVersion = 'networking.istio.io/v1';
  if (flags.output) {
    sink = stdoutSink(stdout, flags.output);
  } else if (config.sink.kind === 'kube') {
    kc = loadKubeConfig({
      kubeconfig: flags.kubeconfig ?? config.sink.kubeconfig,
      context: flags.context ?? config.sink.context,
    });
    const kube = kubeSink({
      kc,
      namespaces: config.sources.map((s) => s.targetNamespace),
      apiVersion: config.sink.apiVersion,
      fieldManager: config.sink.fieldManager,
      qps: config.sink.qps,
      concurrency: config.sink.concurrency,
      logger,
      metrics,
    });
    sink = kube;
    apiVersion = config.sink.apiVersion === 'auto' ? 'networking.istio.io/v1' : config.sink.apiVersion;
  } else {
    sink = buildLocalSink(config.sink, { stdout, baseDir });
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
      });
    }
    const report = await reconcileOnce(
      sources,
      sink,
      { policy: config.policy.mode, maxDeletes: config.policy.maxDeletesPerRun, dryRun: flags.dryRun === true },
      { logger, signal },
    );
    return exitCodeOf(report, flags.dryRun === true);
  } finally {
    ownShutdown.abort();
    await Promise.allSettled(sources.map((s) => s.adapter.close()));
    await sink.close?.();
  }
}
