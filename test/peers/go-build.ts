/**
 * Builds the Go-based test peers (etcd, kube-apiserver, istiod) from their Go modules.
 *
 * Each binary is built once per machine into
 *   ${REGISTRY_BRIDGE_PEERS_CACHE:-~/.cache/registry-bridge/peers}/<name>-<version>/bin/<binary>
 * from a small consumer module written to <name>-<version>/src (go.mod + a main.go or a
 * tools.go that pins the upstream package). A marker file next to the binary records the
 * build inputs; a later run with the same inputs reuses the binary without calling `go`.
 *
 * Nothing from upstream is vendored into this repository: the go command fetches the
 * modules from the Go module proxy into the normal module cache.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Log = (msg: string) => void;

const noop: Log = () => {};

export interface VersionEntry {
  source: string;
  version: string;
  [k: string]: unknown;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Reads test/peers/versions.json (the manifest of peer versions). */
export async function readVersions(): Promise<Record<string, VersionEntry>> {
  const raw = await fs.readFile(path.join(HERE, 'versions.json'), 'utf8');
  return JSON.parse(raw) as Record<string, VersionEntry>;
}

export async function versionOf(name: string): Promise<VersionEntry> {
  const all = await readVersions();
  const v = all[name];
  if (!v) throw new Error(`test/peers/versions.json has no entry "${name}"`);
  return v;
}

export function peersCacheRoot(): string {
  const env = process.env.REGISTRY_BRIDGE_PEERS_CACHE;
  return env && env.length > 0 ? env : path.join(os.homedir(), '.cache', 'registry-bridge', 'peers');
}

export function peerCacheDir(name: string, version: string): string {
  return path.join(peersCacheRoot(), `${name}-${version}`);
}

/** Environment for every go command: module mode without vendoring, bounded parallelism. */
export function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  env.GOFLAGS = [env.GOFLAGS ?? '', '-mod=mod']
    .filter((s) => s && !s.startsWith('-mod=vendor'))
    .join(' ')
    .trim();
  env.GOMAXPROCS ??= String(os.availableParallelism());
  // Never let go.mod "toolchain" lines trigger a toolchain download on their own.
  env.GOTOOLCHAIN ??= 'local';
  return { ...env, ...extra };
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Append stdout+stderr here (file path). */
  logFile?: string;
  log?: Log;
}

/** Runs a command, resolves with stdout; rejects with the tail of stderr on failure. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let errTail = '';
    const file = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
    file?.write(`$ ${cmd} ${args.join(' ')}\n`);
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      file?.write(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      errTail = (errTail + d.toString()).slice(-8000);
      file?.write(d);
    });
    child.on('error', (e) => {
      file?.end();
      reject(e);
    });
    child.on('close', (code, signal) => {
      file?.end();
      if (code === 0) resolve(Buffer.concat(out).toString());
      else
        reject(
          new Error(
            `${cmd} ${args.join(' ')} failed (${code ?? signal})${opts.logFile ? `, see ${opts.logFile}` : ''}:\n${errTail}`,
          ),
        );
    });
  });
}

export interface ModuleInfo {
  Path: string;
  Version: string;
  Dir: string;
  GoMod: string;
}

/** `go mod download -json mod@version`: the module's directory and go.mod in the module cache. */
export async function goModDownload(modAtVersion: string, log: Log = noop): Promise<ModuleInfo> {
  const cwd = path.join(peersCacheRoot(), '.gomod');
  await fs.mkdir(cwd, { recursive: true });
  log(`go mod download ${modAtVersion}`);
  // Outside any module (cwd has no go.mod, GOFLAGS must not force -mod there).
  const out = await run('go', ['mod', 'download', '-json', modAtVersion], {
    cwd,
    env: goEnv({ GOFLAGS: '', GO111MODULE: 'on' }),
  });
  const info = JSON.parse(out) as ModuleInfo & { Error?: string };
  if (info.Error) throw new Error(`go mod download ${modAtVersion}: ${info.Error}`);
  return info;
}

export interface GoBuildSpec {
  /** Cache key name, e.g. "etcd", "kube-apiserver", "istiod". */
  name: string;
  /** Version string used in the cache path. */
  version: string;
  /** File name of the binary under bin/. */
  binary: string;
  /**
   * Writes the consumer module: go.mod and other files (main.go, tools.go, a seeded go.sum).
   * Called only when a build is needed, so it may download modules.
   */
  source: () => Promise<{ goMod: string; files: Record<string, string> }>;
  /** Everything besides version/pkg/ldflags/env that should force a rebuild when it changes. */
  recipe: string;
  /** Package to build: "." or an import path from a required module. */
  pkg: string;
  ldflags: string[];
  env?: Record<string, string>;
}

export interface BuildResult {
  binary: string;
  version: string;
  /** false when the cached binary was reused. */
  built: boolean;
  seconds: number;
}

interface Marker {
  key: string;
  name: string;
  version: string;
  binary: string;
  builtAt: string;
  buildSeconds: number;
  goVersion: string;
}

function specKey(spec: GoBuildSpec): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      version: spec.version,
      recipe: spec.recipe,
      pkg: spec.pkg,
      ldflags: spec.ldflags,
      env: spec.env ?? {},
    }),
  );
  return h.digest('hex').slice(0, 16);
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A simple cross-process lock (O_EXCL file holding the owner's pid; stale locks are taken over). */
async function withLock<T>(lockFile: string, log: Log, fn: () => Promise<T>): Promise<T> {
  let announced = false;
  for (;;) {
    try {
      const fh = await fs.open(lockFile, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number((await fs.readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (!owner || !pidAlive(owner)) {
        await fs.rm(lockFile, { force: true });
        continue;
      }
      if (!announced) {
        log(`waiting for build lock ${lockFile} (held by pid ${owner})`);
        announced = true;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lockFile, { force: true });
  }
}

/** Returns the cached binary if it was built from the same inputs, else null. */
export async function cachedBinary(spec: GoBuildSpec): Promise<string | null> {
  const dir = peerCacheDir(spec.name, spec.version);
  const bin = path.join(dir, 'bin', spec.binary);
  const markerFile = path.join(dir, 'bin', `.${spec.binary}.built.json`);
  try {
    const marker = JSON.parse(await fs.readFile(markerFile, 'utf8')) as Marker;
    if (marker.key === specKey(spec) && (await exists(bin))) return bin;
  } catch {
    /* no marker */
  }
  return null;
}

/** Builds (or reuses) a binary from a consumer module. */
export async function goBuild(spec: GoBuildSpec, log: Log = noop): Promise<BuildResult> {
  const t0 = Date.now();
  const hit = await cachedBinary(spec);
  if (hit) return { binary: hit, version: spec.version, built: false, seconds: (Date.now() - t0) / 1000 };

  const dir = peerCacheDir(spec.name, spec.version);
  await fs.mkdir(path.join(dir, 'bin'), { recursive: true });
  return withLock(path.join(dir, '.build.lock'), log, async () => {
    const again = await cachedBinary(spec);
    if (again) return { binary: again, version: spec.version, built: false, seconds: (Date.now() - t0) / 1000 };

    const src = path.join(dir, 'src');
    await fs.rm(src, { recursive: true, force: true });
    await fs.mkdir(src, { recursive: true });
    const { goMod, files } = await spec.source();
    await fs.writeFile(path.join(src, 'go.mod'), goMod);
    for (const [f, content] of Object.entries(files)) await fs.writeFile(path.join(src, f), content);

    const logFile = path.join(dir, 'build.log');
    await fs.writeFile(logFile, `# ${new Date().toISOString()} building ${spec.name} ${spec.version}\n`);
    const env = goEnv(spec.env);
    log(`building ${spec.name} ${spec.version} (${spec.pkg}) with GOMAXPROCS=${env.GOMAXPROCS}; log: ${logFile}`);
    const bin = path.join(dir, 'bin', spec.binary);
    const tmp = `${bin}.tmp-${process.pid}`;
    await run('go', ['build', '-trimpath', `-ldflags=${spec.ldflags.join(' ')}`, '-o', tmp, spec.pkg], {
      cwd: src,
      env,
      logFile,
    });
    await fs.rename(tmp, bin);
    const goVersion = (await run('go', ['env', 'GOVERSION'], { env }).catch(() => 'unknown')).trim();
    const seconds = (Date.now() - t0) / 1000;
    const marker: Marker = {
      key: specKey(spec),
      name: spec.name,
      version: spec.version,
      binary: bin,
      builtAt: new Date().toISOString(),
      buildSeconds: seconds,
      goVersion,
    };
    await fs.writeFile(path.join(dir, 'bin', `.${spec.binary}.built.json`), JSON.stringify(marker, null, 2) + '\n');
    log(`built ${spec.name} ${spec.version} in ${seconds.toFixed(0)} s`);
    return { binary: bin, version: spec.version, built: true, seconds };
  });
}

/** Parses a go.mod's replace directives that point into the module's own tree (`=> ./staging/...`). */
export function localReplaces(goModText: string): string[] {
  const mods = new Set<string>();
  let inBlock = false;
  for (const raw of goModText.split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    if (/^replace\s*\($/.test(line)) {
      inBlock = true;
      continue;
    }
    if (inBlock && line === ')') {
      inBlock = false;
      continue;
    }
    const body = inBlock ? line : /^replace\s+(.*)$/.exec(line)?.[1];
    const m = body ? /^(\S+)(?:\s+\S+)?\s+=>\s+(\S+)/.exec(body) : null;
    if (m?.[1] && m[2] && (m[2].startsWith('./') || m[2].startsWith('../'))) mods.add(m[1]);
  }
  return [...mods].sort();
}

/** The `go` directive of a go.mod. */
export function goDirective(goModText: string): string {
  return /^go\s+(\S+)/m.exec(goModText)?.[1] ?? '1.24';
}
