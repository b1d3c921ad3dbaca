/**
 * Fault scenarios on the kube side, each on the bridge's built binary (continuous mode) against a
 * kube-apiserver and an etcd of the test's own (other ports, own data: the shared ones are never
 * touched), with a static file as the registry (the registry is not the point here): the
 * apiserver killed -9 mid-apply and restarted, etcd killed -9 and restarted with its data, the
 * apiserver throttling the bridge (429, API Priority and Fairness), and a concurrent writer of
 * the same ServiceEntries. Each prints its figures (`[fault] …`) and ends with the invariants.
 *
 * The bridge authenticates as its own user (`rb-bridge`, bound to a ClusterRole for
 * ServiceEntries), not as system:masters, which Priority and Fairness exempts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer } from '../peers/endpoints.js';
import {
  BridgeProcess,
  GROUP,
  KubeScope,
  type OwnKube,
  VERSION,
  bridgeYaml,
  finishScenario,
  kill9Peer,
  ownKube,
  staticSource,
  waitUntil,
  type ServiceEntryObject,
} from './faults-harness.js';

const suffix = randomBytes(3).toString('hex');
const LONG = process.env.RB_FAULTS_LONG === '1';
/** Services of the apply scenarios: 300 by default (CI), 1,000 with RB_FAULTS_LONG=1. */
const MASS = LONG ? 1000 : 300;
const MAX_RSS_MIB = 400;
const BRIDGE_USER = 'rb-bridge';
const THROTTLED_LEVEL = `rb-throttled-${suffix}`;

const hostOf = (name: string) => `${name}.faults-kube.test`;
/** Service i of a scenario: one instance at 10.66.<i/250>.<i%250+1>:8080. */
const addressOf = (i: number) => `10.66.${Math.floor(i / 250)}.${(i % 250) + 1}`;

interface StaticService {
  name: string;
  address: string;
}

const registryJson = (services: StaticService[]) =>
  JSON.stringify({
    services: services.map((s) => ({
      name: s.name,
      host: hostOf(s.name),
      protocol: 'http',
      instances: [{ address: s.address, port: 8080 }],
    })),
  });

const servicesOf = (prefix: string, n: number, from = 0): StaticService[] =>
  Array.from({ length: n - from }, (_, k) => ({ name: `${prefix}${k + from}`, address: addressOf(k + from) }));

const expectedOf = (services: StaticService[]) =>
  new Map(services.map((s) => [hostOf(s.name), [s.address]] as [string, string[]]));

describe.skipIf(!hasPeer('kube'))('faults: kube-apiserver and etcd (own instances), the bridge as a process', () => {
  let dir: string;
  let own: OwnKube;
  let adminKubeconfig: string;
  let bridgeKubeconfig: string;
  let adminToken: string;
  const bridgeToken = randomBytes(24).toString('hex');
  const bridges: BridgeProcess[] = [];
  const scopes: KubeScope[] = [];

  /** GET of a path of the own apiserver as admin (its /metrics). */
  async function apiserverGet(path: string): Promise<string> {
    const ca = await readFile(join(dir, 'kube', 'pki', 'ca.crt'));
    const server = own.api.endpoints.server!;
    return new Promise((resolve, reject) => {
      https
        .get(`${server}${path}`, { ca, headers: { authorization: `Bearer ${adminToken}` } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  }

  /** Sum of an apiserver metric's series whose labels include `labelPart`. */
  async function apiserverMetricSum(name: string, labelPart: string): Promise<number> {
    const text = await apiserverGet('/metrics');
    let sum = 0;
    for (const line of text.split('\n'))
      if (line.startsWith(`${name}{`) && line.includes(labelPart)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    return sum;
  }

  function objects(): KubernetesObjectApi {
    return KubernetesObjectApi.makeApiClient(new KubeScope(adminKubeconfig, 'default').kc);
  }

  async function scenario(name: string, services: StaticService[], sink: Record<string, number> = {}) {
    const scope = new KubeScope(adminKubeconfig, `rb-fk-${name}-${suffix}`);
    scopes.push(scope);
    await scope.create();
    const foreign = [{ name: 'foreign', fingerprint: await scope.createForeign('foreign', 'foreign.example.com') }];
    const registry = join(dir, `${name}.json`);
    await writeFile(registry, registryJson(services));
    const config = join(dir, `${name}.yaml`);
    const sinkExtra = Object.entries(sink)
      .map(([k, v]) => `, ${k}: ${v}`)
      .join('');
    await writeFile(
      config,
      bridgeYaml({
        source: staticSource(registry),
        namespace: scope.namespace,
        kubeconfig: bridgeKubeconfig,
        sink: sinkExtra,
      }),
    );
    const bridge = new BridgeProcess(config, join(dir, `${name}-bridge.log`));
    bridges.push(bridge);
    await bridge.start();
    await waitUntil(
      async () => (await scope.owned()).size === services.length,
      `${services.length} entries of ${name}`,
      60_000,
    );
    const setServices = (next: StaticService[]) => writeFile(registry, registryJson(next));
    /** The scenario's end: its invariants, its figures, the bridge stopped. */
    const finish = async (title: string, expected: Map<string, string[]>, figures: Record<string, number>) => {
      await finishScenario(
        title,
        { scope, bridge, expected, foreign, secrets: [adminToken, bridgeToken], maxRssMiB: MAX_RSS_MIB },
        figures,
      );
      await bridge.stop();
    };
    return { scope, foreign, bridge, setServices, finish };
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-faults-kube-'));
    // The admin (first line, system:masters) and the bridge's own user.
    adminToken = randomBytes(24).toString('hex');
    await mkdir(join(dir, 'kube', 'pki'), { recursive: true });
    await writeFile(
      join(dir, 'kube', 'pki', 'tokens.csv'),
      `${adminToken},admin,admin-uid,"system:masters"\n${bridgeToken},${BRIDGE_USER},${BRIDGE_USER}-uid,"rb-bridges"\n`,
      { mode: 0o600 },
    );
    own = await ownKube(dir, {
      // Priority and Fairness on (the harness's default is off), with a small server-wide
      // concurrency so that a priority level of one share gets a single seat.
      extraArgs: [
        '--enable-priority-and-fairness=true',
        '--max-requests-inflight=20',
        '--max-mutating-requests-inflight=10',
      ],
    });
    adminKubeconfig = own.kubeconfig;
    bridgeKubeconfig = join(dir, 'bridge-kubeconfig');
    await writeFile(
      bridgeKubeconfig,
      (await readFile(adminKubeconfig, 'utf8')).replace(`token: ${adminToken}`, `token: ${bridgeToken}`),
      { mode: 0o600 },
    );
    const api = objects();
    await api.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'rb-bridge' },
      rules: [{ apiGroups: [GROUP], resources: ['serviceentries'], verbs: ['*'] }],
    } as KubernetesObject);
    await api.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'rb-bridge' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'rb-bridge' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: BRIDGE_USER }],
    } as KubernetesObject);
  }, 300_000);

  afterAll(async () => {
    for (const b of bridges) await b.stop();
    await own?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** One object per host, each host a published service (no duplicate, no orphan). */
  async function expectOneObjectPerHost(scope: KubeScope, expected: Map<string, string[]>): Promise<void> {
    const owned = await scope.list('app.kubernetes.io/managed-by=registry-bridge');
    const hosts = owned.flatMap((o) => o.spec.hosts ?? []);
    expect(hosts.length).toBe(new Set(hosts).size);
    expect(owned.length).toBe(expected.size);
    for (const h of hosts) expect(expected.has(h), `orphan ${h}`).toBe(true);
  }

  /**
   * The bridge's entries, or undefined while a restarted apiserver cannot answer the test's own
   * list yet (429 `storage is (re)initializing`, 5xx, connection refused): not converged yet.
   */
  async function ownedWhenServed(scope: KubeScope): Promise<Map<string, string[]> | undefined> {
    try {
      return await scope.owned();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number' && code !== 429 && code < 500) throw err;
      return undefined;
    }
  }

  /** Every expected entry present with its address, and nothing else of the bridge's. */
  const convergedTo = async (scope: KubeScope, expected: Map<string, string[]>) => {
    const owned = await ownedWhenServed(scope);
    return (
      owned !== undefined && owned.size === expected.size && [...expected].every(([h, a]) => owned.get(h)?.[0] === a[0])
    );
  };

  const uidsOf = async (scope: KubeScope) =>
    new Map(
      (await scope.list('app.kubernetes.io/managed-by=registry-bridge')).map(
        (o) => [o.metadata.name, (o.metadata as { uid?: string }).uid ?? ''] as [string, string],
      ),
    );

  it(`kube-apiserver killed -9 mid-apply of ${MASS} services, restarted on the same port and etcd: converges, no duplicate, no orphan, no crash`, async () => {
    const { scope, bridge, setServices, finish } = await scenario('apiserver', servicesOf('a', 1));
    const failedBefore = (await bridge.metric('registry_bridge_reconcile_runs_total', 'result="failed"')) ?? 0;
    const all = servicesOf('a', MASS);
    await setServices(all);
    // Killed once about a third is applied (writes go at the sink's 50/s).
    await waitUntil(async () => (await scope.owned()).size >= Math.floor(MASS / 3), 'a third applied', 120_000);
    const appliedAtKill = (await scope.owned()).size;
    await kill9Peer(own.api.pid);
    const killedAt = Date.now();
    // Writes fail (counted at once); the process lives on and /readyz stays 200 (ready after the
    // first successful reconcile, as documented). Restarted while the apply is still under way.
    await waitUntil(
      async () => ((await bridge.metric('registry_bridge_api_writes_total', 'verb="patch",code="error"')) ?? 0) > 0,
      'a failed write counted while the apiserver is down',
      60_000,
    );
    expect((await fetch(`http://127.0.0.1:${bridge.port}/readyz`)).status).toBe(200);
    expect(bridge.alive).toBe(true);
    const downMs = Date.now() - killedAt;
    const restartAt = Date.now();
    await own.startKube();
    const backAt = Date.now();
    const expected = expectedOf(all);
    await waitUntil(() => convergedTo(scope, expected), `${MASS} entries after the apiserver is back`, 180_000);
    const convergedMs = Date.now() - backAt;
    await expectOneObjectPerHost(scope, expected);
    expect(bridge.alive).toBe(true);
    // The run that lost its writes is counted as failed and names each failed write.
    await waitUntil(
      async () =>
        ((await bridge.metric('registry_bridge_reconcile_runs_total', 'result="failed"')) ?? 0) > failedBefore,
      'the failed run counted',
      60_000,
    );
    expect(bridge.logText()).toMatch(/"msg":"write failed"/);
    const failedWrites = (await bridge.metric('registry_bridge_api_writes_total', 'verb="patch",code="error"')) ?? 0;
    const failedRuns =
      ((await bridge.metric('registry_bridge_reconcile_runs_total', 'result="failed"')) ?? 0) - failedBefore;
    await finish('kube-apiserver kill -9 mid-apply', expected, {
      services: MASS,
      appliedAtKill,
      apiserverDownMs: downMs,
      failedWrites,
      failedRuns,
      apiserverRestartToReadyMs: backAt - restartAt,
      convergedAfterApiserverReadyMs: convergedMs,
    });
  }, 400_000);

  it('etcd killed -9 and restarted with its data, a change made meanwhile: converges, nothing deleted wrongly', async () => {
    const initial = servicesOf('e', 20);
    const { scope, bridge, setServices, finish } = await scenario('etcd', initial);
    const uidsBefore = await uidsOf(scope);
    await kill9Peer(own.etcd.pid);
    const killedAt = Date.now();
    // During the outage: one service gone, one with a new endpoint, one new.
    const next = [{ name: 'e1', address: '10.66.9.9' }, ...initial.slice(2), { name: 'e20', address: addressOf(20) }];
    await setServices(next);
    // The bridge's write of the change reaches the apiserver and waits there for its storage
    // (an apiserver answers a write only once etcd has, or after its request timeout, 60 s).
    // (The apiserver's own /metrics takes about 20 s to answer without etcd: the bridge's count
    // of writes in flight says it.)
    await waitUntil(
      async () => ((await bridge.metric('registry_bridge_write_queue_depth')) ?? 0) > 0,
      "the bridge's write waiting in the apiserver while etcd is down",
      60_000,
    );
    // An outage of 10 s (the scenario's length, as for ZooKeeper's): the bridge lives on, ready.
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - killedAt))));
    expect(bridge.alive).toBe(true);
    expect((await fetch(`http://127.0.0.1:${bridge.port}/readyz`)).status).toBe(200);
    const downMs = Date.now() - killedAt;
    await own.startEtcd();
    const backAt = Date.now();
    const expected = expectedOf(next);
    await waitUntil(() => convergedTo(scope, expected), 'the change in kube after etcd is back', 180_000);
    const convergedMs = Date.now() - backAt;
    // Nothing deleted wrongly: every kept entry is the same object as before (never deleted and
    // recreated), the changed one was updated in place, only the gone service's entry was deleted.
    const uidsAfter = await uidsOf(scope);
    for (const s of next.filter((s) => s.name !== 'e20'))
      expect(uidsAfter.get(hostOf(s.name)), s.name).toBe(uidsBefore.get(hostOf(s.name)));
    expect(uidsAfter.has(hostOf('e0'))).toBe(false);
    await expectOneObjectPerHost(scope, expected);
    await finish('etcd kill -9 + restart with data', expected, {
      services: initial.length,
      etcdDownMs: downMs,
      convergedAfterEtcdBackMs: convergedMs,
      keptEntriesRecreated: 0,
    });
  }, 400_000);

  it(`throttled (429, Priority and Fairness rejects the bridge's writes): backs off, retries, converges, no hot loop`, async () => {
    // Writes unthrottled on the bridge's side: the apiserver is what limits them.
    const { scope, bridge, setServices, finish } = await scenario('throttle', servicesOf('t', 1), {
      qps: 1000,
      concurrency: 16,
    });
    const api = objects();
    await api.create({
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'PriorityLevelConfiguration',
      metadata: { name: THROTTLED_LEVEL },
      spec: {
        type: 'Limited',
        limited: { nominalConcurrencyShares: 1, lendablePercent: 0, limitResponse: { type: 'Reject' } },
      },
    } as KubernetesObject);
    await api.create({
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'FlowSchema',
      metadata: { name: THROTTLED_LEVEL },
      spec: {
        priorityLevelConfiguration: { name: THROTTLED_LEVEL },
        matchingPrecedence: 500,
        distinguisherMethod: { type: 'ByUser' },
        rules: [
          {
            subjects: [{ kind: 'User', user: { name: BRIDGE_USER } }],
            resourceRules: [
              { verbs: ['*'], apiGroups: [GROUP], resources: ['serviceentries'], namespaces: [scope.namespace] },
            ],
          },
        ],
      },
    } as KubernetesObject);
    const rejected = () =>
      apiserverMetricSum('apiserver_flowcontrol_rejected_requests_total', `priority_level="${THROTTLED_LEVEL}"`);
    const dispatched = () =>
      apiserverMetricSum('apiserver_flowcontrol_dispatched_requests_total', `priority_level="${THROTTLED_LEVEL}"`);
    // The apiserver takes up the new objects within a second or so; a write of the bridge
    // through the new level shows it.
    await waitUntil(
      async () => {
        await setServices(servicesOf('t', 1).map((s) => ({ ...s, address: `10.66.8.${1 + (Date.now() % 200)}` })));
        await new Promise((r) => setTimeout(r, 300));
        return (await dispatched()) > 0;
      },
      'the throttled priority level in use',
      60_000,
    );
    const all = servicesOf('t', MASS);
    const rejectedBefore = await rejected();
    const t0 = Date.now();
    await setServices(all);
    const expected = expectedOf(all);
    await waitUntil(() => convergedTo(scope, expected), `${MASS} entries through the throttled level`, 300_000);
    const convergedMs = Date.now() - t0;
    const rejections = (await rejected()) - rejectedBefore;
    const requests = (await dispatched()) + rejections;
    // The throttling happened, and the bridge did not answer it with a storm of retries: each
    // write is tried a bounded number of times (one try plus the sink's retries per run), runs
    // back off after a failed one.
    expect(rejections).toBeGreaterThan(0);
    // The bridge counts them too, as writes tried again after a 429.
    const retried429 = (await bridge.metric('registry_bridge_api_retries_total', 'verb="patch",code="429"')) ?? 0;
    expect(retried429).toBeGreaterThan(0);
    expect(requests).toBeLessThan(MASS * 6);
    await expectOneObjectPerHost(scope, expected);
    expect(bridge.alive).toBe(true);
    await finish('kube-apiserver throttling (429)', expected, {
      services: MASS,
      rejected429: rejections,
      bridgeRetried429: retried429,
      requestsThroughLevel: requests,
      failedRuns: (await bridge.metric('registry_bridge_reconcile_runs_total', 'result="failed"')) ?? 0,
      convergedMs,
    });
    await api.delete({
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'FlowSchema',
      metadata: { name: THROTTLED_LEVEL },
    });
  }, 400_000);

  it(`a concurrent writer of the same ServiceEntries: owned ones converge, foreign ones (created first, or re-created) are reported and never overwritten`, async () => {
    const initial = servicesOf('w', 10);
    const { scope, foreign, bridge, setServices, finish } = await scenario('writer', initial);
    const api = objects();
    const se = (name: string, spec: Record<string, unknown>, labels: Record<string, string> = {}) =>
      ({
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'ServiceEntry',
        metadata: { name, namespace: scope.namespace, labels },
        spec,
      }) as KubernetesObject;
    const foreignSpec = (host: string) => ({
      hosts: [host],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      resolution: 'STATIC',
      endpoints: [{ address: '192.0.2.1' }],
    });

    // 1. Another field manager changes the endpoints the bridge sets (server-side apply with
    // force, and a plain update): the bridge takes its fields back.
    const w0 = hostOf('w0');
    await api.patch(
      se(w0, { endpoints: [{ address: '192.0.2.7' }] }),
      undefined,
      undefined,
      'someone-else',
      true,
      PatchStrategy.ServerSideApply,
    );
    const w1 = hostOf('w1');
    const current = (await api.read({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'ServiceEntry',
      metadata: { name: w1, namespace: scope.namespace },
    })) as unknown as ServiceEntryObject & KubernetesObject;
    await api.replace({
      ...current,
      spec: { ...current.spec, endpoints: [{ address: '192.0.2.8' }] },
    } as KubernetesObject);
    const editedAt = Date.now();
    await waitUntil(
      async () => {
        const owned = await scope.owned();
        return owned.get(w0)?.[0] === initial[0]!.address && owned.get(w1)?.[0] === initial[1]!.address;
      },
      'the edited entries repaired',
      60_000,
    );
    const repairedMs = Date.now() - editedAt;

    // 2. Another writer deletes an owned entry: the bridge creates it again.
    const w3 = hostOf('w3');
    const w3uid = (await uidsOf(scope)).get(w3);
    await api.delete(se(w3, {}));
    await waitUntil(
      async () => {
        const uid = (await uidsOf(scope)).get(w3);
        return uid !== undefined && uid !== w3uid;
      },
      'the deleted entry re-created',
      60_000,
    );

    // 3. While the bridge applies MASS new services (50/s), another writer creates objects of
    // the names of the last ones first: each is the other writer's, and stays as it wrote it.
    const all = servicesOf('w', MASS);
    const taken = all.slice(-10).map((s) => hostOf(s.name));
    await setServices(all);
    await waitUntil(async () => (await scope.owned()).size >= 40, 'the apply under way', 60_000);
    const ownedAtTake = await scope.owned();
    for (const h of taken) {
      expect(ownedAtTake.has(h), `${h} not applied yet`).toBe(false);
      await api.create(se(h, foreignSpec(h), { team: 'someone-else' }));
      foreign.push({ name: h, fingerprint: (await scope.fingerprintOf(h))! });
    }
    const expected = expectedOf(all.filter((s) => !taken.includes(hostOf(s.name))));
    await waitUntil(
      async () => {
        const owned = await scope.owned();
        return [...expected].every(([h, a]) => owned.get(h)?.[0] === a[0]);
      },
      "every entry that is the bridge's",
      180_000,
    );
    // The objects the other writer created first are as it wrote them.
    for (const f of foreign) expect(await scope.fingerprintOf(f.name), `foreign ${f.name}`).toBe(f.fingerprint);
    // Each foreign name is reported as a conflict (the plan's decision, logged per object).
    await waitUntil(
      async () => (await bridge.metric('registry_bridge_conflicts')) === taken.length,
      'the conflicts counted',
      60_000,
    );
    // 4. While the bridge updates every entry (a new endpoint each), another writer deletes the
    // last ones and creates its own objects of those names: each stays as the writer made it.
    const moved = all.map((s, i) => ({ ...s, address: `10.67.${Math.floor(i / 250)}.${(i % 250) + 1}` }));
    const replaced = moved.slice(-20, -10).map((s) => hostOf(s.name));
    await setServices(moved);
    await waitUntil(
      async () => [...(await scope.owned()).values()].filter((a) => a[0]?.startsWith('10.67.')).length >= 40,
      'the updates under way',
      60_000,
    );
    const ownedAtReplace = await scope.owned();
    for (const h of replaced) {
      expect(ownedAtReplace.get(h)?.[0], `${h} not updated yet`).toMatch(/^10\.66\./);
      await api.delete(se(h, {}));
      await api.create(se(h, foreignSpec(h), { team: 'someone-else' }));
      foreign.push({ name: h, fingerprint: (await scope.fingerprintOf(h))! });
    }
    const expectedMoved = expectedOf(moved.filter((s) => ![...taken, ...replaced].includes(hostOf(s.name))));
    await waitUntil(
      async () => {
        const owned = await scope.owned();
        return [...expectedMoved].every(([h, a]) => owned.get(h)?.[0] === a[0]);
      },
      "every entry that is the bridge's, updated",
      180_000,
    );
    for (const f of foreign) expect(await scope.fingerprintOf(f.name), `foreign ${f.name}`).toBe(f.fingerprint);
    await waitUntil(
      async () => (await bridge.metric('registry_bridge_conflicts')) === taken.length + replaced.length,
      'the conflicts counted',
      60_000,
    );
    const conflicted = new Set(
      bridge
        .logText()
        .split('\n')
        .filter((l) => l.includes('"action":"conflict"'))
        .map((l) => (JSON.parse(l) as { name?: string }).name),
    );
    for (const h of [...taken, ...replaced]) expect(conflicted.has(h), `conflict logged for ${h}`).toBe(true);
    // The writes the plan had decided before the other writer's objects appeared were refused by
    // the apiserver (the bridge's preconditions), each logged.
    const refusedWrites = bridge
      .logText()
      .split('\n')
      .filter((l) => l.includes('"msg":"write failed"') && l.includes('not overwritten')).length;
    await expectOneObjectPerHost(scope, expectedMoved);
    await finish('concurrent writer (409)', expectedMoved, {
      services: MASS,
      foreignCreatedFirstDuringApply: taken.length,
      foreignReplacedDuringUpdate: replaced.length,
      editedEntriesRepairedMs: repairedMs,
      refusedWrites,
      foreignOverwritten: 0,
    });
  }, 400_000);
});
