import type { Writable } from 'node:stream';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BridgeMetrics } from '../metrics.js';
import type { BridgeConfig, SinkConfig, SourceConfig } from '../config/schema.js';
import { secretResolver } from '../config/secret.js';
import { defaultExcludedMetadata, defaultSynthOptions, type SynthOptions } from '../synth/index.js';
import { adapterFor } from '../sources/registry.js';
import { filesSink } from '../sinks/files.js';
import { stdoutSink } from '../sinks/stdout.js';
import type { Sink } from '../sinks/types.js';
import type { ConfiguredSource } from './reconcile.js';
import { isAbsolute, resolve } from 'node:path';

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

export function buildLocalSink(sink: SinkConfig, deps: { stdout: Writable; baseDir: string }): Sink {
  switch (sink.kind) {
    case 'stdout':
      return stdoutSink(deps.stdout, sink.format);
    case 'files':
      return filesSink(isAbsolute(sink.dir) ? sink.dir : resolve(deps.baseDir, sink.dir));
    case 'kube':
      throw new ConfigError('sink.kind', 'the kube sink is built by buildSink');
  }
}
