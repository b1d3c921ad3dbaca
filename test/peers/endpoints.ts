/**
 * What integration test files import to reach the real servers started by the global setup
 * (or by `npm run peers:up`).
 *
 *   import { peers, hasPeer, control } from '../peers/endpoints.js';
 *   const zk = peers().zookeeper.connect;                       // "127.0.0.1:2181"
 *   describe.skipIf(!hasPeer('nacos'))('...', () => { ... });   // when RB_PEERS leaves it out
 *   await control('zookeeper').restart();                       // outage simulation
 *
 * Reads the state file named by RB_PEERS_FILE (set by the global setup), else the default one.
 */
import { controlFromRecord } from './lib/managed.js';
import { putRecord, readStateSync, statePath } from './lib/state.js';
import type { PeerRecord } from './lib/types.js';

export interface ZooKeeperEndpoints {
  /** host:port for node-zookeeper-client / Curator connect strings. */
  connect: string;
  host: string;
  port: string;
  /** ms; sessions last 2..20 ticks. */
  tickTime: string;
}

export interface NacosEndpoints {
  /** host:port, what Nacos SDKs call serverAddr / serverList. */
  serverAddr: string;
  /** Base URL of the HTTP OpenAPI, ending in /nacos. */
  http: string;
  /** host:port of the v2 gRPC API (HTTP port + 1000). */
  grpc: string;
  console?: string;
  /** nacos.naming.push.pushTaskDelay the server runs with (Java Nacos). */
  pushTaskDelayMs?: string;
  username?: string;
  password?: string;
}

export interface EtcdEndpoints {
  client: string;
}

export interface KubeEndpoints {
  /** Path of a kubeconfig for @kubernetes/client-node (static admin token). */
  kubeconfig: string;
  server: string;
  token: string;
  caFile: string;
}

export interface IstiodEndpoints {
  /** Debug/monitoring HTTP base (…/debug/registryz, /debug/configz, /debug/syncz). */
  debug: string;
  /** host:port of plaintext xDS (15010). */
  xds: string;
  [k: string]: string;
}

export interface Peers {
  zookeeper: ZooKeeperEndpoints;
  nacos: NacosEndpoints;
  rnacos: NacosEndpoints;
  etcd: EtcdEndpoints;
  kube: KubeEndpoints;
  istiod: IstiodEndpoints;
}

export type PeerName = keyof Peers;

function records(): Record<string, PeerRecord> {
  return readStateSync(statePath()).peers;
}

function notUp(name: string): Error {
  return new Error(
    `peer "${name}" is not up (state file ${statePath()}). Integration tests get peers from the ` +
      `global setup (RB_PEERS=${process.env.RB_PEERS ?? '<all>'}); include "${name}" in RB_PEERS, or start it with ` +
      `\`npm run peers:up -- ${name}\`.`,
  );
}

/** Typed endpoints of every peer; reading a peer that is not up throws a clear error. */
export function peers(): Peers {
  const recs = records();
  return new Proxy({} as Peers, {
    get(_t, prop) {
      if (typeof prop !== 'string') return undefined;
      const rec = recs[prop];
      if (!rec) throw notUp(prop);
      return rec.endpoints;
    },
  });
}

export function peer<K extends PeerName>(name: K): Peers[K] {
  const rec = records()[name];
  if (!rec) throw notUp(name);
  return rec.endpoints as unknown as Peers[K];
}

/** true when the peer is recorded as up (for describe.skipIf when RB_PEERS leaves it out). */
export function hasPeer(name: PeerName): boolean {
  return name in records();
}

export function peerRecord(name: PeerName): PeerRecord {
  const rec = records()[name];
  if (!rec) throw notUp(name);
  return rec;
}

/**
 * stop()/start()/restart() a peer from a test file (outage simulation), by the launch spec the
 * state file holds; the new PID is written back so the global teardown stops the right process.
 * Only for peers started by lib/managed.ts (zookeeper, nacos, rnacos).
 */
export function control(name: PeerName) {
  const rec = peerRecord(name);
  return controlFromRecord(rec, (pid) => putRecord({ ...rec, pid }));
}
