/**
 * Fault scenario: two replicas with leader election, the leader killed. Two processes of the
 * built binary (`sync`, `leaderElection.enabled`, short lease timings) share one configuration:
 * a kube-apiserver and etcd of the test's own (the namespace holds the Lease too; nothing else
 * on the machine restarting the shared apiserver can change what the test sees) and the shared
 * ZooKeeper under a chroot of the test's own. Checked: only the Lease holder writes;
 * after `kill -9` of the leader the standby takes the Lease once it expires and brings a change
 * made during the hand-over to kube; a graceful SIGTERM releases the Lease so the standby takes
 * over without waiting for it to expire; no entry is ever deleted, duplicated or orphaned.
 * Then, on a kube-apiserver (and etcd) of the test's own: a leader whose API server stops
 * answering (frozen with SIGSTOP, then killed) gives up once `renewDeadline` passes and exits 1.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, Watch } from '@kubernetes/client-node';
import type { Client } from 'node-zookeeper-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer, peer } from '../peers/endpoints.js';
import {
  BridgeProcess,
  GROUP,
  KubeScope,
  type OwnKube,
  VERSION,
  bridgeYaml,
  cb,
  finishScenario,
  kill9Peer,
  learnHosts,
  ownKube,
  providerZnode,
  report,
  staticSource,
  waitUntil,
  zkConnect,
  zkCreateAll,
  zkRemoveAll,
  zookeeperSource,
} from './faults-harness.js';

const suffix = randomBytes(3).toString('hex');
const CHROOT = `/rb-faults-leader-${suffix}`;
const SERVICES = 6;
const LEASE = 'registry-bridge';
const MAX_RSS_MIB = 400;

/** Interface i: providers at 10.78.<i>.<k+1>:20880. */
// Unique per run: the shared apiserver keeps every run's entries, and a host that an entry in
// another namespace declares is not written (src/plan/elsewhere.ts).
const iface = (i: number) => `org.faults.leader.r${suffix}.L${i}Service`;
const address = (i: number, k = 0) => `10.78.${i}.${k + 1}`;

/** Leader election with short lease timings, the Lease in `namespace` (`more`: further settings). */
const leaderElection = (namespace: string, more: string[] = []) => [
  'leaderElection:',
  '  enabled: true',
  `  namespace: ${namespace}`,
  ...more,
  '  leaseDuration: 6s',
  '  renewDeadline: 4s',
  '  retryPeriod: 1s',
];

/** The sum of every series of a metric in a Prometheus text body. */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

/** The decisions about objects (create/update/delete) a replica logged. */
function writeDecisions(log: string): { action: string; host?: string }[] {
  const out: { action: string; host?: string }[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line) as { action?: string; host?: string; msg?: string };
    if (o.msg === o.action && (o.action === 'create' || o.action === 'update' || o.action === 'delete'))
      out.push({ action: o.action, ...(o.host ? { host: o.host } : {}) });
  }
  return out;
}

async function removeRecursive(c: Client, path: string): Promise<void> {
  const children = await cb<string[]>((d) => c.getChildren(path, d)).catch(() => [] as string[]);
  for (const ch of children) await removeRecursive(c, `${path}/${ch}`);
  await cb<void>((d) => c.remove(path, -1, d)).catch(() => {});
}

describe.skipIf(!hasPeer('kube') || !hasPeer('zookeeper'))(
  'faults: two replicas, the leader killed (leader election), the bridge as processes',
  () => {
    let dir: string;
    let root: Client;
    let writer: Client;
    let scope: KubeScope;
    let config: string;
    const replicas = new Map<string, BridgeProcess>();
    const foreign: { name: string; fingerprint: string }[] = [];
    /** Every ServiceEntry deleted in the namespace while the test runs (from a watch). */
    const deleted: string[] = [];
    let stopWatch: (() => void) | undefined;
    let hostOf: (i: number) => string;
    let leases: CoordinationV1Api;
    let own: OwnKube | undefined;
    let token: string;

    const replica = (name: string) => {
      const b = new BridgeProcess(config, join(dir, `${name}.log`), { POD_NAME: name });
      replicas.set(name, b);
      return b;
    };

    async function holder(): Promise<string | undefined> {
      const lease = await leases
        .readNamespacedLease({ name: LEASE, namespace: scope.namespace })
        .catch(() => undefined);
      return lease?.spec?.holderIdentity ?? undefined;
    }

    async function total(b: BridgeProcess, metric: string): Promise<number> {
      return metricSum(await (await fetch(`http://127.0.0.1:${b.port}/metrics`)).text(), metric);
    }
    const writes = (b: BridgeProcess) => total(b, 'registry_bridge_api_writes_total');

    /** Every expected host present with its endpoints, and one object per host (no duplicate). */
    async function converged(expected: Map<string, string[]>): Promise<boolean> {
      const items = await scope.list('app.kubernetes.io/managed-by=registry-bridge');
      const hosts = items.flatMap((o) => o.spec.hosts ?? []);
      if (hosts.length !== new Set(hosts).size || hosts.length !== expected.size) return false;
      const owned = await scope.owned();
      return [...expected].every(([h, a]) => JSON.stringify(owned.get(h)) === JSON.stringify(a));
    }

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rb-faults-leader-'));
      const connect = peer('zookeeper').connect;
      root = await zkConnect(connect);
      await cb<string>((d) => root.mkdirp(CHROOT, d));
      writer = await zkConnect(`${connect}${CHROOT}`);
      await zkCreateAll(
        writer,
        Array.from({ length: SERVICES }, (_, i) => providerZnode(iface(i), address(i), 20880)),
      );
      own = await ownKube(dir);
      const kubeconfig = own.kubeconfig;
      token = own.token;
      scope = new KubeScope(kubeconfig, `rb-faults-leader-${suffix}`);
      leases = scope.kc.makeApiClient(CoordinationV1Api);
      await scope.create();
      foreign.push({ name: 'foreign', fingerprint: await scope.createForeign('foreign', 'foreign.example.com') });
      const watch = await new Watch(scope.kc).watch(
        `/apis/${GROUP}/${VERSION}/namespaces/${scope.namespace}/serviceentries`,
        {},
        (phase, obj: { metadata?: { name?: string } }) => {
          if (phase === 'DELETED') deleted.push(obj.metadata?.name ?? '?');
        },
        () => {},
      );
      stopWatch = () => watch.abort();
      config = join(dir, 'bridge.yaml');
      await writeFile(
        config,
        bridgeYaml({
          source: zookeeperSource(`${connect}${CHROOT}`, ['  layout: dubbo']),
          namespace: scope.namespace,
          kubeconfig,
          extra: leaderElection(scope.namespace, [`  name: ${LEASE}`]),
        }),
      );
    }, 600_000);

    afterAll(async () => {
      stopWatch?.();
      for (const b of replicas.values()) await b.stop();
      writer?.close();
      if (root) {
        await removeRecursive(root, CHROOT);
        root.close();
      }
      await scope?.remove();
      await own?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const expected = (extra: [string, string[]][] = []) =>
      new Map<string, string[]>([
        ...Array.from({ length: SERVICES }, (_, i) => [hostOf(i), [address(i)]] as [string, string[]]),
        ...extra,
      ]);

    it('only the leader writes; kill -9 of the leader: the standby takes the Lease after it expires and converges', async () => {
      const a = replica('replica-a');
      await a.start();
      await waitUntil(async () => (await holder()) === 'replica-a', 'replica-a holding the Lease', 60_000);
      await waitUntil(async () => (await scope.owned()).size === SERVICES, `${SERVICES} entries`, 60_000);
      hostOf = await learnHosts(scope, SERVICES, address, (i) => `L${i}Service`);

      const b = replica('replica-b');
      await b.start();
      await waitUntil(async () => b.logText().includes('waiting for the lease'), 'replica-b standing by', 30_000);
      // A change while replica-a leads: written by it alone.
      await zkCreateAll(writer, [providerZnode(iface(0), address(0, 1), 20880)]);
      const ex1 = expected([[hostOf(0), [address(0), address(0, 1)]]]);
      await waitUntil(() => converged(ex1), 'the change written by the leader', 30_000);
      // Two more runs of the leader (resync every 5 s): a standby that wrote anything would show it by now.
      const runs = await total(a, 'registry_bridge_reconcile_runs_total');
      await waitUntil(
        async () => (await total(a, 'registry_bridge_reconcile_runs_total')) >= runs + 2,
        'two more runs of the leader',
        60_000,
      );
      expect(await writes(a)).toBeGreaterThan(0);
      expect(await writes(b)).toBe(0);
      expect(writeDecisions(a.logText()).length).toBeGreaterThan(0);
      expect(writeDecisions(b.logText())).toEqual([]);
      expect((await fetch(`http://127.0.0.1:${b.port}/readyz`)).status).toBe(200);
      expect(await holder()).toBe('replica-a');

      // kill -9 of the leader, and a change during the hand-over: a new service, a new instance.
      await a.kill9();
      const killedAt = Date.now();
      await zkCreateAll(writer, [
        providerZnode(iface(SERVICES), address(SERVICES), 20880),
        providerZnode(iface(1), address(1, 1), 20880),
      ]);
      const takeoverMs = await waitUntil(
        async () => (await holder()) === 'replica-b',
        'replica-b taking the Lease',
        60_000,
      );
      const ex2 = expected([
        [hostOf(0), [address(0), address(0, 1)]],
        [hostOf(1), [address(1), address(1, 1)]],
        [hostOf(SERVICES), [address(SERVICES)]],
      ]);
      await waitUntil(() => converged(ex2), 'the hand-over change in kube', 60_000);
      const convergedMs = Date.now() - killedAt;
      expect(b.logText()).toMatch(/"identity":"replica-b"[^\n]*became leader/);
      expect(deleted).toEqual([]);
      expect(writeDecisions(b.logText()).filter((d) => d.action === 'delete')).toEqual([]);
      await finishScenario(
        'leader kill -9',
        { scope, bridge: b, expected: ex2, foreign, secrets: [token], maxRssMiB: MAX_RSS_MIB },
        { leaseDurationMs: 6000, takeoverMs, convergedMs },
      );
    }, 240_000);

    it('SIGTERM of the leader releases the Lease: the standby takes over without waiting for it to expire', async () => {
      const b = replicas.get('replica-b')!;
      const a = replica('replica-a');
      await a.start();
      await waitUntil(async () => a.logText().includes('waiting for the lease'), 'replica-a standing by', 30_000);
      expect(await holder()).toBe('replica-b');

      const termAt = Date.now();
      expect(await b.stop()).toBe(0);
      // Released on the way out: nobody holds it, or replica-a already took it. Without the
      // release replica-b would hold it until it expires (leaseDuration after the last renewal).
      expect([undefined, 'replica-a']).toContain(await holder());
      await waitUntil(async () => (await holder()) === 'replica-a', 'replica-a taking the Lease', 60_000);
      const takeoverMs = Date.now() - termAt;
      expect(b.logText()).toContain('shut down gracefully');
      // A change after the hand-over reaches kube through the new leader.
      await zkRemoveAll(writer, [providerZnode(iface(1), address(1, 1), 20880)]);
      const ex = expected([
        [hostOf(0), [address(0), address(0, 1)]],
        [hostOf(SERVICES), [address(SERVICES)]],
      ]);
      await waitUntil(() => converged(ex), 'the change after the hand-over in kube', 60_000);
      const convergedMs = Date.now() - termAt;
      expect(deleted).toEqual([]);
      await finishScenario(
        'leader SIGTERM',
        { scope, bridge: a, expected: ex, foreign, secrets: [token], maxRssMiB: MAX_RSS_MIB },
        { leaseDurationMs: 6000, takeoverMs, convergedMs },
      );
    }, 240_000);
  },
);

describe.skipIf(!hasPeer('kube'))('faults: the leader loses its kube-apiserver (own etcd and apiserver)', () => {
  let dir: string;
  let own: OwnKube | undefined;
  let scope: KubeScope;
  let config: string;
  const bridges: BridgeProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-faults-leader-api-'));
    own = await ownKube(dir);
    scope = new KubeScope(own.kubeconfig, 'rb-faults-leader');
    await scope.create();
    const registry = join(dir, 'registry.json');
    await writeFile(
      registry,
      JSON.stringify({
        services: [{ name: 'alpha', protocol: 'http', instances: [{ address: '10.79.0.1', port: 8080 }] }],
      }),
    );
    config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      bridgeYaml({
        source: staticSource(registry),
        namespace: scope.namespace,
        kubeconfig: own.kubeconfig,
        extra: leaderElection(scope.namespace),
      }),
    );
  }, 600_000);

  afterAll(async () => {
    for (const b of bridges) await b.stop();
    await own?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A leader with its entry written; resolves with the process. */
  async function leader(name: string): Promise<BridgeProcess> {
    const b = new BridgeProcess(config, join(dir, `${name}.log`), { POD_NAME: name });
    bridges.push(b);
    await b.start();
    await waitUntil(async () => /became leader/.test(b.logText()), `${name} leading`, 60_000);
    await waitUntil(async () => (await scope.owned()).size === 1, 'the entry in kube', 60_000);
    return b;
  }

  async function exitAfterLoss(b: BridgeProcess, what: string): Promise<number> {
    const t0 = Date.now();
    await waitUntil(async () => !b.alive, `the leader exiting after ${what}`, 60_000);
    const exitMs = Date.now() - t0;
    expect(await b.stop()).toBe(1);
    expect(b.logText()).toContain('lease renewal deadline passed');
    expect(b.logText()).toContain('leadership lost: stopped writing, exiting');
    return exitMs;
  }

  it('the apiserver frozen (SIGSTOP): the leader gives up at renewDeadline and exits 1', async () => {
    const b = await leader('replica-x');
    process.kill(-own!.api.pid, 'SIGSTOP');
    let exitMs: number;
    try {
      exitMs = await exitAfterLoss(b, 'the apiserver froze');
    } finally {
      process.kill(-own!.api.pid, 'SIGCONT');
    }
    report('leader, apiserver frozen', { renewDeadlineMs: 4000, exitMs });
  }, 180_000);

  it('the apiserver killed (kill -9): the leader gives up at renewDeadline and exits 1', async () => {
    const b = await leader('replica-y');
    await kill9Peer(own!.api.pid);
    const exitMs = await exitAfterLoss(b, 'the apiserver was killed');
    report('leader, apiserver killed', { renewDeadlineMs: 4000, exitMs });
  }, 180_000);
});
