import type { Writable } from 'node:stream';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BridgeMetrics } from '../metrics.js';
import type { BridgeConfig, SourceConfig } from '../config/schema.js';
import { secretResolver } from '../config/secret.js';
import { defaultExcludedMetadata, defaultSynthOptions, type SynthOptions } from '../synth/index.js';
import { defaultSecretKeyPatterns, secretKeyMatcher } from '../redact.js';
import { adapterFor } from '../sources/registry.js';
import { filesSink } from '../sinks/files.js';
import { stdoutSink } from '../sinks/stdout.js';
import type { Sink } from '../sinks/types.js';
import type { ConfiguredSource, ReconcileOptions } from './reconcile.js';
import { isAbsolute, resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeSink, type KubeSink } from '../sinks/kube/sink.js';
import { boundRequests, loadKubeConfig, type KubeRequests } from '../sinks/kube/client.js';

export function synthOptionsOf(source: SourceConfig, defaultHostTemplate: string, apiVersion: string): SynthOptions {
  const se = source.serviceEntry;
  return {
    ...defaultSynthOptions,
    apiVersion,
    hostTemplate: source.hostTemplate ?? defaultHostTemplate,
    namespace: source.targetNamespace,
    location: se.location,
    includeUnhealthy: se.includeUnhealthy,
    excludeMetadata: [...defaultExcludedMetadata, ...se.excludeMetadata],
    secretMetadata: secretKeyMatcher([
      ...(se.secretMetadata.useDefaults ? defaultSecretKeyPatterns : []),
      ...se.secretMetadata.add,
    ]),
    protocolOverrides: Object.fromEntries(Object.entries(se.protocols).map(([k, v]) => [k.toLowerCase(), v])),
    ...(se.exportTo !== undefined ? { exportTo: se.exportTo } : {}),
  };
}

export function buildSources(
  config: BridgeConfig,
  deps: {
    logger: Logger;
    baseDir: string;
    env: Readonly<Record<string, string | undefined>>;
    apiVersion: string;
    metrics: BridgeMetrics;
  },
): ConfiguredSource[] {
  return config.sources.map((source, i) => {
    const factory = adapterFor(source.kind);
    if (!factory) throw new ConfigError(`sources[${i}].kind`, `no adapter for kind "${source.kind}"`);
    const adapter = factory.create(source[source.kind], {
      source: source.name,
      logger: deps.logger.child({ component: 'source', source: source.name, kind: source.kind }),
      baseDir: deps.baseDir,
      resolveSecret: secretResolver(deps.env, deps.baseDir),
      metrics: deps.metrics,
    });
    return {
      name: source.name,
      kind: source.kind,
      adapter,
      synth: synthOptionsOf(source, factory.defaultHostTemplate, deps.apiVersion),
    };
  });
}

/** The reconcile options a configuration gives, the same for `sync --once` and continuous mode. */
export function reconcileOptionsOf(
  config: BridgeConfig,
  flags: { readonly dryRun: boolean; readonly allowShrink?: boolean },
): ReconcileOptions {
  const hold = config.policy.shrinkHold;
  return {
    policy: config.policy.mode,
    maxDeletes: config.policy.maxDeletesPerRun,
    dryRun: flags.dryRun,
    ...(hold.enabled && flags.allowShrink !== true
      ? {
          shrinkHold: {
            percent: hold.percent,
            minEntries: hold.minEntries,
            confirmMs: hold.confirmFor,
            recheckMs: hold.recheckAfter,
          },
        }
      : {}),
  };
}

export interface BuiltSink {
  readonly sink: Sink;
  /** The kube sink's client configuration (leader election and propagation checks use it too). */
  readonly kc?: KubeConfig;
  /** The ServiceEntry apiVersion synthesis writes. */
  readonly apiVersion: string;
  /** Checks at start that the sink can be used at all (kube: see KubeSink.preflight). */
  readonly preflight?: (signal: AbortSignal) => Promise<void>;
  /** The deadline of every kube request, and what aborts those in flight (shutdown). */
  readonly requests?: KubeRequests;
}

type KubeSinkConfig = Extract<BridgeConfig['sink'], { kind: 'kube' }>;

/**
 * The kube sink of `config` with its kube sink settings `sink` and the client configuration `kc`,
 * writing into the sources' target namespaces.
 */
export function kubeSinkOf(
  config: BridgeConfig,
  sink: KubeSinkConfig,
  kc: KubeConfig,
  deps: { readonly logger: Logger; readonly metrics: BridgeMetrics },
): KubeSink {
  return kubeSink({
    kc,
    namespaces: config.sources.map((s) => s.targetNamespace),
    apiVersion: sink.apiVersion,
    fieldManager: sink.fieldManager,
    qps: sink.qps,
    concurrency: sink.concurrency,
    logger: deps.logger,
    metrics: deps.metrics,
  });
}

/**
 * Builds the configured sink, or stdout when `output` asks for rendered objects only.
 * `kubeconfig`/`context` (command-line flags) win over the sink's own settings.
 */
export function buildSink(
  config: BridgeConfig,
  flags: {
    readonly output?: 'yaml' | 'json';
    readonly kubeconfig?: string;
    readonly context?: string;
    readonly dryRun?: boolean;
  },
  deps: {
    stdout: Writable;
    baseDir: string;
    logger: Logger;
    metrics: BridgeMetrics;
    /** KUBECONFIG and HOME for the kubeconfig lookup (default: the process's environment). */
    env?: Readonly<Record<string, string | undefined>>;
  },
): BuiltSink {
  const defaultApiVersion = 'networking.istio.io/v1';
  if (flags.output) return { sink: stdoutSink(deps.stdout, flags.output), apiVersion: defaultApiVersion };
  const sink = config.sink;
  switch (sink.kind) {
    case 'stdout':
      return { sink: stdoutSink(deps.stdout, sink.format), apiVersion: defaultApiVersion };
    case 'files':
      return {
        sink: filesSink(isAbsolute(sink.dir) ? sink.dir : resolve(deps.baseDir, sink.dir), {
          logger: deps.logger,
          metrics: deps.metrics,
          dryRun: flags.dryRun === true,
        }),
        apiVersion: defaultApiVersion,
      };
    case 'kube': {
      const kc = loadKubeConfig({
        kubeconfig: flags.kubeconfig ?? sink.kubeconfig,
        context: flags.context ?? sink.context,
        ...(deps.env ? { env: deps.env } : {}),
      });
      // Before any API client is made from kc: every one of them gets the deadline.
      const requests = boundRequests(kc, sink.requestTimeout);
      const kube = kubeSinkOf(config, sink, kc, deps);
      return {
        sink: kube,
        preflight: (signal) => kube.preflight(signal),
        kc,
        requests,
        apiVersion: sink.apiVersion === 'auto' ? defaultApiVersion : sink.apiVersion,
      };
    }
  }
}
