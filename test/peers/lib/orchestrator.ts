/**
 * Brings a set of peers up (install, then start as soon as the dependencies are up: independent
 * peers in parallel), reusing live peers from the state file, and down again. On any failure
 * everything this call started is stopped before the error is thrown.
 */
import { writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { peerDef, withDeps } from '../registry.js';
import { runDir } from './paths.js';
import { inFlight, killGroupSync, pidAlive, rssMiB, stopPid } from './process.js';
import { dropRecord, putRecord, readStateSync, recordAlive, statePath } from './state.js';
import type { Log, PeerHandle, PeerRecord } from './types.js';

export interface PeerReport {
  name: string;
  version: string;
  pid: number;
  reused: boolean;
  installMs?: number;
  startMs?: number;
  rssMiB?: number | null;
}

export interface Started {
  handles: Record<string, PeerHandle>;
  records: Record<string, PeerRecord>;
  reports: PeerReport[];
  /** Names this call started (and must stop); the others were reused. */
  owned: string[];
}

class DependencyFailed extends Error {}

export function prefixed(log: Log, name: string): Log {
  return (m) => log(`[${name}] ${m}`);
}

/** Installs (builds, resolves, downloads) the named peers in parallel. */
export async function installPeers(
  names: string[],
  log: Log,
): Promise<{ name: string; version: string; ms: number }[]> {
  const results = await Promise.allSettled(
    names.map(async (name) => {
      const t0 = Date.now();
      const mod = await peerDef(name).load();
      const r = await mod.install(prefixed(log, name));
      const ms = Date.now() - t0;
      log(`[${name}] installed ${r.version} (${(ms / 1000).toFixed(1)} s)`);
      return { name, version: r.version, ms };
    }),
  );
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`- ${names[i]}: ${errText(r.reason)}`] : []));
  if (failed.length) throw new Error(`peer install failed:\n${failed.join('\n')}`);
  return results.map((r) => (r as PromiseFulfilledResult<{ name: string; version: string; ms: number }>).value);
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A handle for a peer some other process started (stop = by its recorded PID). */
export function handleFromRecord(rec: PeerRecord): PeerHandle {
  return {
    name: rec.name,
    version: rec.version,
    pid: rec.pid,
    endpoints: rec.endpoints,
    ...(rec.dataDir ? { dataDir: rec.dataDir } : {}),
    ...(rec.logFile ? { logFile: rec.logFile } : {}),
    async stop() {
      if (await recordAlive(rec)) await stopPid(rec.pid);
    },
  };
}

/** May a peer found in the state file be reused by this process? */
async function reusable(rec: PeerRecord): Promise<'reuse' | 'stale' | 'dead'> {
  if (!(await recordAlive(rec))) return 'dead';
  if (rec.owner === 'cli') return 'reuse';
  // Started by a test run: reuse only while that run is alive, else it is a leftover.
  return rec.ownerPid !== process.pid && (await pidAlive(rec.ownerPid)) ? 'reuse' : 'stale';
}

export async function bringUp(
  requested: string[],
  o: {
    owner: PeerRecord['owner'];
    log: Log;
    /** Extra options for a peer's start() (ports of an instance of one's own). */
    startOptions?: (name: string) => Record<string, unknown>;
  },
): Promise<Started> {
  const order = withDeps(requested);
  const state = readStateSync();
  const reuse: Record<string, PeerRecord> = {};
  for (const name of order) {
    const rec = state.peers[name];
    if (!rec) continue;
    const r = await reusable(rec);
    if (r === 'reuse' && peerDef(name).deps.every((d) => reuse[d])) {
      reuse[name] = rec;
      continue;
    }
    if (r !== 'dead') {
      o.log(
        `[${name}] stopping leftover pid ${rec.pid} (${r === 'stale' ? 'its test run is gone' : 'a dependency restarts'})`,
      );
      await stopPid(rec.pid);
    }
    await dropRecord(name);
  }

  const started: Started = { handles: {}, records: {}, reports: [], owned: [] };
  const promises: Record<string, Promise<PeerHandle>> = {};
  for (const name of order) {
    const def = peerDef(name);
    const log = prefixed(o.log, name);
    promises[name] = (async (): Promise<PeerHandle> => {
      const prior = reuse[name];
      if (prior) {
        log(`reusing pid ${prior.pid} (started by ${prior.owner === 'cli' ? 'peers:up' : `pid ${prior.ownerPid}`})`);
        const h = handleFromRecord(prior);
        started.handles[name] = h;
        started.records[name] = prior;
        started.reports.push({
          name,
          version: prior.version,
          pid: prior.pid,
          reused: true,
          rssMiB: await rssMiB(prior.pid),
        });
        return h;
      }
      const mod = await def.load();
      const ti = Date.now();
      await mod.install(log);
      const installMs = Date.now() - ti;
      const deps: Record<string, PeerHandle> = {};
      for (const d of def.deps) {
        try {
          deps[d] = await promises[d]!;
        } catch {
          throw new DependencyFailed(`not started: dependency ${d} failed`);
        }
      }
      const dataDir = path.join(runDir(), name);
      await fs.rm(dataDir, { recursive: true, force: true });
      await fs.mkdir(dataDir, { recursive: true });
      const ts = Date.now();
      const h = await mod.start({ ...o.startOptions?.(name), dataDir, log, deps });
      const startMs = Date.now() - ts;
      started.handles[name] = h;
      started.owned.push(name);
      const rec: PeerRecord = {
        name,
        version: h.version,
        pid: h.pid,
        endpoints: h.endpoints,
        owner: o.owner,
        ownerPid: process.pid,
        startedAt: new Date().toISOString(),
        startMs,
        installMs,
        ...(h.dataDir ? { dataDir: h.dataDir } : { dataDir }),
        ...(h.logFile ? { logFile: h.logFile } : {}),
        ...(h.launch ? { launch: h.launch } : {}),
        ...(h.ready ? { ready: h.ready } : {}),
      };
      started.records[name] = rec;
      await putRecord(rec);
      // Recorded now: from here the owner's teardown (or peers:down) stops it, not the exit guard.
      inFlight.delete(h.pid);
      const rss = await rssMiB(h.pid);
      started.reports.push({ name, version: h.version, pid: h.pid, reused: false, installMs, startMs, rssMiB: rss });
      log(`up: ${h.version}, pid ${h.pid}, start ${(startMs / 1000).toFixed(1)} s, RSS ${rss ?? '?'} MiB`);
      return h;
    })();
  }
  const results = await Promise.allSettled(order.map((n) => promises[n]!));
  const failures = results.flatMap((r, i) => {
    if (r.status === 'fulfilled') return [];
    return [{ name: order[i]!, err: r.reason as unknown }];
  });
  if (failures.length) {
    o.log(
      `start failed (${failures.map((f) => f.name).join(', ')}); stopping the ${started.owned.length} peer(s) started here`,
    );
    await bringDown(started, o.log).catch((e: unknown) => o.log(`cleanup error: ${errText(e)}`));
    const root = failures.filter((f) => !(f.err instanceof DependencyFailed));
    const dep = failures.filter((f) => f.err instanceof DependencyFailed);
    throw new Error(
      `peers failed to start:\n${root.map((f) => `- ${f.name}: ${errText(f.err)}`).join('\n')}` +
        (dep.length ? `\n(not started because of that: ${dep.map((f) => f.name).join(', ')})` : ''),
    );
  }
  return started;
}

/**
 * Stops the given names (dependents before their dependencies; independent ones in parallel).
 * `stopOne` does the actual stopping.
 */
async function stopInLayers(names: string[], stopOne: (name: string) => Promise<void>): Promise<void> {
  let left = [...names];
  while (left.length) {
    // Those that no remaining peer depends on.
    const layer = left.filter((n) => !left.some((m) => m !== n && withDeps([m]).includes(n)));
    const now = layer.length ? layer : left;
    await Promise.all(now.map(stopOne));
    left = left.filter((n) => !now.includes(n));
  }
}

/** Stops what bringUp() started here (by the PID in the state file: a test may have restarted it). */
export async function bringDown(started: Started, log: Log): Promise<void> {
  const state = readStateSync();
  const errors: string[] = [];
  await stopInLayers(started.owned, async (name) => {
    try {
      const h = started.handles[name];
      const rec = state.peers[name];
      if (rec && rec.ownerPid === process.pid && h && rec.pid !== h.pid) {
        if (await recordAlive(rec)) await stopPid(rec.pid);
      } else if (h) {
        await h.stop();
      }
      await dropRecord(name);
      log(`[${name}] stopped`);
    } catch (e) {
      errors.push(`${name}: ${errText(e)}`);
    }
  });
  if (errors.length) throw new Error(`stopping peers: ${errors.join('; ')}`);
}

/** Stops recorded peers (all, or the named ones) by PID: `peers:down`. */
export async function stopRecorded(names: string[] | null, log: Log): Promise<void> {
  const state = readStateSync();
  const targets = Object.keys(state.peers).filter((n) => !names || names.includes(n));
  await stopInLayers(targets, async (name) => {
    const rec = state.peers[name]!;
    if (await recordAlive(rec)) {
      log(`[${name}] stopping pid ${rec.pid}`);
      await stopPid(rec.pid);
    } else {
      log(`[${name}] pid ${rec.pid} already gone`);
    }
    await dropRecord(name);
  });
  const after = readStateSync();
  if (Object.keys(after.peers).length === 0) await fs.rm(statePath(), { force: true });
}

let guardInstalled = false;

/**
 * Last-resort cleanup when the process exits without teardown: SIGKILL the groups of peers still
 * starting (never recorded) and, with `owned`, of the peers this process started (by the PIDs
 * the state file holds at that moment). The CLI passes false: `peers:up` leaves peers running.
 */
export function installExitGuard(owned = true): void {
  if (guardInstalled) return;
  guardInstalled = true;
  process.on('exit', () => {
    for (const pid of inFlight) killGroupSync(pid);
    if (!owned) return;
    const s = readStateSync();
    let changed = false;
    for (const rec of Object.values(s.peers)) {
      if (rec.owner === 'vitest' && rec.ownerPid === process.pid) {
        killGroupSync(rec.pid);
        delete s.peers[rec.name];
        changed = true;
      }
    }
    if (changed) {
      try {
        writeFileSync(statePath(), JSON.stringify(s, null, 2) + '\n');
      } catch {
        /* best effort */
      }
    }
  });
}
