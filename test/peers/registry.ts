/**
 * Every real-server peer the tests can ask for, in start order, with its dependencies.
 * Modules load lazily, so a peer that fails to import only breaks runs that need it.
 * Adding a peer = one line here (its module exports install(log?) and start(opts)).
 */
import type { InstallResult, Log, PeerHandle, StartOptions } from './lib/types.js';

export interface PeerModule {
  install(log?: Log): Promise<InstallResult>;
  start(opts: StartOptions): Promise<PeerHandle>;
}

export interface PeerDef {
  name: string;
  /** Started (and passed in opts.deps under these names) before this one. */
  deps: string[];
  load(): Promise<PeerModule>;
}

export const PEERS: readonly PeerDef[] = [
  { name: 'zookeeper', deps: [], load: () => import('./zookeeper.js') },
  { name: 'nacos', deps: [], load: () => import('./nacos.js') },
  { name: 'rnacos', deps: [], load: () => import('./rnacos.js') },
  { name: 'etcd', deps: [], load: () => import('./etcd.js') },
  { name: 'kube', deps: ['etcd'], load: () => import('./kube.js') },
  { name: 'istiod', deps: ['kube'], load: () => import('./istiod.js') },
];

export const PEER_NAMES = PEERS.map((p) => p.name);

export function peerDef(name: string): PeerDef {
  const d = PEERS.find((p) => p.name === name);
  if (!d) throw new Error(`unknown peer "${name}" (known: ${PEER_NAMES.join(', ')})`);
  return d;
}

/** `names` plus everything they depend on, in registry (= a valid start) order. */
export function withDeps(names: readonly string[]): string[] {
  const want = new Set<string>();
  const add = (n: string) => {
    if (want.has(n)) return;
    want.add(n);
    peerDef(n).deps.forEach(add);
  };
  names.forEach(add);
  return PEER_NAMES.filter((n) => want.has(n));
}

/** Parses RB_PEERS-style lists: "" / "all" = every peer, "none" = none, else comma/space separated. */
export function parsePeerList(value: string | undefined): string[] {
  const v = (value ?? '').trim();
  if (v === '' || v === 'all') return [...PEER_NAMES];
  if (v === 'none') return [];
  return withDeps(v.split(/[\s,]+/).filter(Boolean));
}
