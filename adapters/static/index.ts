import { watch as watchFs, type FSWatcher } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SourceUnavailableError } from '../../src/errors.js';
import {
  serviceKeyString,
  type RegistryService,
  type RejectedEntry,
  type SourceSnapshot,
} from '../../src/model/service.js';
import {
  defineAdapter,
  type AdapterContext,
  type ChangeListener,
  type SourceAdapter,
} from '../../src/sources/adapter.js';
import { durationField } from '../../src/config/duration.js';
import { formatPath } from '../../src/config/load.js';
import { instanceSchema, registryFileSchema, serviceSchema, type StaticService } from './schema.js';

export const staticConfigSchema = z.strictObject({
  path: z
    .string()
    .min(1)
    .describe(
      'YAML or JSON file with `services: [...]` (relative to the config file); re-read on every list, and watched for edits.',
    ),
  settle: durationField('sources[].static.settle')
    .default(200)
    .describe(
      'The file is read only once its size and modification time have not changed for this long, so a file being written is not read half-way.',
    ),
});
export type StaticConfig = z.infer<typeof staticConfigSchema>;

/**
 * A read that loses more than this many services of the previous read, and at least half of
 * them, is a sharp shrink: it is believed only when a later read, at least
 * `shrinkConfirmMs(settle)` after it, shows the same file.
 */
export const SHARP_SHRINK_MIN = 3;
export const shrinkConfirmMs = (settleMs: number): number => Math.max(1000, 5 * settleMs);
/** A file that keeps changing for this many settle windows is reported unavailable. */
const MAX_SETTLE_ROUNDS = 50;

/**
 * A registry read from a file: the embedded default, a way to publish external services by
 * hand, and the smallest example of the adapter contract. The file is re-read on every list,
 * once it has been stable for the settle time; the directory holding it is watched (so a
 * rename-replace by an editor or `sed -i`, and a ConfigMap's symlink swap, keep the watch), and
 * its changes are hints.
 */
export const staticAdapter = defineAdapter<StaticConfig>({
  kind: 'static',
  configSchema: staticConfigSchema,
  defaultHostTemplate: '{service}.{group}.{namespace}.static',
  create(config, context) {
    return new StaticSource(
      isAbsolute(config.path) ? config.path : resolve(context.baseDir, config.path),
      config.settle,
      context,
    );
  },
});

interface HeldShrink {
  /** The text of the shrunk read, to recognise the same file on the next read. */
  readonly text: string;
  readonly since: number;
}

class StaticSource implements SourceAdapter {
  /** The last snapshot believed (returned by list). */
  private believed: SourceSnapshot | undefined;
  private held: HeldShrink | undefined;
  private onChange: ChangeListener | undefined;
  private recheck: NodeJS.Timeout | undefined;

  constructor(
    private readonly path: string,
    private readonly settleMs: number,
    private readonly context: AdapterContext,
    private readonly now: () => number = Date.now,
  ) {}

  async list(signal: AbortSignal): Promise<SourceSnapshot> {
    const text = await this.readStable(signal);
    const snapshot = parseRegistryText(text, this.context.source, this.path);
    const previous = this.believed;
    const lost = previous ? lostServices(previous, snapshot) : 0;
    if (previous && lost > SHARP_SHRINK_MIN && lost * 2 >= previous.services.length) {
      const held = this.held;
      const confirmMs = shrinkConfirmMs(this.settleMs);
      if (held?.text === text && this.now() - held.since >= confirmMs) {
        this.context.logger.warn(
          { path: this.path, before: previous.services.length, after: snapshot.services.length },
          'the file lost many services, and still does on a later read: believed',
        );
      } else {
        if (held?.text !== text) this.held = { text, since: this.now() };
        this.context.logger.warn(
          { path: this.path, before: previous.services.length, after: snapshot.services.length, confirmMs },
          'the file lost many services at once: keeping the previous read until a later read shows the same',
        );
        this.scheduleRecheck(confirmMs);
        return previous;
      }
    }
    this.held = undefined;
    this.believed = snapshot;
    return snapshot;
  }

  /** The file's text once its size and mtime have not changed for the settle time. */
  private async readStable(signal: AbortSignal): Promise<string> {
    for (let round = 0; round < MAX_SETTLE_ROUNDS; round++) {
      const before = await this.stat();
      const age = this.now() - before.mtimeMs;
      if (age < this.settleMs) {
        // Changed within the settle time (or an mtime in the future): look again after it.
        await sleep(this.settleMs, undefined, { signal });
        const later = await this.stat();
        if (!sameFile(before, later)) continue;
      }
      const text = await this.read(signal);
      const after = await this.stat();
      if (sameFile(before, after) && Buffer.byteLength(text) === after.size) return text;
    }
    throw new SourceUnavailableError(
      this.context.source,
      `${this.path} kept changing for ${MAX_SETTLE_ROUNDS} settle windows of ${this.settleMs} ms; not read`,
    );
  }

  private async stat() {
    try {
      return await stat(this.path);
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  private async read(signal: AbortSignal): Promise<string> {
    try {
      return await readFile(this.path, { encoding: 'utf8', signal });
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  private unavailable(err: unknown): SourceUnavailableError {
    return new SourceUnavailableError(
      this.context.source,
      `cannot read ${this.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err },
    );
  }

  private scheduleRecheck(ms: number): void {
    if (!this.onChange || this.recheck) return;
    this.recheck = setTimeout(() => {
      this.recheck = undefined;
      this.onChange?.();
    }, ms);
    this.recheck.unref();
  }

  /**
   * Watches the directory of the file (and of its target, when it is a symbolic link): an
   * editor's or `sed -i`'s rename-replace gives the file a new inode, and a ConfigMap volume
   * swaps a `..data` link; a watch on the file itself would be left on the old inode.
   */
  async watch(onChange: ChangeListener, signal: AbortSignal): Promise<void> {
    this.onChange = onChange;
    signal.addEventListener('abort', () => clearTimeout(this.recheck), { once: true });
    const open = (dir: string, names: (name: string) => boolean): FSWatcher | undefined => {
      if (signal.aborted) return undefined;
      try {
        const w = watchFs(dir, { persistent: false, signal }, (_event, name) => {
          if (name === null || names(name.toString())) {
            onChange();
            void followTarget();
          }
        });
        w.on('error', (err) =>
          this.context.logger.warn(
            { err, path: dir },
            'directory watch failed; the periodic resync still reads the file',
          ),
        );
        return w;
      } catch (err) {
        this.context.logger.warn(
          { err, path: dir },
          'cannot watch the directory; the periodic resync still reads the file',
        );
        return undefined;
      }
    };
    const linkDir = dirname(this.path);
    const base = basename(this.path);
    // `..data`, `..2024_01_01...`: the names a ConfigMap volume swaps.
    open(linkDir, (name) => name === base || name.startsWith('..'));
    const realLinkDir = await realpath(linkDir).catch(() => linkDir);
    // When the path is a link into another directory, that directory too (one at a time: the
    // link may be pointed elsewhere). A target inside the watched directory (a ConfigMap's
    // ..<timestamp>/ folders) is covered by the ..data swap.
    let target: { dir: string; watcher: FSWatcher | undefined } | undefined;
    const followTarget = async () => {
      const real = await realpath(this.path).catch(() => undefined);
      if (!real) return;
      const dir = dirname(real);
      if (dir === realLinkDir || dir.startsWith(`${realLinkDir}${sep}`) || dir === target?.dir) return;
      target?.watcher?.close();
      const targetBase = basename(real);
      target = { dir, watcher: open(dir, (name) => name === targetBase) };
    };
    signal.addEventListener('abort', () => target?.watcher?.close(), { once: true });
    await followTarget();
  }

  async close(): Promise<void> {
    clearTimeout(this.recheck);
  }
}

function sameFile(
  a: { size: number; mtimeMs: number; ino: number },
  b: { size: number; mtimeMs: number; ino: number },
) {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

/** How many services of `before` are not in `after`. */
function lostServices(before: SourceSnapshot, after: SourceSnapshot): number {
  const now = new Set(after.services.map((s) => serviceKeyString(s.key)));
  return before.services.reduce((n, s) => (now.has(serviceKeyString(s.key)) ? n : n + 1), 0);
}

/**
 * The registry file's text as a snapshot. JSON is parsed with JSON.parse (a 10 MB file in a
 * fraction of the time and memory the YAML parser takes); anything else, and JSON that
 * JSON.parse refuses, with the YAML parser (for its error positions).
 */
export function parseRegistryText(text: string, source: string, path: string): SourceSnapshot {
  let raw: unknown;
  let parsed = false;
  if (/^\s*\{/.test(text)) {
    try {
      raw = JSON.parse(text);
      parsed = true;
    } catch {
      // fall through to the YAML parser and its error
    }
  }
  if (!parsed) {
    try {
      raw = parseYaml(text);
    } catch (err) {
      throw new SourceUnavailableError(
        source,
        `${path} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`,
      );
    }
  }
  return parseRegistryFile(raw, source, path);
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
