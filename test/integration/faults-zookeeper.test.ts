/**
 * Fault scenarios with ZooKeeper as the registry, each on the bridge's built binary (continuous
 * mode) against the harness's kube-apiserver and a ZooKeeper of the test's own (other port, own
 * data directory: the shared one is never killed). Each prints its convergence figures
 * (`[fault] …` lines) and ends with the invariants: every expected entry present and correct,
 * the foreign object untouched, no secret in the bridge's log, bounded RSS.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'node-zookeeper-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer, peer } from '../peers/endpoints.js';
import * as zookeeperPeer from '../peers/zookeeper.js';
import {
  BridgeProcess,
  KubeScope,
  bridgeYaml,
  finishScenario,
  freePort,
  kill9Peer,
  learnHosts,
  providerZnode,
  report,
  waitUntil,
  zkConnect,
  zkCreateAll,
  zkRemoveAll,
  zookeeperSource,
} from './faults-harness.js';

const suffix = randomBytes(3).toString('hex');
const IFACES = 20;
/** Services of the mass scenarios: 200 by default (CI), 1,000 with RB_FAULTS_LONG=1 (`npm run test:faults`). */
const MASS = process.env.RB_FAULTS_LONG === '1' ? 1000 : 200;
const MAX_RSS_MIB = 400;

/** Interface i: one provider at 10.77.<i/250>.<i%250+1>:20880. */
// Unique per run: the shared apiserver keeps every run's entries, and a host that an entry in
// another namespace declares is not written (src/plan/elsewhere.ts).
const iface = (i: number) => `org.faults.r${suffix}.S${i}Service`;
const address = (i: number) => `10.77.${Math.floor(i / 250)}.${(i % 250) + 1}`;
/** The host the bridge writes for interface i (Dubbo on ZooKeeper's default template). */
let hostOf: (i: number) => string;

describe.skipIf(!hasPeer('kube'))('faults: ZooKeeper (own instance), the bridge as a process', () => {
  let dir: string;
  let zkHandle: zookeeperPeer.ZooKeeperHandle;
  let writer: Client;
  let scope: KubeScope;
  let bridge: BridgeProcess;
  const foreign: { name: string; fingerprint: string }[] = [];
  const secrets: string[] = [];

  async function startZk(): Promise<void> {
    await mkdir(join(dir, 'zk', 'data'), { recursive: true });
    await zkHandle.start();
    writer?.close();
    writer = await zkConnect(zkHandle.endpoints.connect!);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-faults-zk-'));
    zkHandle = await zookeeperPeer.start({ dataDir: join(dir, 'zk'), port: await freePort(), tickTime: 500 });
    writer = await zkConnect(zkHandle.endpoints.connect!);
    await zkCreateAll(
      writer,
      Array.from({ length: IFACES }, (_, i) => providerZnode(iface(i), address(i), 20880)),
    );
    scope = new KubeScope(peer('kube').kubeconfig, `rb-faults-zk-${suffix}`);
    await scope.create();
    foreign.push({ name: 'foreign', fingerprint: await scope.createForeign('foreign', 'foreign.example.com') });
    secrets.push(peer('kube').token);
    const config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      bridgeYaml({
        source: zookeeperSource(zkHandle.endpoints.connect!, ['  roots: ["/dubbo"]']),
        namespace: scope.namespace,
        kubeconfig: peer('kube').kubeconfig,
        // Every service dropping to zero at once (the mass scenario) is a sharp shrink: its
        // deletions wait for this confirmation window (policy.shrinkHold), then go through.
        extra: ['policy: { shrinkHold: { confirmFor: 5s } }'],
      }),
    );
    bridge = new BridgeProcess(config, join(dir, 'bridge.log'));
    const t0 = Date.now();
    await bridge.start();
    await waitUntil(async () => (await scope.owned()).size === IFACES, `${IFACES} entries`, 60_000);
    hostOf = await learnHosts(scope, IFACES, address, (i) => `S${i}Service`);
    report('zookeeper initial sync', { services: IFACES, convergedMs: Date.now() - t0 });
  }, 180_000);

  afterAll(async () => {
    await bridge?.stop();
    writer?.close();
    await zkHandle?.stop();
    await scope?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A scenario's end: its invariants on the bridge's entries (`expected`), its figures. */
  const finish = (scenario: string, expected: Map<string, string[]>, figures: Record<string, number>) =>
    finishScenario(scenario, { scope, bridge, expected, foreign, secrets, maxRssMiB: MAX_RSS_MIB }, figures);

  const expected = (n: number, extra: [string, string[]][] = []) =>
    new Map<string, string[]>([
      ...Array.from({ length: n }, (_, i) => [hostOf(i), [address(i)]] as [string, string[]]),
      ...extra,
    ]);

  it('ZooKeeper kill -9, restarted with its data: nothing deleted meanwhile, changes flow again', async () => {
    expect(await bridge.metric('registry_bridge_source_up', 'source="zk"')).toBe(1);
    await kill9Peer(zkHandle.pid);
    const killedAt = Date.now();
    // The source goes down; for longer than a session timeout and two relists nothing is deleted.
    const downMs = await waitUntil(
      async () => (await bridge.metric('registry_bridge_source_up', 'source="zk"')) === 0,
      'the source reported down',
      30_000,
    );
    await new Promise((r) => setTimeout(r, 10_000 - (Date.now() - killedAt)));
    expect((await scope.owned()).size).toBe(IFACES);
    expect(bridge.alive).toBe(true);

    await startZk();
    const upAt = Date.now();
    await waitUntil(
      async () => (await bridge.metric('registry_bridge_source_up', 'source="zk"')) === 1,
      'the source back up',
      60_000,
    );
    const sourceUpMs = Date.now() - upAt;
    // A change made after the restart reaches kube.
    await zkCreateAll(writer, [providerZnode(iface(0), '10.77.9.9', 20880)]);
    const changeAt = Date.now();
    await waitUntil(
      async () => (await scope.owned()).get(hostOf(0))?.includes('10.77.9.9') === true,
      'the change after the restart',
      60_000,
    );
    const changeMs = Date.now() - changeAt;
    await zkRemoveAll(writer, [providerZnode(iface(0), '10.77.9.9', 20880)]);
    await waitUntil(async () => (await scope.owned()).get(hostOf(0))?.length === 1, 'the change undone', 60_000);
    await finish('zookeeper kill -9 + restart with data', expected(IFACES), {
      sourceDownDetectedMs: downMs,
      sourceUpAfterRestartMs: sourceUpMs,
      changeAfterRestartMs: changeMs,
      deletedDuringOutage: 0,
    });
  }, 180_000);

  it('ZooKeeper kill -9, restarted empty: a missing root is not an empty registry, nothing is deleted while it is missing', async () => {
    const before = await scope.owned();
    await kill9Peer(zkHandle.pid);
    await rm(join(dir, 'zk', 'data'), { recursive: true, force: true });
    await startZk();
    const upAt = Date.now();
    // Connected again, but /dubbo is gone: the source reads as unavailable, deletions stay fenced.
    const detectedMs = await waitUntil(
      async () => /root \/dubbo does not exist/.test(bridge.logText().slice(-200_000)),
      'the missing root reported',
      30_000,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - upAt))));
    expect(await bridge.metric('registry_bridge_source_up', 'source="zk"')).toBe(0);
    expect(await scope.owned()).toEqual(before);
    // The providers register again (as Dubbo does on reconnect): the source is up, all is as before.
    await zkCreateAll(
      writer,
      Array.from({ length: IFACES }, (_, i) => providerZnode(iface(i), address(i), 20880)),
    );
    const reRegisteredAt = Date.now();
    await waitUntil(
      async () => (await bridge.metric('registry_bridge_source_up', 'source="zk"')) === 1,
      'the source back up',
      60_000,
    );
    const recoveredMs = Date.now() - reRegisteredAt;
    // The root can reappear a moment before every provider has: a full run in that moment reads
    // a registry that answers and lists fewer services. Its deletions are held as a sharp shrink
    // (policy.shrinkHold; shrink-hold.test.ts tests it) unless that run sees only a few missing
    // and the providers' entries then come back. Counted.
    await waitUntil(async () => (await scope.owned()).size === IFACES, 'every entry back', 30_000);
    const deletedOnReRegistration = bridge
      .logText()
      .split('\n')
      .filter(
        (l) => l.includes('"action":"delete"') && Date.parse(JSON.parse(l).time as string) >= reRegisteredAt - 1000,
      ).length;
    await finish('zookeeper kill -9 + restart empty', expected(IFACES), {
      missingRootReportedMs: detectedMs,
      deletedWhileEmpty: 0,
      upAfterReRegistrationMs: recoveredMs,
      deletedOnReRegistration,
    });
  }, 180_000);

  it(`${MASS} services: the bridge killed -9 mid-apply and restarted (no orphan, no duplicate), then all drop to zero instances at once`, async () => {
    const N = MASS;
    const paths = Array.from({ length: N }, (_, i) => providerZnode(iface(i), address(i), 20880)).slice(IFACES);
    const t0 = Date.now();
    await zkCreateAll(writer, paths);
    // Killed once about a third is applied (writes go at the sink's 50/s).
    await waitUntil(async () => (await scope.owned()).size >= Math.floor(N / 3), 'a third applied', 120_000);
    await bridge.kill9();
    const killedWith = (await scope.owned()).size;
    expect(killedWith).toBeLessThan(N);
    const restartAt = Date.now();
    await bridge.start();
    await waitUntil(async () => (await scope.owned()).size === N, `${N} entries`, 180_000);
    const convergedMs = Date.now() - restartAt;
    const all = await scope.list('app.kubernetes.io/managed-by=registry-bridge');
    // No duplicate: one object per host; no orphan: every object is an expected host.
    const hosts = all.flatMap((o) => o.spec.hosts ?? []);
    expect(all).toHaveLength(N);
    expect(new Set(hosts).size).toBe(N);
    await finish(`bridge kill -9 mid-apply (${N} services)`, expected(N), {
      appliedBeforeKill: killedWith,
      convergedAfterRestartMs: convergedMs,
      totalMs: Date.now() - t0,
      objects: all.length,
    });

    const allPaths = Array.from({ length: N }, (_, i) => providerZnode(iface(i), address(i), 20880));
    const logFrom = bridge.logText().length;
    await zkRemoveAll(writer, allPaths);
    const dropAt = Date.now();
    let firstDeleteMs: number | undefined;
    await waitUntil(
      async () => {
        const size = (await scope.owned()).size;
        if (size < N && firstDeleteMs === undefined) firstDeleteMs = Date.now() - dropAt;
        return size === 0;
      },
      'every entry of a service without instances removed',
      120_000,
    );
    // Every service losing its instances at once is a sharp shrink (policy.shrinkHold): held,
    // then deleted once it persisted for the confirmation window. The adapter sees the 200
    // removals one watch event at a time, so a full run in between may see fewer gone and delete
    // them as an ordinary run would; how many runs held deletions is a figure, not asserted.
    const after = bridge.logText().slice(logFrom);
    const heldRuns = after.match(/entries in one run: deletions held/g)?.length ?? 0;
    const confirmed = after.includes('source \\"zk\\" shrank sharply and stayed so for 5s') ? 1 : 0;
    await finish(`${N} services drop to zero instances at once`, new Map(), {
      firstDeleteMs: firstDeleteMs ?? 0,
      allRemovedMs: Date.now() - dropAt,
      maxDeletesPerRun: 100,
      runsHoldingDeletions: heldRuns,
      shrinkConfirmed: confirmed,
    });
  }, 600_000);

  it('one instance flapping every 50 ms for 5 s: writes bounded by the debounce window, the final state right', async () => {
    const flap = providerZnode(iface(0), '10.78.0.1', 20880);
    const stable = providerZnode(iface(0), address(0), 20880);
    await zkCreateAll(writer, [stable]);
    await waitUntil(async () => (await scope.owned()).get(hostOf(0))?.length === 1, 'the stable provider', 60_000);
    const writesBefore = (await bridge.metric('registry_bridge_api_writes_total')) ?? 0;
    const flapMs = 5000;
    const start = Date.now();
    let toggles = 0;
    while (Date.now() - start < flapMs) {
      if (toggles % 2 === 0) await zkCreateAll(writer, [flap]);
      else await zkRemoveAll(writer, [flap]);
      toggles++;
      await new Promise((r) => setTimeout(r, 50));
    }
    const elapsed = Date.now() - start;
    // Ends registered (odd toggles) or not: the entry converges to what ZooKeeper holds.
    const flapRegistered = toggles % 2 === 1;
    const want = flapRegistered ? [address(0), '10.78.0.1'].sort() : [address(0)];
    const settleMs = await waitUntil(
      async () => JSON.stringify((await scope.owned()).get(hostOf(0))) === JSON.stringify(want),
      'the final state of the flapping service',
      60_000,
    );
    const writes = ((await bridge.metric('registry_bridge_api_writes_total')) ?? 0) - writesBefore;
    // At most one write per debounce window (100 ms) while it flaps, plus the settling ones.
    expect(writes).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 3);
    await finish('one instance flapping every 50 ms', new Map([[hostOf(0), want]]), {
      toggles,
      flapMs: elapsed,
      apiWrites: writes,
      settleMs,
    });
  }, 180_000);
});
