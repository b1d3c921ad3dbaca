/**
 * Process and TLS helpers for the Go-built peers (etcd, kube-apiserver, istiod).
 * Processes run detached with output in a log file, and are stopped by PID.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import fs from 'node:fs/promises';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import { run, type Log } from '../go-build.js';

export type { PeerHandle } from './types.js';

export interface Spawned {
  pid: number;
  logFile: string;
  /** Set once the process exited (only observable from the spawning process). */
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
}

/** Spawns a detached process, stdout+stderr appended to logFile. */
export function spawnDetached(
  binary: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
): Spawned {
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(binary, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid === undefined) throw new Error(`failed to spawn ${binary}`);
    const s: Spawned = { pid: child.pid, logFile: opts.logFile, exited: null };
    child.on('exit', (code, signal) => {
      s.exited = { code, signal };
    });
    child.on('error', () => {
      s.exited ??= { code: -1, signal: null };
    });
    child.unref();
    return s;
  } finally {
    closeSync(fd);
  }
}

/** true when the pid exists and is not a zombie. */
export async function pidAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after timeoutMs. Resolves once the process is gone. */
export async function stopPid(pid: number, timeoutMs = 10_000): Promise<void> {
  if (!(await pidAlive(pid))) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await pidAlive(pid))) return;
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 50 && (await pidAlive(pid)); i++) await sleep(100);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function logTail(file: string, n = 30): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-n).join('\n');
}

/** Polls check() until it returns true; fails early if the process died. */
export async function waitReady(
  what: string,
  proc: Spawned,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (proc.exited || !(await pidAlive(proc.pid))) {
      throw new Error(`${what} (pid ${proc.pid}) exited before ready: ${JSON.stringify(proc.exited)}\n${await logTail(proc.logFile)}`);
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`${what} not ready after ${opts.timeoutMs} ms; log ${proc.logFile}:\n${await logTail(proc.logFile)}`);
    }
    await sleep(opts.intervalMs ?? 200);
  }
}

export interface HttpResult {
  status: number;
  body: string;
}

/** Minimal GET (http or https) with optional CA and bearer token. */
export function httpGet(url: string, opts: { ca?: string | Buffer; token?: string; timeoutMs?: number } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, { headers, ...(opts.ca ? { ca: opts.ca } : {}), timeout: opts.timeoutMs ?? 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout GET ${url}`)));
    req.on('error', reject);
  });
}

/** Resident set size of a process in MiB (VmRSS), or null. */
export async function rssMiB(pid: number): Promise<number | null> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m?.[1] ? Math.round(Number(m[1]) / 1024) : null;
}

export interface CertPair {
  cert: string;
  key: string;
}

/**
 * Creates (once) a CA and a serving certificate signed by it, with openssl.
 * Files: <dir>/ca.crt, ca.key, <name>.crt, <name>.key. Reused when present.
 */
export async function ensureServingCert(
  dir: string,
  name: string,
  sans: { dns?: string[]; ip?: string[] },
  log: Log = () => {},
): Promise<{ ca: CertPair; server: CertPair }> {
  await fs.mkdir(dir, { recursive: true });
  const ca = { cert: path.join(dir, 'ca.crt'), key: path.join(dir, 'ca.key') };
  const server = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  const have = async (p: string) => fs.access(p).then(() => true, () => false);
  if (!(await have(ca.cert)) || !(await have(ca.key))) {
    log(`generating test CA in ${dir}`);
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '3650',
      '-keyout', ca.key, '-out', ca.cert, '-subj', '/CN=registry-bridge-test-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
  }
  if (!(await have(server.cert)) || !(await have(server.key))) {
    log(`generating ${name} serving certificate`);
    const san = [...(sans.dns ?? []).map((d) => `DNS:${d}`), ...(sans.ip ?? []).map((i) => `IP:${i}`)].join(',');
    const csr = path.join(dir, `${name}.csr`);
    const ext = path.join(dir, `${name}.ext`);
    await fs.writeFile(
      ext,
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`,
    );
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', server.key, '-out', csr, '-subj', `/CN=${name}`]);
    await run('openssl', [
      'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial',
      '-out', server.cert, '-days', '3650', '-sha256', '-extfile', ext,
    ]);
  }
  return { ca, server };
}
