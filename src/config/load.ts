import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { AdapterFactory } from '../sources/adapter.js';
import { bridgeConfigSchema, type BridgeConfig } from './schema.js';

/**
 * The largest config file read (1 MiB, a ConfigMap's limit too). A larger one is refused before
 * the YAML parser sees it: hundreds of thousands of sources would run the parser out of memory.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** The file's text, refused with a ConfigError past `limit` bytes (a device or pipe included). */
async function readBounded(path: string, limit: number): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > limit)
        throw new ConfigError(
          '',
          `config file ${path} is larger than ${limit} bytes (1 MiB); the configuration of the bridge is a few kilobytes (at most 1,000 sources)`,
        );
      chunks.push(buf.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await handle.close();
  }
}

export interface LoadedConfig {
  readonly config: BridgeConfig;
  /** Directory of the config file; relative paths inside resolve against it. */
  readonly baseDir: string;
  readonly path: string;
}

/** `['sources', 1, 'zookeeper', 'connect']` → `sources[1].zookeeper.connect`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** All problems of a config, one per line, each `path: reason`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${formatPath(i.path) || '(config)'}: ${i.message}`).join('\n');
}

export function parseConfig(raw: unknown, adapters: readonly AdapterFactory[]): BridgeConfig {
  const parsed = bridgeConfigSchema(adapters).safeParse(raw ?? {});
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ConfigError('', formatIssues(parsed.error), { cause: first });
  }
  return parsed.data as BridgeConfig;
}

export async function loadConfigFile(path: string, adapters: readonly AdapterFactory[]): Promise<LoadedConfig> {
  const full = resolve(path);
  let text: string;
  try {
    text = await readBounded(full, MAX_CONFIG_BYTES);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('', `cannot read config file ${full} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const where =
      err instanceof YAMLParseError && err.linePos ? ` line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    throw new ConfigError('', `${full}:${where} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  try {
    return { config: parseConfig(raw, adapters), baseDir: dirname(full), path: full };
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError('', `${full}:\n${err.message}`, { cause: err });
    throw err;
  }
}
