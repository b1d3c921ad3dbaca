/**
 * etcd 3.6 for kube-apiserver, built from go.etcd.io/etcd/server/v3 through a consumer module
 * (`go install go.etcd.io/etcd/v3@…` fails on that module's replace directives).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { goBuild, goModDownload, versionOf, type GoBuildSpec, type Log } from './go-build.js';
import { assertPortsFree, httpGet, spawnDetached, stopPid, waitFor, type PeerHandle } from './lib/go-peers-util.js';
import type { LaunchSpec } from './lib/types.js';

export type { PeerHandle } from './lib/go-peers-util.js';

export const NAME = 'etcd';

export async function buildSpec(log?: Log): Promise<GoBuildSpec> {
  const version = (await versionOf('etcd')).version; // e.g. v3.6.5
  return {
    name: NAME,
    version,
    binary: 'etcd',
    recipe: 'etcd-consumer-1',
    source: async () => ({
      goMod: `module registry-bridge.test/peers/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 ${version}\n`,
      files: {
        // Seed go.sum with the hashes etcd's server module itself pins.
        'go.sum': await fs
          .readFile(path.join((await goModDownload(`go.etcd.io/etcd/server/v3@${version}`, log)).Dir, 'go.sum'), 'utf8')
          .catch(() => ''),
        'main.go': [
          '// Consumer module: runs the upstream etcd server main.',
          'package main',
          '',
          'import (',
          '\t"os"',
          '',
          '\t"go.etcd.io/etcd/server/v3/etcdmain"',
          ')',
          '',
          'func main() { etcdmain.Main(os.Args) }',
          '',
        ].join('\n'),
      },
    }),
    pkg: '.',
    ldflags: ['-s', '-w', `-X go.etcd.io/etcd/api/v3/version.GitSHA=${version}`],
  };
}

export async function install(log?: Log): Promise<{ binary: string; version: string }> {
  const r = await goBuild(await buildSpec(log), log);
  return { binary: r.binary, version: r.version };
}

export interface EtcdStartOptions {
  dataDir: string;
  log?: Log;
  clientPort?: number;
  peerPort?: number;
  timeoutMs?: number;
  deps?: Record<string, PeerHandle>;
}

export async function start(opts: EtcdStartOptions): Promise<PeerHandle> {
  const log = opts.log ?? (() => {});
  const { binary, version } = await install(log);
  const clientPort = opts.clientPort ?? 12379;
  const peerPort = opts.peerPort ?? 12380;
  await fs.mkdir(opts.dataDir, { recursive: true });
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name=rb-etcd',
    `--data-dir=${path.join(opts.dataDir, 'data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=rb-etcd=${peer}`,
    '--initial-cluster-state=new',
    // Test data only: skip fsync, keep the log quiet.
    '--unsafe-no-fsync=true',
    '--log-level=warn',
    '--quota-backend-bytes=2147483648',
  ];
  await assertPortsFree('etcd', [clientPort, peerPort]);
  const t0 = Date.now();
  const logFile = path.join(opts.dataDir, 'etcd.log');
  const launch: LaunchSpec = { command: binary, args, env: {}, cwd: opts.dataDir, logFile };
  const proc = await spawnDetached(launch);
  const stop = () => stopPid(proc.pid);
  try {
    await waitFor(
      'etcd',
      proc,
      async () => {
        const r = await httpGet(`${client}/readyz`, { timeoutMs: 2000 });
        return r.status === 200;
      },
      { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 100 },
    );
  } catch (e) {
    await stop();
    throw e;
  }
  log(`etcd ${version} ready on ${client} (pid ${proc.pid}) in ${Date.now() - t0} ms`);
  return {
    name: NAME,
    version,
    pid: proc.pid,
    endpoints: { client },
    stop,
    dataDir: opts.dataDir,
    logFile,
    launch,
    ready: [{ kind: 'http', url: `${client}/readyz`, status: 200 }],
  };
}
