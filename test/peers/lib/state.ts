/**
 * The state file (default `${TMPDIR:-/tmp}/registry-bridge-peers/state.json`, or
 * RB_PEERS_FILE): which peers run, their PIDs, endpoints and how to relaunch them. Shared by the
 * CLI (`peers:up` leaves peers running), the vitest global setup (reuses them) and test files
 * (endpoints.ts reads it; a restart writes the new PID back).
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stateFile } from './paths.js';
import { pidAlive } from './process.js';
import type { PeerRecord, PeersState } from './types.js';

export function statePath(): string {
  return process.env.RB_PEERS_FILE || stateFile();
}

const empty = (): PeersState => ({ version: 1, peers: {} });

export function readStateSync(file = statePath()): PeersState {
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as PeersState;
    return s && typeof s.peers === 'object' ? s : empty();
  } catch {
    return empty();
  }
}

export async function readState(file = statePath()): Promise<PeersState> {
  return readStateSync(file);
}

let queue: Promise<unknown> = Promise.resolve();

/** Serialized read-modify-write of the state file (atomic rename). */
export function updateState(mutate: (s: PeersState) => void, file = statePath()): Promise<void> {
  const next = queue.then(async () => {
    const s = readStateSync(file);
    mutate(s);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(s, null, 2) + '\n');
    await fs.rename(tmp, file);
  });
  queue = next.catch(() => {});
  return next;
}

export const putRecord = (rec: PeerRecord, file?: string) =>
  updateState((s) => {
    s.peers[rec.name] = rec;
  }, file);

export const dropRecord = (name: string, file?: string) =>
  updateState((s) => {
    delete s.peers[name];
  }, file);

/** The first word of /proc/<pid>/cmdline (the executable as spawned), or null. */
export async function procCommand(pid: number): Promise<string | null> {
  const raw = await fs.readFile(`/proc/${pid}/cmdline`).catch(() => null);
  if (!raw || raw.length === 0) return null;
  return raw.toString('utf8').split('\0')[0] ?? null;
}

/**
 * true when the record's PID is alive and still runs what we launched (guards against PID
 * reuse before we signal anything).
 */
export async function recordAlive(rec: PeerRecord): Promise<boolean> {
  if (!(await pidAlive(rec.pid))) return false;
  const want = rec.launch?.command;
  if (!want) return true;
  const cmd = await procCommand(rec.pid);
  return cmd !== null && (cmd === want || path.basename(cmd) === path.basename(want));
}
