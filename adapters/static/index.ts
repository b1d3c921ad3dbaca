import { watch as watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SourceUnavailableError } from '../../src/errors.js';
import type { RegistryService, RejectedEntry, SourceSnapshot } from '../../src/model/service.js';
import {
  defineAdapter,
  type AdapterContext,
  type ChangeListener,
  type SourceAdapter,
} from '../../src/sources/adapter.js';
import { formatPath } from '../../src/config/load.js';
import { instanceSchema, registryFileSchema, serviceSchema, type StaticService } from './schema.js';

export const staticConfigSchema = z.strictObject({
  path: z
    .string()
    .min(1)
    .describe(
      'YAML or JSON file with `services: [...]` (relative to the config file); re-read on every list, and watched for edits.',
    ),
});
export type StaticConfig = z.infer<typeof staticConfigSchema>;

/**
 * A registry read from a file: the embedded default, a way to publish external services by
 * hand, and the smallest example of the adapter contract. The file is re-read on every list;
 * a file watch turns edits into change hints.
 */
export const staticAdapter = defineAdapter<StaticConfig>({
  kind: 'static',
  configSchema: staticConfigSchema,
  defaultHostTemplate: '{service}.{group}.{namespace}.static',
  create(config, context) {
    return new StaticSource(isAbsolute(config.path) ? config.path : resolve(context.baseDir, config.path), context);
  },
});

class StaticSource implements SourceAdapter {
  constructor(
    private readonly path: string,
    private readonly context: AdapterContext,
  ) {}

  async list(signal: AbortSignal): Promise<SourceSnapshot> {
    let text: string;
    try {
      text = await readFile(this.path, { encoding: 'utf8', signal });
    } catch (err) {
      throw new SourceUnavailableError(
        this.context.source,
        `cannot read ${this.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: err },
      );
    }
    let raw: unknown;
    try {
      raw = parseYaml(text);
    } catch (err) {
      throw new SourceUnavailableError(
        this.context.source,
        `${this.path} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`,
      );
    }
    return parseRegistryFile(raw, this.context.source, this.path);
  }

  async watch(onChange: ChangeListener, signal: AbortSignal): Promise<void> {
    const watcher = watchFile(this.path, { persistent: false, signal }, () => onChange());
    watcher.on('error', (err) =>
      this.context.logger.warn({ err, path: this.path }, 'file watch failed; the periodic resync still reads the file'),
    );
  }

  async close(): Promise<void> {}
}

/**
 * Lenient parse: a bad service (or a bad instance of a good service) is dropped and reported
 * with its position and reason; every valid entry goes on.
 */
export function parseRegistryFile(raw: unknown, source: string, file: string): SourceSnapshot {
  const top = registryFileSchema.safeParse(raw);
  if (!top.success) {
    throw new SourceUnavailableError(source, `${file}: expected an object with a "services" list`);
  }
  const services: RegistryService[] = [];
  const rejected: RejectedEntry[] = [];
  top.data.services.forEach((entry, i) => {
    const label = describeEntry(entry, i);
    const parsed = serviceSchema.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = formatPath(issue.path);
      // Instance-level problems drop that instance only.
      if (issue.path[0] === 'instances' && typeof issue.path[1] === 'number') {
        const retry = dropBadInstances(entry, label, rejected);
        const again = serviceSchema.safeParse(retry);
        if (again.success) {
          services.push(toModel(again.data, source));
          return;
        }
      }
      rejected.push({ ref: label, reason: `${where ? `${where}: ` : ''}${issue.message}` });
      return;
    }
    services.push(toModel(parsed.data, source));
  });
  return { source, services, rejected };
}

function describeEntry(entry: unknown, index: number): string {
  const name = (entry as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? `services[${index}] (${name})` : `services[${index}]`;
}

function dropBadInstances(entry: unknown, label: string, rejected: RejectedEntry[]): unknown {
  const e = entry as { instances?: unknown[] };
  const instances = (e.instances ?? []).filter((inst, j) => {
    const ok = instanceSchema.safeParse(inst);
    if (!ok.success) {
      const issue = ok.error.issues[0]!;
      rejected.push({
        ref: `${label}.instances[${j}]`,
        reason: `${formatPath(issue.path) ? `${formatPath(issue.path)}: ` : ''}${issue.message}`,
      });
    }
    return ok.success;
  });
  return { ...e, instances };
}

function toModel(s: StaticService, source: string): RegistryService {
  return {
    key: { source, namespace: s.namespace, group: s.group, name: s.name },
    ...(s.host !== undefined ? { host: s.host } : {}),
    ...(s.protocol !== undefined ? { protocol: s.protocol } : {}),
    ...(s.ports !== undefined
      ? {
          ports: s.ports.map((p) => ({
            number: p.number,
            protocol: p.protocol,
            ...(p.name !== undefined ? { name: p.name } : {}),
          })),
        }
      : {}),
    instances: s.instances.map((i) => ({
      address: i.address,
      port: i.port,
      ...(i.protocol !== undefined ? { protocol: i.protocol } : {}),
      weight: i.weight,
      healthy: i.healthy,
      enabled: i.enabled,
      metadata: i.metadata,
      ...(i.locality !== undefined ? { locality: i.locality } : {}),
    })),
  };
}
