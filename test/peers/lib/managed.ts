/**
 * A PeerHandle for one detached process described by a serializable LaunchSpec, with
 * stop()/start()/restart() (outage simulation). Because the spec and probes are plain data, the
 * same control works from another process (a test worker) through the state file: see
 * controlFromRecord().
 */
import { freezeGroup, launchAndWait, pidAlive, stopPid, thawGroup } from './process.js';
import type { LaunchSpec, Log, PeerHandle, PeerRecord, ReadyProbe } from './types.js';

export interface ManagedOptions {
  name: string;
  version: string;
  spec: LaunchSpec;
  ready: ReadyProbe[];
  endpoints: Record<string, string>;
  dataDir: string;
  timeoutMs: number;
  log?: Log;
  /** SIGTERM grace before SIGKILL. */
  graceMs?: number;
}

export interface ManagedHandle extends PeerHandle {
  restart(): Promise<void>;
  start(): Promise<void>;
  launch: LaunchSpec;
  ready: ReadyProbe[];
  dataDir: string;
  logFile: string;
}

export async function startManaged(o: ManagedOptions): Promise<ManagedHandle> {
  const log = o.log ?? (() => {});
  const proc = await launchAndWait(o.name, o.spec, o.ready, o.timeoutMs);
  let pid = proc.pid;
  const handle: ManagedHandle = {
    name: o.name,
    version: o.version,
    get pid() {
      return pid;
    },
    endpoints: o.endpoints,
    launch: o.spec,
    ready: o.ready,
    dataDir: o.dataDir,
    logFile: o.spec.logFile,
    async stop() {
      await stopPid(pid, o.graceMs ?? 10_000);
    },
    async start() {
      if (await pidAlive(pid)) return;
      log(`${o.name}: starting again`);
      pid = (await launchAndWait(o.name, o.spec, o.ready, o.timeoutMs)).pid;
    },
    async restart() {
      await handle.stop();
      await handle.start();
    },
  };
  return handle;
}

/**
 * stop/start/restart for a peer recorded by another process. `onPid` is told the new PID so the
 * caller can write it back to the state file (teardown kills what the file says).
 */
export function controlFromRecord(rec: PeerRecord, onPid: (pid: number) => Promise<void>) {
  const spec = rec.launch;
  const ready = rec.ready ?? [];
  if (!spec) throw new Error(`peer ${rec.name} was not started by lib/managed.ts: it cannot be restarted from here`);
  let pid = rec.pid;
  const ctl = {
    get pid() {
      return pid;
    },
    async stop(graceMs = 10_000) {
      await stopPid(pid, graceMs);
    },
    async start(timeoutMs = 120_000) {
      if (await pidAlive(pid)) return;
      pid = (await launchAndWait(rec.name, spec, ready, timeoutMs)).pid;
      await onPid(pid);
    },
    /** SIGSTOP, resolved once every thread of the server is stopped (see freezeGroup). */
    async freeze() {
      await freezeGroup(pid);
    },
    thaw() {
      thawGroup(pid);
    },
    async restart() {
      await ctl.stop();
      await ctl.start();
    },
  };
  return ctl;
}
