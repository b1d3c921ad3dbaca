/**
 * The bridge as the product wires it: a parsed config (the adapters' own schemas), buildSources
 * and the kube sink, for one registry and one target namespace.
 */
import { bridgeConfigSchema, type BridgeConfig } from '../src/config/schema.js';
import { buildSources, kubeSinkOf } from '../src/controller/wiring.js';
import type { ConfiguredSource } from '../src/controller/reconcile.js';
import { createLogger, type Logger } from '../src/log.js';
import { BridgeMetrics } from '../src/metrics.js';
import { loadKubeConfig } from '../src/sinks/kube/client.js';
import type { KubeSink } from '../src/sinks/kube/sink.js';
import { adapterFactories } from '../src/sources/registry.js';

export interface BridgeSetup {
  readonly config: BridgeConfig;
  readonly sources: ConfiguredSource[];
  readonly sink: KubeSink;
  readonly metrics: BridgeMetrics;
  readonly logger: Logger;
}

export interface BridgeParams {
  readonly kubeconfig: string;
  readonly namespace: string;
  readonly source: Record<string, unknown>;
  readonly qps: number;
  readonly concurrency: number;
  readonly debounceMs: number;
  readonly resyncMs: number;
  readonly logLevel?: string;
}

export function bridgeConfig(p: BridgeParams): BridgeConfig {
  return bridgeConfigSchema(adapterFactories).parse({
    sources: [{ name: `bench-${String(p.source.kind)}`, targetNamespace: p.namespace, ...p.source }],
    policy: { mode: 'sync', maxDeletesPerRun: 100_000 },
    sink: {
      kind: 'kube',
      kubeconfig: p.kubeconfig,
      apiVersion: 'networking.istio.io/v1',
      qps: p.qps,
      concurrency: p.concurrency,
    },
    controller: { resyncInterval: p.resyncMs, debounce: p.debounceMs },
    log: { level: p.logLevel ?? 'warn' },
  }) as BridgeConfig;
}

export function buildBridge(p: BridgeParams): BridgeSetup {
  const config = bridgeConfig(p);
  const logger = createLogger({ level: p.logLevel ?? 'warn' });
  const metrics = new BridgeMetrics();
  const kc = loadKubeConfig({ kubeconfig: p.kubeconfig });
  const sink = kubeSinkOf(config, config.sink as Extract<BridgeConfig['sink'], { kind: 'kube' }>, kc, {
    logger,
    metrics,
  });
  const sources = buildSources(config, {
    logger,
    baseDir: process.cwd(),
    env: {},
    apiVersion: 'networking.istio.io/v1',
    metrics,
  });
  return { config, sources, sink, metrics, logger };
}

export async function closeBridge(b: BridgeSetup): Promise<void> {
  await Promise.allSettled(b.sources.map((s) => s.adapter.close()));
  await b.sink.close?.();
}

/** Sum of metrics.apiWrites over every label set. */
export async function apiWrites(metrics: BridgeMetrics): Promise<number> {
  const m = await metrics.apiWrites.get();
  return m.values.reduce((n, v) => n + v.value, 0);
}
