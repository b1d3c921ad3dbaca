/**
 * r-nacos: a Nacos-compatible server in Rust (crates.io `rnacos`; v1 HTTP OpenAPI + v2 gRPC,
 * no v1 UDP push). Built once with `cargo install --locked` into <cache>/rnacos-<version>/bin.
 * Configured by environment (names checked in rnacos 0.8.8's src/common/mod.rs): every listener
 * follows RNACOS_SDK_HOST / RNACOS_CONSOLE_HOST, both set to 127.0.0.1 here.
 * Ports default to 18848 (HTTP), 19848 (gRPC, +1000 like Nacos; also its Raft) and 20848 (console),
 * away from the Java Nacos on 8848/9848.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startManaged, type ManagedHandle } from './lib/managed.js';
import { cacheDir, exists, readMarker, versionEntry, writeMarker } from './lib/paths.js';
import { assertPortsFree, capture, noLog, run, withLock } from './lib/process.js';
import type { InstallResult, Log, StartOptions } from './lib/types.js';

export const NAME = 'rnacos';

interface Marker {
  version: string;
  binary: string;
}

async function cargoBin(): Promise<string> {
  if (process.env.CARGO) return process.env.CARGO;
  const home = path.join(process.env.CARGO_HOME || path.join(os.homedir(), '.cargo'), 'bin', 'cargo');
  if ((await capture('cargo', ['--version'])).code === 0) return 'cargo';
  if (await exists(home)) return home;
  throw new Error('cargo not found (install Rust, or set CARGO=/path/to/cargo)');
}

/** `cargo install rnacos --version <v> --locked --root <cache>/rnacos-<v>`; cached per version. */
export async function install(log: Log = noLog): Promise<InstallResult> {
  const { version } = await versionEntry(NAME);
  const dir = cacheDir(NAME, version);
  const binary = path.join(dir, 'bin', 'rnacos');
  const ok = async () => (await readMarker<Marker>(dir))?.version === version && (await exists(binary));
  if (await ok()) return { binary, version };
  return withLock(`${dir}.lock`, log, async () => {
    if (await ok()) return { binary, version };
    await fs.mkdir(dir, { recursive: true });
    log(`building rnacos ${version} with cargo (several minutes on 2 cores)`);
    await run(await cargoBin(), ['install', 'rnacos', '--version', version, '--locked', '--root', dir], {
      logFile: path.join(dir, 'install.log'),
      log,
      timeoutMs: 60 * 60_000,
    });
    const v = await capture(binary, ['--version']);
    if (v.code !== 0 || !v.stdout.includes(version)) {
      throw new Error(`${binary} --version said "${v.stdout.trim()}" (exit ${v.code}), expected ${version}`);
    }
    await writeMarker(dir, { version, binary } satisfies Marker);
    return { binary, version };
  });
}

export interface RnacosStartOptions extends StartOptions {
  /** Default RB_RNACOS_PORT or 18848; gRPC = +1000, console = +2000 unless given. */
  port?: number;
  grpcPort?: number;
  consolePort?: number;
  /** Enables auth on the v1 OpenAPI, with this initial admin. */
  auth?: { username: string; password: string };
  /** Lifetime of an OpenAPI login token (`RNACOS_API_LOGIN_TIMEOUT`, seconds). Default 3600. */
  tokenTtlSeconds?: number;
  timeoutMs?: number;
}

export type RnacosHandle = ManagedHandle;

export async function start(opts: RnacosStartOptions): Promise<RnacosHandle> {
  const log = opts.log ?? noLog;
  const { binary, version } = await install(log);
  const port = opts.port ?? Number(process.env.RB_RNACOS_PORT || 18848);
  const grpcPort = opts.grpcPort ?? port + 1000;
  const consolePort = opts.consolePort ?? port + 2000;
  await assertPortsFree(NAME, [port, grpcPort, consolePort]);
  await fs.mkdir(opts.dataDir, { recursive: true });
  const env: Record<string, string> = {
    RNACOS_HTTP_PORT: String(port),
    RNACOS_GRPC_PORT: String(grpcPort),
    RNACOS_HTTP_CONSOLE_PORT: String(consolePort),
    RNACOS_SDK_HOST: '127.0.0.1',
    RNACOS_CONSOLE_HOST: '127.0.0.1',
    RNACOS_RAFT_NODE_ADDR: `127.0.0.1:${grpcPort}`,
    RNACOS_DATA_DIR: path.join(opts.dataDir, 'data'),
    RNACOS_HTTP_WORKERS: '2',
    RNACOS_ENABLE_OPEN_API_AUTH: String(!!opts.auth),
    ...(opts.auth
      ? { RNACOS_INIT_ADMIN_USERNAME: opts.auth.username, RNACOS_INIT_ADMIN_PASSWORD: opts.auth.password }
      : {}),
    ...(opts.tokenTtlSeconds !== undefined ? { RNACOS_API_LOGIN_TIMEOUT: String(opts.tokenTtlSeconds) } : {}),
    RUST_LOG: process.env.RB_RNACOS_LOG || 'warn',
  };
  // An explicit env file, so that no stray `.env` in a parent folder is read (dotenv's default).
  const envFile = path.join(opts.dataDir, 'rnacos.env');
  await fs.writeFile(
    envFile,
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
  );
  const base = `http://127.0.0.1:${port}/nacos`;
  const t0 = Date.now();
  // r-nacos 0.8.8 sometimes panics in its raft apply on a fresh data dir (raftapply.rs:421,
  // seen with auth on) and never answers: start again on a clean data dir, a bounded number of times.
  const attempt = async () => {
    return await startManaged({
      name: NAME,
      version,
      dataDir: opts.dataDir,
      timeoutMs: opts.timeoutMs ?? 20_000,
      log,
      graceMs: 5000,
      spec: {
        command: binary,
        args: ['-e', envFile],
        env,
        cwd: opts.dataDir,
        logFile: path.join(opts.dataDir, 'rnacos.log'),
      },
      ready: [
        // With auth, the initial admin exists only a moment after the listeners: wait for a login.
        opts.auth
          ? {
              kind: 'http',
              url: `${base}/v1/auth/login`,
              form: { username: opts.auth.username, password: opts.auth.password },
              bodyIncludes: 'accessToken',
            }
          : { kind: 'http', url: `${base}/v1/ns/service/list?pageNo=1&pageSize=1`, bodyIncludes: 'count' },
      ],
      endpoints: {
        serverAddr: `127.0.0.1:${port}`,
        http: base,
        grpc: `127.0.0.1:${grpcPort}`,
        console: `http://127.0.0.1:${consolePort}`,
        ...(opts.auth ? { username: opts.auth.username, password: opts.auth.password } : {}),
      },
    });
  };
  let handle;
  for (let i = 1; ; i++) {
    try {
      handle = await attempt();
      break;
    } catch (e) {
      if (i >= 3) throw e;
      log(`rnacos: start attempt ${i} failed (${String(e).split('\n')[0]}); retrying on a clean data dir`);
      await fs.rm(path.join(opts.dataDir, 'data'), { recursive: true, force: true });
    }
  }
  log(`rnacos ${version} ready on ${base} in ${Date.now() - t0} ms (pid ${handle.pid})`);
  return handle;
}
