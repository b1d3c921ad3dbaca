/**
 * Types shared by every real-server peer (ZooKeeper, Nacos, r-nacos, etcd, kube-apiserver, istiod).
 *
 * A peer module exports `install(log?)` and `start(opts)`; `start` resolves once the server
 * answers its readiness probe and returns a PeerHandle. The Go-built peers (etcd.ts, kube.ts,
 * istiod.ts) declare the same shape in lib/go-peers-util.ts; TypeScript matches them
 * structurally.
 */

export type Log = (msg: string) => void;

export interface InstallResult {
  /** Main executable or launcher (java for the JVM peers). */
  binary: string;
  /** Exact version that was installed (e.g. the Debian package version). */
  version: string;
}

/** How to launch one process again from any other process (CLI, a test worker). */
export interface LaunchSpec {
  command: string;
  args: string[];
  /** Only the variables added on top of the parent's environment. */
  env: Record<string, string>;
  cwd: string;
  logFile: string;
}

/** Serializable readiness checks; all of them must pass. */
export type ReadyProbe =
  | {
      kind: 'http';
      url: string;
      status?: number;
      bodyIncludes?: string;
      /** POSTed as a form when set */ form?: Record<string, string>;
    }
  | { kind: 'tcp-text'; host: string; port: number; send: string; expect: string };

export interface PeerHandle {
  name: string;
  version: string;
  /** PID of the process (also its process group: peers are spawned detached). */
  pid: number;
  endpoints: Record<string, string>;
  stop(): Promise<void>;
  /** Optional extras of the peers started by lib/process.ts. */
  restart?(): Promise<void>;
  start?(): Promise<void>;
  dataDir?: string;
  logFile?: string;
  launch?: LaunchSpec;
  ready?: ReadyProbe[];
}

export interface StartOptions {
  /** Fresh or reused folder for this peer's data and log. */
  dataDir: string;
  log?: Log;
  /** Already-started peers this one depends on (kube gets etcd, istiod gets kube). */
  deps?: Record<string, PeerHandle>;
}

/** What the state file / RB_PEERS_FILE holds for one peer. */
export interface PeerRecord {
  name: string;
  version: string;
  pid: number;
  endpoints: Record<string, string>;
  /** 'cli' = started by `npm run peers:up` (left running); 'vitest' = by the global setup. */
  owner: 'cli' | 'vitest';
  /** PID of the process that started it. */
  ownerPid: number;
  startedAt: string;
  startMs?: number;
  installMs?: number;
  dataDir?: string;
  logFile?: string;
  launch?: LaunchSpec;
  ready?: ReadyProbe[];
}

export interface PeersState {
  version: 1;
  peers: Record<string, PeerRecord>;
}
