/**
 * Process plumbing for the real-server peers: spawn detached (own process group) with output in
 * a log file, readiness with a deadline and the log tail in the error, stop by our own PID
 * (SIGTERM to the group, then SIGKILL), install-time commands, an install lock.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { LaunchSpec, Log, ReadyProbe } from './types.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const noLog: Log = () => {};

/**
 * PIDs spawned by this process that are not ready yet (not yet in any state file): an exit guard
 * kills them if the process dies mid-start (see orchestrator.installExitGuard).
 */
export const inFlight = new Set<number>();

export interface Spawned {
  pid: number;
  logFile: string;
  /** Set when the child exits (only seen by the process that spawned it). */
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
}

/** Starts spec.command detached (new process group = its PID), stdout+stderr appended to spec.logFile. */
export async function spawnDetached(spec: LaunchSpec): Promise<Spawned> {
  await fs.mkdir(path.dirname(spec.logFile), { recursive: true });
  await fs.mkdir(spec.cwd, { recursive: true });
  const fd = openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    const s: Spawned = { pid: child.pid ?? -1, logFile: spec.logFile, exited: null };
    child.on('exit', (code, signal) => {
      s.exited = { code, signal };
    });
    child.on('error', (e) => {
      s.exited ??= { code: -1, signal: null };
      void fs.appendFile(spec.logFile, `\n[peers] spawn error: ${String(e)}\n`).catch(() => {});
    });
    if (child.pid === undefined) {
      await sleep(50);
      throw new Error(`could not spawn ${spec.command}: ${await logTail(spec.logFile, 5)}`);
    }
    child.unref();
    inFlight.add(s.pid);
    return s;
  } finally {
    closeSync(fd);
  }
}

/** true when the PID exists and is not a zombie. */
export async function pidAlive(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const state = (await statFields(`/proc/${pid}/stat`))?.[0];
  return state !== undefined && isLive(state);
}

/** A /proc state other than zombie or dead. */
const isLive = (state: string) => state !== 'Z' && state !== 'X';

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig); // the whole group: the peer was spawned as its leader
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

/** SIGTERM to the process group of `pid`, SIGKILL after graceMs; resolves when the PID is gone. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!(await pidAlive(pid))) {
    signalGroup(pid, 'SIGKILL'); // leftover children of a dead leader, if any
    return;
  }
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await pidAlive(pid))) {
      signalGroup(pid, 'SIGKILL');
      return;
    }
    await sleep(100);
  }
  signalGroup(pid, 'SIGKILL');
  for (let i = 0; i < 50 && (await pidAlive(pid)); i++) await sleep(100);
}

/** Fields after `comm` of a /proc stat line (`comm` may hold spaces and parentheses). */
async function statFields(file: string): Promise<string[] | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** PIDs of the live processes in process group `pgid`. */
async function groupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = await statFields(`/proc/${entry}/stat`);
    // state is field 3 (f[0]), pgrp field 5 (f[2])
    if (f && Number(f[2]) === pgid && isLive(f[0]!)) out.push(Number(entry));
  }
  return out;
}

/**
 * SIGSTOP to the group, resolved once every thread of every process in it is stopped. kill()
 * returns before that: the kernel wakes one thread, which stops the others when it next runs,
 * so a server's I/O thread can still answer a request sent right after kill() (on 2 busy cores,
 * milliseconds later). A test that means "the server is frozen" waits for this.
 */
export async function freezeGroup(pgid: number, timeoutMs = 10_000): Promise<void> {
  signalGroup(pgid, 'SIGSTOP');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const members = await groupMembers(pgid);
    let running = 0;
    for (const pid of members) {
      const tasks = await fs.readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
      for (const t of tasks) {
        const state = (await statFields(`/proc/${pid}/task/${t}/stat`))?.[0];
        if (state !== undefined && state !== 'T' && state !== 't' && isLive(state)) running += 1;
      }
    }
    if (members.length > 0 && running === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `process group ${pgid}: ${running} threads not stopped ${timeoutMs} ms after SIGSTOP (${members.length} processes)`,
      );
    await sleep(5);
  }
}

/** SIGCONT to the group (no error when it is gone). */
export function thawGroup(pgid: number): void {
  signalGroup(pgid, 'SIGCONT');
}

/** Synchronous last-resort kill for process 'exit' handlers. */
export function killGroupSync(pid: number): void {
  signalGroup(pid, 'SIGKILL');
}

export async function logTail(file: string, lines = 40): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '(no log)');
  return text.split('\n').slice(-lines).join('\n');
}

/** Resident set size in MiB (VmRSS) or null. */
export async function rssMiB(pid: number): Promise<number | null> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m?.[1] ? Math.round(Number(m[1]) / 1024) : null;
}

// ---------------------------------------------------------------- readiness

export async function httpProbe(
  url: string,
  timeoutMs = 3000,
  form?: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const res = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    ...(form ? { method: 'POST', body: new URLSearchParams(form) } : {}),
  });
  return { status: res.status, body: await res.text() };
}

/** Sends `send` on a fresh TCP connection and returns everything until the server closes. */
export function tcpText(host: string, port: number, send: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let out = '';
    const timer = setTimeout(() => sock.destroy(new Error(`timeout talking to ${host}:${port}`)), timeoutMs);
    sock.on('connect', () => sock.write(send));
    sock.on('data', (d) => (out += d.toString()));
    sock.on('end', () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export async function probeOnce(p: ReadyProbe): Promise<boolean> {
  try {
    if (p.kind === 'http') {
      const r = await httpProbe(p.url, 3000, p.form);
      if (r.status !== (p.status ?? 200)) return false;
      return p.bodyIncludes === undefined || r.body.includes(p.bodyIncludes);
    }
    const text = await tcpText(p.host, p.port, p.send);
    return text.includes(p.expect);
  } catch {
    return false;
  }
}

/**
 * Polls all probes until they pass. Fails early (with the log tail) when the process dies,
 * and at the deadline.
 */
export async function waitReady(
  what: string,
  proc: { pid: number; logFile: string; exited?: Spawned['exited'] },
  probes: ReadyProbe[],
  timeoutMs: number,
  intervalMs = 250,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exited || !(await pidAlive(proc.pid))) {
      throw new Error(
        `${what} (pid ${proc.pid}) exited before it was ready${proc.exited ? ` (${JSON.stringify(proc.exited)})` : ''}; ` +
          `log ${proc.logFile}:\n${await logTail(proc.logFile)}`,
      );
    }
    let ok = true;
    for (const p of probes) if (!(ok = await probeOnce(p))) break;
    if (ok) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${what} (pid ${proc.pid}) not ready after ${Math.round(timeoutMs / 1000)} s ` +
          `(probes: ${probes.map(describeProbe).join(', ')}); log ${proc.logFile}:\n${await logTail(proc.logFile)}`,
      );
    }
    await sleep(intervalMs);
  }
}

function describeProbe(p: ReadyProbe): string {
  return p.kind === 'http' ? `${p.form ? 'POST' : 'GET'} ${p.url}` : `'${p.send.trim()}' to ${p.host}:${p.port}`;
}

/** Spawns a LaunchSpec and waits for its probes; kills it again if it never becomes ready. */
export async function launchAndWait(
  what: string,
  spec: LaunchSpec,
  probes: ReadyProbe[],
  timeoutMs: number,
): Promise<Spawned> {
  const proc = await spawnDetached(spec);
  try {
    await waitReady(what, proc, probes, timeoutMs);
  } catch (e) {
    await stopPid(proc.pid, 3000);
    throw e;
  } finally {
    inFlight.delete(proc.pid);
  }
  return proc;
}

/** Throws a clear error when a TCP port on 127.0.0.1 is already taken. */
export async function assertPortsFree(what: string, ports: number[]): Promise<void> {
  const busy: number[] = [];
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (!free) busy.push(port);
  }
  if (busy.length) {
    throw new Error(
      `${what}: port(s) ${busy.join(', ')} already in use on 127.0.0.1 ` +
        `(a peer left running? try \`npm run peers:status\` / \`npm run peers:down\`, or \`ss -ltnp\`)`,
    );
  }
}

// ---------------------------------------------------------------- install-time commands

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Output is appended here; the error quotes its tail. */
  logFile: string;
  log?: Log;
  timeoutMs?: number;
}

/** Runs a command to completion (output to a log file), rejecting with the log tail. */
export async function run(command: string, args: string[], opts: RunOptions): Promise<void> {
  await fs.mkdir(path.dirname(opts.logFile), { recursive: true });
  await fs.appendFile(opts.logFile, `\n$ ${command} ${args.join(' ')}\n`);
  opts.log?.(`$ ${command} ${args.join(' ')}  (log: ${opts.logFile})`);
  const fd = openSync(opts.logFile, 'a');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(command, args, {
        cwd: opts.cwd,
        env: { ...process.env, ...opts.env },
        stdio: ['ignore', fd, fd],
      });
      const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else {
          void logTail(opts.logFile, 30).then((tail) =>
            reject(
              new Error(
                `${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}); log ${opts.logFile}:\n${tail}`,
              ),
            ),
          );
        }
      });
    });
  } finally {
    closeSync(fd);
  }
}

/** Runs a command and returns its stdout (for short queries such as dpkg-query). */
export function capture(command: string, args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', () => resolve({ code: -1, stdout }));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout }));
  });
}

/**
 * Exclusive lock across processes (the CLI and a test run installing at the same time):
 * a directory created atomically, holding the owner's PID; stale locks of dead owners are broken.
 */
export async function withLock<T>(lockDir: string, log: Log, fn: () => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(lockDir), { recursive: true });
  let warned = false;
  for (;;) {
    try {
      await fs.mkdir(lockDir);
      await fs.writeFile(path.join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(await fs.readFile(path.join(lockDir, 'pid'), 'utf8').catch(() => 'NaN'));
      if (Number.isInteger(owner) && !(await pidAlive(owner))) {
        await fs.rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!Number.isInteger(owner)) {
        // Being created right now, or left half-written: give it a moment, then break it.
        const st = await fs.stat(lockDir).catch(() => null);
        if (st && Date.now() - st.mtimeMs > 10_000) await fs.rm(lockDir, { recursive: true, force: true });
      }
      if (!warned) log(`waiting for install lock ${lockDir} (held by pid ${owner})`);
      warned = true;
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lockDir, { recursive: true, force: true });
  }
}
