import type { Dirent } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { toYaml } from './render.js';
import { SinkError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BridgeMetrics } from '../metrics.js';
import { isNamespaceName, parseObjectName } from '../model/names.js';
import type { Change, ObservedEntry } from '../plan/plan.js';
import {
  contentHash,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SERVICE_ANNOTATION,
  SOURCE_LABEL,
} from '../synth/service-entry.js';
import type { ApplyOutcome, Sink } from './types.js';

export interface FilesSinkOptions {
  readonly logger?: Logger;
  /** `registry_bridge_owned_objects` follows the owned files. */
  readonly metrics?: BridgeMetrics;
  /** A dry run never removes the temporary files of an interrupted write (it only names them). */
  readonly dryRun?: boolean;
}

/** A file larger than this is never parsed: it is not one ServiceEntry the bridge wrote. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

/** `<name>.yaml.tmp-<pid>`: the temporary file of a write in progress (renamed over `<name>.yaml`). */
const tmpRe = /^(.+)\.yaml\.tmp-(\d+)$/;

/**
 * A directory of YAML for GitOps: `<dir>/<namespace>/<name>.yaml`, one object per file.
 *
 * The path is the identity: an object is named by its file (`<name>.yaml`) and namespaced by its
 * directory, never by what the file says. Only directory entries read from `dir` whose names
 * are Kubernetes names (namespace: DNS-1123 label, object: DNS-1123 subdomain of at most 63
 * characters) are considered, and every path the sink writes or removes is formed from such
 * names and checked to resolve inside `dir` (no `..`, no symbolic link on the way), so no
 * content of a file can make the sink touch anything outside its directory.
 *
 * - A file with the ownership label whose `metadata.name` (or `metadata.namespace`) differs
 *   from its path is an owned object named by its path, with no content hash: rewritten when
 *   that name is desired, removed through the plan otherwise.
 * - Anything else at `<namespace>/<name>.yaml` (a foreign ServiceEntry, another kind, a
 *   multi-document or broken YAML, a directory, a symbolic link) is foreign: never written or
 *   removed; it holds its name (a desired object of that name is a conflict). The unreadable
 *   ones are named in the log once.
 * - Names that are not Kubernetes names, and symbolic links, are ignored (logged once).
 * - `*.yaml.tmp-<pid>` files of a process that no longer runs are removed at the first observe.
 */
export function filesSink(dir: string, options: FilesSinkOptions = {}): Sink {
  const sink = new FilesSink(dir, options);
  return {
    kind: 'files',
    observe: () => sink.observe(),
    apply: (changes, applyOptions) => sink.apply(changes, applyOptions.dryRun),
  };
}

class FilesSink {
  private readonly log: Logger | undefined;
  private readonly reported = new Set<string>();
  private tmpChecked = false;
  private owned = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly options: FilesSinkOptions,
  ) {
    this.log = options.logger?.child({ component: 'sink', sink: 'files' });
  }

  private warnOnce(path: string, reason: string, msg: string): void {
    const key = `${path}\n${reason}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.log?.warn({ path, reason }, msg);
  }

  private skipOnce(path: string, reason: string): void {
    this.warnOnce(path, reason, 'files sink: file skipped');
  }

  private setOwnedGauge(): void {
    this.options.metrics?.ownedObjects.set(this.owned.size);
  }

  async observe(): Promise<ObservedEntry[]> {
    const observed: ObservedEntry[] = [];
    let namespaces: Dirent[];
    try {
      namespaces = await readdir(this.dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.owned = new Set();
        this.setOwnedGauge();
        return [];
      }
      throw new SinkError(`cannot read directory ${this.dir}`, { cause: err });
    }
    const cleanTmp = !this.tmpChecked;
    this.tmpChecked = true;
    for (const nsEntry of sortByName(namespaces)) observed.push(...(await this.observeNamespace(nsEntry, cleanTmp)));
    this.owned = new Set(observed.filter((o) => o.owned).map((o) => `${o.namespace}/${o.name}`));
    this.setOwnedGauge();
    return observed;
  }

  /** The files of one `<dir>/<namespace>` directory (none when it is not one the sink uses). */
  private async observeNamespace(nsEntry: Dirent, cleanTmp: boolean): Promise<ObservedEntry[]> {
    const namespace = nsEntry.name;
    const nsPath = join(this.dir, namespace);
    if (nsEntry.isSymbolicLink()) {
      this.skipOnce(nsPath, 'a symbolic link: the files sink never follows links');
      return [];
    }
    if (!nsEntry.isDirectory()) return [];
    if (!isNamespaceName(namespace)) {
      this.skipOnce(nsPath, 'the directory name is not a Kubernetes namespace name (DNS-1123 label)');
      return [];
    }
    let files: Dirent[];
    try {
      files = await readdir(nsPath, { withFileTypes: true });
    } catch (err) {
      this.skipOnce(nsPath, `cannot read the directory (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return [];
    }
    const observed: ObservedEntry[] = [];
    for (const entry of sortByName(files)) {
      const path = join(nsPath, entry.name);
      if (cleanTmp && tmpRe.test(entry.name)) {
        await this.removeStaleTmp(path, entry.name);
        continue;
      }
      if (!entry.name.endsWith('.yaml')) continue;
      const stem = entry.name.slice(0, -'.yaml'.length);
      const name = parseObjectName(stem);
      if (name instanceof Error) {
        this.skipOnce(path, `the file name is not a Kubernetes object name: ${name.message}`);
        continue;
      }
      observed.push(await this.observeFile(path, entry, namespace, stem));
    }
    return observed;
  }

  /** One `<namespace>/<name>.yaml`: owned, foreign, or a foreign placeholder holding its name. */
  private async observeFile(path: string, entry: Dirent, namespace: string, name: string): Promise<ObservedEntry> {
    const foreign: ObservedEntry = { namespace, name, hosts: [], owned: false };
    if (!entry.isFile()) {
      this.skipOnce(
        path,
        entry.isDirectory() ? 'a directory, not a file' : 'not a regular file (a link, a device or a pipe)',
      );
      return foreign;
    }
    const read = await readOne(path);
    if (typeof read === 'string') {
      this.skipOnce(path, read);
      return foreign;
    }
    const doc = read;
    if (doc.kind !== 'ServiceEntry') return foreign;
    const metadata = asRecord(doc.metadata);
    const labels = stringRecord(metadata.labels);
    const annotations = stringRecord(metadata.annotations);
    const spec = asRecord(doc.spec);
    const hosts = Array.isArray(spec.hosts) ? spec.hosts.filter((h): h is string => typeof h === 'string') : [];
    const isOwned = labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
    const source = labels[SOURCE_LABEL];
    // A copy or a renamed file says another name than its path: it is owned under its path and
    // has no hash, so it is rewritten (when its path name is desired) or removed by the plan.
    const placed = metadata.name === name && (metadata.namespace === undefined || metadata.namespace === namespace);
    if (isOwned && !placed)
      this.warnOnce(
        path,
        `metadata.name/namespace differ from the path; owned as ${namespace}/${name}`,
        'files sink: misplaced owned file',
      );
    const hash = isOwned && placed ? contentHash(doc.spec ?? {}, labels) : undefined;
    const service = isOwned ? annotations[SERVICE_ANNOTATION] : undefined;
    return {
      namespace,
      name,
      hosts,
      owned: isOwned,
      ...(source !== undefined && isOwned ? { source } : {}),
      ...(hash !== undefined ? { hash } : {}),
      ...(service !== undefined ? { service } : {}),
    };
  }

  private async removeStaleTmp(path: string, file: string): Promise<void> {
    const pid = Number(tmpRe.exec(file)![2]);
    // Before our first write, a temporary file of our own pid is a previous process's too (a
    // container restarts with the same pid).
    if (pid !== process.pid && processRuns(pid)) return;
    if (this.options.dryRun) {
      this.skipOnce(path, 'a temporary file of an interrupted write (removed by the next run that is not a dry run)');
      return;
    }
    try {
      await rm(path, { force: true });
      this.log?.info({ path, pid }, 'files sink: removed the temporary file of an interrupted write');
    } catch (err) {
      this.skipOnce(path, `cannot remove a temporary file of an interrupted write (${errCode(err)})`);
    }
  }

  /** `dir/<namespace>`, checked to be a real directory inside `dir`; created for writes. */
  private async namespaceDir(namespace: string, create: boolean): Promise<string | undefined> {
    const root = await realpath(this.dir);
    const nsPath = join(this.dir, namespace);
    if (create) {
      try {
        await mkdir(nsPath);
      } catch (err) {
        if (errCode(err) !== 'EEXIST') throw err;
      }
    }
    let st;
    try {
      st = await lstat(nsPath);
    } catch (err) {
      if (errCode(err) === 'ENOENT' && !create) return undefined;
      throw err;
    }
    if (st.isSymbolicLink() || !st.isDirectory())
      throw new SinkError(`refused: ${nsPath} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}`);
    if ((await realpath(nsPath)) !== join(root, namespace))
      throw new SinkError(`refused: ${nsPath} resolves outside ${this.dir}`);
    return nsPath;
  }

  private async applyOne(change: Change, dryRun: boolean): Promise<void> {
    const path = pathOf(this.dir, change.namespace, change.name);
    if (dryRun) return;
    if (change.action === 'delete') {
      const nsPath = await this.namespaceDir(change.namespace, false);
      if (nsPath === undefined) return;
      const problem = await ownedFileProblem(path);
      if (problem === 'absent') return;
      if (problem) throw new SinkError(`refused to remove ${path}: ${problem}`);
      await rm(path);
      this.owned.delete(`${change.namespace}/${change.name}`);
      return;
    }
    if ((change.action !== 'create' && change.action !== 'update') || !change.desired) return;
    await mkdir(this.dir, { recursive: true });
    await this.namespaceDir(change.namespace, true);
    const problem = await ownedFileProblem(path);
    if (change.action === 'create' && problem !== 'absent')
      throw new SinkError(`refused to create ${path}: a file appeared there since it was read`);
    if (change.action === 'update' && problem && problem !== 'absent')
      throw new SinkError(`refused to update ${path}: ${problem}`);
    const tmp = `${path}.tmp-${process.pid}`;
    await writeExclusive(tmp, toYaml(change.desired.object));
    try {
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    this.owned.add(`${change.namespace}/${change.name}`);
  }

  async apply(changes: readonly Change[], dryRun: boolean): Promise<ApplyOutcome[]> {
    const outcomes: ApplyOutcome[] = [];
    for (const change of changes) {
      try {
        await this.applyOne(change, dryRun);
        outcomes.push({ change, ok: true });
      } catch (err) {
        outcomes.push({ change, ok: false, error: (err as Error).message });
      }
    }
    if (!dryRun) this.setOwnedGauge();
    return outcomes;
  }
}

/**
 * `<dir>/<namespace>/<name>.yaml`, only for Kubernetes names, and only when it stays inside
 * `dir`. Throws a SinkError naming the refused value otherwise.
 */
export function pathOf(dir: string, namespace: string, name: string): string {
  if (!isNamespaceName(namespace))
    throw new SinkError(`refused: namespace ${JSON.stringify(namespace)} is not a DNS-1123 label`);
  const valid = parseObjectName(name);
  if (valid instanceof Error) throw new SinkError(`refused: object name ${valid.message}`);
  const path = join(dir, namespace, `${name}.yaml`);
  const rel = relative(dir, path);
  if (rel !== `${namespace}${sep}${name}.yaml`) throw new SinkError(`refused: ${path} is not inside ${dir}`);
  return path;
}

/**
 * Why the file at `path` is not one the bridge may replace or remove, `'absent'` when there is
 * none, `undefined` when it is a regular file carrying the ownership label.
 */
async function ownedFileProblem(path: string): Promise<string | undefined> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return 'absent';
    throw err;
  }
  if (!st.isFile()) return st.isSymbolicLink() ? 'it is a symbolic link' : 'it is not a regular file';
  const doc = await readOne(path);
  if (typeof doc === 'string') return doc;
  const labels = stringRecord(asRecord(doc.metadata).labels);
  if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) return 'it does not carry the ownership label';
  return undefined;
}

/** The one document of a file, or why it is not one. */
async function readOne(path: string): Promise<Record<string, unknown> | string> {
  let text: string;
  try {
    const st = await lstat(path);
    if (st.size > MAX_FILE_BYTES) return `larger than ${MAX_FILE_BYTES} bytes`;
    text = await readFile(path, 'utf8');
  } catch (err) {
    return `cannot be read (${errCode(err)})`;
  }
  let docs;
  try {
    docs = parseAllDocuments(text);
  } catch (err) {
    return `not valid YAML: ${(err as Error).message.split('\n')[0]}`;
  }
  if (!Array.isArray(docs)) return 'not valid YAML';
  if (docs.length !== 1) return docs.length === 0 ? 'empty' : `${docs.length} YAML documents, not one`;
  const doc = docs[0]!;
  if (doc.errors.length > 0) return `not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`;
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    return `not valid YAML: ${(err as Error).message.split('\n')[0]}`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a YAML mapping';
  return value as Record<string, unknown>;
}

/** Writes a new file; never through an existing file or link of that name (O_EXCL). */
async function writeExclusive(path: string, text: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(text);
      } finally {
        await handle.close();
      }
      return;
    } catch (err) {
      if (errCode(err) !== 'EEXIST' || attempt > 0) throw err;
      // Our pid's leftover (or something planted there): unlink the name, never write through it.
      await rm(path, { force: true });
    }
  }
}

/** Whether a process with this pid runs (signal 0: EPERM means it runs as another user). */
export function processRuns(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

function sortByName(entries: Dirent[]): Dirent[] {
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function stringRecord(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(asRecord(value))) if (typeof v === 'string') out[k] = v;
  return out;
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}
