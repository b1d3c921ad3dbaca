/**
 * The benchmark's own servers. It never reuses, stops or restarts the shared peers of the
 * integration tests (test/peers, state file /tmp/registry-bridge-peers/state.json): it starts
 * every server it needs on free ports, with its data and state file under a run directory of
 * its own, and stops them at the end. Loading 10,000 services into the shared servers would
 * also slow every test that runs beside the bench.
 */
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { bringDown, bringUp, installExitGuard, type Started } from '../test/peers/lib/orchestrator.js';

/** Where the bench's servers keep their data, logs and state file. */
export function benchRunDir(): string {
  return join(process.env.TMPDIR || '/tmp', `registry-bridge-bench-peers-${process.pid}`);
}

async function isFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * A Java Nacos HTTP port whose fixed companions are free as well: gRPC +1000 and +1001, JRaft
 * −1000 (test/peers/nacos.ts).
 */
async function nacosPort(): Promise<number> {
  for (let port = 8900; port < 8990; port++) {
    const all = [port, port + 1000, port + 1001, port - 1000];
    if ((await Promise.all(all.map(isFree))).every(Boolean)) return port;
  }
  throw new Error('no free port for the bench Nacos in 8900..8989 (with +1000, +1001 and -1000)');
}

/** Start options that put each server on ports of its own. */
async function ownPorts(name: string): Promise<Record<string, unknown>> {
  switch (name) {
    case 'zookeeper':
      return { port: await freePort() };
    case 'nacos':
      return { port: await nacosPort(), consolePort: await freePort() };
    case 'rnacos':
      return { port: await freePort(), grpcPort: await freePort(), consolePort: await freePort() };
    case 'etcd':
      return { clientPort: await freePort(), peerPort: await freePort() };
    case 'kube':
      return { securePort: await freePort() };
    case 'istiod':
      // (Its validating webhook is registered in the bench's own kube-apiserver.)
      return {
        ports: {
          http: await freePort(),
          https: await freePort(),
          grpc: await freePort(),
          monitoring: await freePort(),
        },
      };
    default:
      return {};
  }
}

/**
 * Starts `names` (and their dependencies) as the bench's own instances; with `keep`, an exit
 * leaves them running. The state file and run
 * directory of this process point at {@link benchRunDir} from here on, so nothing the bench
 * starts or stops is recorded in, or read from, the shared state file.
 */
export async function startBenchPeers(
  names: string[],
  log: (m: string) => void,
  o: { readonly keep?: boolean } = {},
): Promise<Started> {
  const dir = benchRunDir();
  process.env.RB_PEERS_RUN_DIR = dir;
  process.env.RB_PEERS_FILE = join(dir, 'state.json');
  // Kept servers outlive the bench (stopped by `RB_PEERS_FILE=<its state file> npm run peers:down`).
  installExitGuard(!o.keep);
  const options = new Map<string, Record<string, unknown>>();
  for (const name of ['etcd', 'kube', 'istiod', ...names]) options.set(name, await ownPorts(name));
  log(`starting the bench's own servers under ${dir}`);
  return bringUp(names, { owner: 'vitest', log, startOptions: (name) => options.get(name) ?? {} });
}

/** Stops what {@link startBenchPeers} started and removes its data. */
export async function stopBenchPeers(started: Started, log: (m: string) => void): Promise<void> {
  await bringDown(started, log);
  await rm(benchRunDir(), { recursive: true, force: true });
}
