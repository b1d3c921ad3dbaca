import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { AdapterFactory } from '../sources/adapter.js';
import { bridgeConfigSchema, type BridgeConfig } from './schema.js';

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
    text = await readFile(full, 'utf8');
  } catch (err) {
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
