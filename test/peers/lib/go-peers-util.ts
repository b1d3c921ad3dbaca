/**
 * TLS, HTTP and readiness helpers for the Go-built peers (etcd, kube-apiserver, istiod).
 * Process handling (detached spawn, stop by PID/group) is lib/process.ts's.
 */
import fs from 'node:fs/promises';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import { run, type Log } from '../go-build.js';
import { logTail, pidAlive, sleep, type Spawned } from './process.js';

export type { PeerHandle } from './types.js';

export { assertPortsFree, pidAlive, rssMiB, sleep, spawnDetached, stopPid } from './process.js';

/** Polls check() until it returns true; fails early (with the log tail) if the process died. */
export async function waitFor(
  what: string,
  proc: Spawned,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (proc.exited || !(await pidAlive(proc.pid))) {
      throw new Error(
        `${what} (pid ${proc.pid}) exited before ready: ${JSON.stringify(proc.exited)}\n${await logTail(proc.logFile)}`,
      );
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${what} not ready after ${opts.timeoutMs} ms; log ${proc.logFile}:\n${await logTail(proc.logFile)}`,
      );
    }
    await sleep(opts.intervalMs ?? 200);
  }
}

export interface HttpResult {
  status: number;
  body: string;
}

/** Minimal GET (http or https) with optional CA and bearer token. */
export function httpGet(
  url: string,
  opts: { ca?: string | Buffer; token?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
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
  const have = async (p: string) =>
    fs.access(p).then(
      () => true,
      () => false,
    );
  if (!(await have(ca.cert)) || !(await have(ca.key))) {
    log(`generating test CA in ${dir}`);
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '3650',
      '-keyout',
      ca.key,
      '-out',
      ca.cert,
      '-subj',
      '/CN=registry-bridge-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
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
    await run('openssl', [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-keyout',
      server.key,
      '-out',
      csr,
      '-subj',
      `/CN=${name}`,
    ]);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-out',
      server.cert,
      '-days',
      '3650',
      '-sha256',
      '-extfile',
      ext,
    ]);
  }
  return { ca, server };
}
