/**
 * The sharp-shrink hold (policy.shrinkHold, src/plan/policy.ts) against registries of the
 * test's own that restart without their data (other ports, own data directories: the shared
 * servers are never restarted), the bridge's built binary against the harness's kube-apiserver:
 * - a ZooKeeper restarted on an empty data directory, its root re-created by the first provider
 *   to come back (what Dubbo does on reconnect), or by nothing but the root;
 * - an r-nacos restarted on an empty data directory (it has answered with no service right after
 *   a restart, and lost persistent instances): `sync --once` and continuous mode.
 * In each: the entries are not deleted while the shrink is held, are kept when the providers
 * register again within the confirmation window, and are deleted once the registry stays empty
 * past it. Every wait is on a condition; the confirmation window (20 s) only has to be longer
 * than a metrics scrape and a list of the namespace.
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'node-zookeeper-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer, peer } from '../peers/endpoints.js';
import * as rnacosPeer from '../peers/rnacos.js';
import * as zookeeperPeer from '../peers/zookeeper.js';
import {
  BridgeProcess,
  KubeScope,
  freePort,
  kill9Peer,
  providerZnode,
  waitUntil,
  zkConnect,
  zkCreateAll,
} from './faults-harness.js';

const suffix = randomBytes(3).toString('hex');
const N = 5;
const CONFIRM = '20s';
/** First TCP port of this run's Nacos services. */
const PORT0 = 30_000 + (parseInt(suffix, 16) % 30_000);

/** `registry_bridge_held_deletions{source,reason="shrink"}` of a running bridge. */
async function held(bridge: BridgeProcess, source: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${bridge.port}/metrics`)).text();
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('registry_bridge_held_deletions{') &&
        l.includes(`source="${source}"`) &&
        l.includes('reason="shrink"'),
    );
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

/** The bridge's log as parsed lines, and its decisions (`action`) about objects. */
function logLines(bridge: BridgeProcess): Record<string, unknown>[] {
  return bridge
    .logText()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
const deletes = (bridge: BridgeProcess) => logLines(bridge).filter((l) => l.action === 'delete' && l.msg === 'delete');

/** name → uid of the bridge's objects (a uid that stays means the object was never deleted). */
async function uids(scope: KubeScope): Promise<Map<string, string>> {
  return new Map(
    (await scope.list('app.kubernetes.io/managed-by=registry-bridge')).map((o) => [
      o.metadata.name,
      (o.metadata as { uid?: string }).uid ?? '',
    ]),
  );
}

function bridgeConfig(source: string[], namespace: string): string {
  return [
    'sources:',
    ...source,
    `    targetNamespace: ${namespace}`,
    `sink: { kind: kube, kubeconfig: ${JSON.stringify(peer('kube').kubeconfig)} }`,
    `policy: { shrinkHold: { confirmFor: ${CONFIRM}, recheckAfter: 500ms } }`,
    'controller: { resyncInterval: 3s }',
    'server: { address: 127.0.0.1, port: 0 }',
    '',
  ].join('\n');
}

/**
 * The two continuous-mode scenarios, for a registry that `restartEmpty()` restarts without its
 * data and `comeBack()` fills again as the providers would.
 */
function continuousScenarios(o: {
  source: string;
  bridge: () => BridgeProcess;
  scope: () => KubeScope;
  restartEmpty: () => Promise<void>;
  comeBack: () => Promise<void>;
}): void {
  it('restarted empty, the providers register again within the window: held, then kept (never deleted)', async () => {
    const bridge = o.bridge();
    const scope = o.scope();
    const before = await uids(scope);
    expect(before.size).toBe(N);
    await o.restartEmpty();
    await waitUntil(async () => (await held(bridge, o.source)) === N, `${N} deletions held`, 120_000);
    // Held: every entry still there (read before the log: no deletion had been decided by then).
    expect(await uids(scope)).toEqual(before);
    expect(deletes(bridge)).toEqual([]);
    const hold = logLines(bridge).find(
      (l) => l.level === 40 && String(l.msg).includes(`would lose ${N} of its ${N} entries in one run: deletions held`),
    );
    expect(hold, 'one warn line summarizing the hold').toBeDefined();
    const keeps = logLines(bridge).filter((l) => l.action === 'keep' && String(l.reason).includes('held: source'));
    expect(new Set(keeps.map((l) => l.name))).toEqual(new Set(before.keys()));

    await o.comeBack();
    await waitUntil(async () => (await held(bridge, o.source)) === 0, 'the hold ended', 120_000);
    expect(await uids(scope)).toEqual(before);
    expect(deletes(bridge)).toEqual([]);
  }, 300_000);

  it('restarted empty and staying empty: held, then deleted once the window has passed', async () => {
    const bridge = o.bridge();
    const scope = o.scope();
    const before = await uids(scope);
    expect(before.size).toBe(N);
    await o.restartEmpty();
    await waitUntil(async () => (await held(bridge, o.source)) === N, `${N} deletions held`, 120_000);
    expect(await uids(scope)).toEqual(before);
    expect(deletes(bridge)).toEqual([]);

    await waitUntil(async () => (await uids(scope)).size === 0, 'every entry deleted after the window', 180_000);
    const lines = logLines(bridge);
    const firstHold = lines.findIndex((l) => l.action === 'keep' && String(l.reason).includes('held: source'));
    const confirmed = lines.findIndex((l) =>
      String(l.msg).includes(`source "${o.source}" shrank sharply and stayed so for ${CONFIRM}`),
    );
    const deleted = lines.flatMap((l, i) => (l.action === 'delete' && l.msg === 'delete' ? [i] : []));
    expect(firstHold).toBeGreaterThanOrEqual(0);
    expect(confirmed).toBeGreaterThan(firstHold);
    expect(deleted).toHaveLength(N);
    for (const i of deleted) expect(i).toBeGreaterThan(confirmed);
    expect(await held(bridge, o.source)).toBe(0);
  }, 300_000);
}

describe.skipIf(!hasPeer('kube'))('sharp-shrink hold: ZooKeeper (own instance) restarted on an empty data dir', () => {
  let dir: string;
  let zkHandle: zookeeperPeer.ZooKeeperHandle;
  let writer: Client | undefined;
  let scope: KubeScope;
  let bridge: BridgeProcess;
  const iface = (i: number) => `org.shrink.r${suffix}.S${i}Service`;
  const provider = (i: number) => providerZnode(iface(i), `10.79.0.${i + 1}`, 20880);

  /** Killed, its data directory emptied, started again; the root exists, with no service. */
  async function restartEmpty(): Promise<void> {
    writer?.close();
    writer = undefined;
    await kill9Peer(zkHandle.pid);
    await rm(join(dir, 'zk', 'data'), { recursive: true, force: true });
    await mkdir(join(dir, 'zk', 'data'), { recursive: true });
    await zkHandle.start();
    writer = await zkConnect(zkHandle.endpoints.connect!);
    // A missing root is an unreadable source (fenced, not a shrink: faults-zookeeper tests it);
    // a root without services is a registry that answers and lists nothing.
    await new Promise<void>((resolve, reject) => writer!.mkdirp('/dubbo', (e) => (e ? reject(e) : resolve())));
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-shrink-zk-'));
    zkHandle = await zookeeperPeer.start({ dataDir: join(dir, 'zk'), port: await freePort(), tickTime: 500 });
    writer = await zkConnect(zkHandle.endpoints.connect!);
    await zkCreateAll(
      writer,
      Array.from({ length: N }, (_, i) => provider(i)),
    );
    scope = new KubeScope(peer('kube').kubeconfig, `rb-shrink-zk-${suffix}`);
    await scope.create();
    const config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      bridgeConfig(
        [
          '  - name: zk',
          '    kind: zookeeper',
          '    zookeeper:',
          `      connect: ${zkHandle.endpoints.connect}`,
          '      roots: ["/dubbo"]',
          '      sessionTimeout: 4s',
          '      requestTimeout: 1s',
          '      relistInterval: 3s',
        ],
        scope.namespace,
      ),
    );
    bridge = new BridgeProcess(config, join(dir, 'bridge.log'));
    await bridge.start();
    await waitUntil(async () => (await scope.owned()).size === N, `${N} entries`, 90_000);
  }, 180_000);

  afterAll(async () => {
    await bridge?.stop();
    if (process.env.RB_DEBUG_LOG) await writeFile(process.env.RB_DEBUG_LOG, bridge?.logText() ?? '');
    writer?.close();
    await zkHandle?.stop();
    await scope?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  continuousScenarios({
    source: 'zk',
    bridge: () => bridge,
    scope: () => scope,
    restartEmpty,
    comeBack: async () => {
      await zkCreateAll(
        writer!,
        Array.from({ length: N }, (_, i) => provider(i)),
      );
    },
  });
});

/** `registry-bridge sync --once` (the built binary): exit code and log. */
async function syncOnce(config: string, ...extra: string[]): Promise<{ code: number | null; log: string }> {
  const child = spawn(process.execPath, ['dist/registry-bridge.mjs', 'sync', '--once', '-c', config, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' },
  });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, log };
}

describe.skipIf(!hasPeer('kube'))('sharp-shrink hold: r-nacos (own instance) restarted on an empty data dir', () => {
  let dir: string;
  let nacos: rnacosPeer.RnacosHandle;
  let scope: KubeScope;
  let onceScope: KubeScope;
  let bridge: BridgeProcess;
  const svc = (i: number) => `shrink-${suffix}-${i}`;
  const source = (serverAddr: string) => [
    '  - name: rn',
    '    kind: nacos',
    '    nacos:',
    `      servers: ["http://${serverAddr}"]`,
    '      relistInterval: 3s',
  ];

  /** Persistent instances (kept across an ordinary restart; not across one without data). */
  async function registerAll(): Promise<void> {
    for (let i = 0; i < N; i++) {
      const q = new URLSearchParams({
        serviceName: svc(i),
        ip: `10.89.0.${i + 1}`,
        // A port each, unique per run: TCP entries sharing a port without addresses are a
        // collision (exit 4), in any namespace that sees both.
        port: String(PORT0 + i),
        ephemeral: 'false',
        healthy: 'true',
      });
      const res = await fetch(`${nacos.endpoints.http}/v1/ns/instance?${q}`, { method: 'POST' });
      const text = await res.text();
      if (!res.ok || text.trim() !== 'ok') throw new Error(`register ${svc(i)}: ${res.status} ${text}`);
    }
  }

  async function restartEmpty(): Promise<void> {
    await kill9Peer(nacos.pid);
    await rm(join(dir, 'rnacos', 'data'), { recursive: true, force: true });
    await nacos.start();
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-shrink-rnacos-'));
    nacos = await rnacosPeer.start({
      dataDir: join(dir, 'rnacos'),
      port: await freePort(),
      grpcPort: await freePort(),
      consolePort: await freePort(),
    });
    await registerAll();
    scope = new KubeScope(peer('kube').kubeconfig, `rb-shrink-rn-${suffix}`);
    onceScope = new KubeScope(peer('kube').kubeconfig, `rb-shrink-rn-once-${suffix}`);
    await scope.create();
    await onceScope.create();
    const config = join(dir, 'bridge.yaml');
    await writeFile(config, bridgeConfig(source(nacos.endpoints.serverAddr!), scope.namespace));
    bridge = new BridgeProcess(config, join(dir, 'bridge.log'));
    await bridge.start();
    await waitUntil(async () => (await scope.owned()).size === N, `${N} entries`, 90_000);
  }, 180_000);

  afterAll(async () => {
    await bridge?.stop();
    if (process.env.RB_DEBUG_LOG) await writeFile(`${process.env.RB_DEBUG_LOG}.rn`, bridge?.logText() ?? '');
    await nacos?.stop();
    await scope?.remove();
    await onceScope?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  continuousScenarios({
    source: 'rn',
    bridge: () => bridge,
    scope: () => scope,
    restartEmpty,
    comeBack: registerAll,
  });

  it('sync --once right after the restart: reads again, holds, exits 4, deletes nothing; --allow-shrink deletes', async () => {
    await bridge.stop();
    await registerAll();
    const config = join(dir, 'once.yaml');
    await writeFile(config, bridgeConfig(source(nacos.endpoints.serverAddr!), onceScope.namespace));
    const first = await syncOnce(config);
    expect(first.code, first.log.slice(-2000)).toBe(0);
    const before = await uids(onceScope);
    expect(before.size).toBe(N);

    await restartEmpty();
    const held = await syncOnce(config);
    expect(held.code, held.log.slice(-2000)).toBe(4);
    expect(await uids(onceScope)).toEqual(before);
    expect(held.log).toContain('reading the sources again in 500ms');
    expect(held.log).toMatch(/would lose 5 of its 5 entries in one run: deletions held.*--allow-shrink/);
    expect(held.log).not.toContain('"action":"delete"');

    const accepted = await syncOnce(config, '--allow-shrink');
    expect(accepted.code, accepted.log.slice(-2000)).toBe(0);
    expect((await uids(onceScope)).size).toBe(0);
  }, 300_000);
});
