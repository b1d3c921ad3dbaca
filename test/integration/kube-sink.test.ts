/**
 * The kube sink and the controller against the real kube-apiserver (with Istio's CRDs) from the
 * harness: object state after create/update/delete, zero writes when nothing changed, foreign
 * objects untouched, drift repaired, fences, leader election between two processes, and an
 * apiserver outage survived.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import tls from 'node:tls';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CoordinationV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { BridgeConfig } from '../../src/config/schema.js';
import { buildSources } from '../../src/controller/wiring.js';
import { reconcileOnce, type ReconcileReport } from '../../src/controller/reconcile.js';
import { ExitCode, exitCodeOf } from '../../src/controller/exit-code.js';
import { runContinuous } from '../../src/controller/run.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';
import type { KubeSinkOptions } from '../../src/sinks/kube/options.js';
import { kubeSink } from '../../src/sinks/kube/sink.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { control, peer } from '../peers/endpoints.js';
import { eventually } from './eventually.js';

interface SE extends KubernetesObject {
  spec: {
    hosts: string[];
    endpoints?: { address: string }[];
    ports: { number: number; name: string; protocol: string }[];
    resolution: string;
  };
}

let kc: KubeConfig;
let objects: KubernetesObjectApi;
let dir: string;
const namespaces: string[] = [];

async function newNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  namespaces.push(name);
  return name;
}

/** A fresh namespace and the path of its registry file (written by writeRegistry). */
async function newRegistry(prefix: string): Promise<{ ns: string; reg: string }> {
  const ns = await newNamespace(prefix);
  return { ns, reg: join(dir, `${ns}.json`) };
}

/**
 * The host (and object name) service `name` of the registry gets in test namespace `ns`: unique
 * per test, as the shared apiserver keeps every test's entries, and a host that an entry in
 * another namespace declares is not written (src/plan/elsewhere.ts).
 */
const hostIn = (ns: string, name: string) => `${name}.default-group.${ns}.static`;

/** The static source of a test: its registry file, written into `ns`, hosts by hostIn. */
const staticSource = (path: string, ns: string) => ({
  name: 'files',
  kind: 'static',
  static: { path },
  targetNamespace: ns,
  hostTemplate: `{service}.{group}.${ns}.static`,
});

function service(name: string, addresses: string[], port = 8080) {
  return {
    name,
    namespace: 'public',
    group: 'DEFAULT_GROUP',
    protocol: 'http',
    instances: addresses.map((address) => ({ address, port })),
  };
}

async function writeRegistry(file: string, services: unknown[]): Promise<void> {
  await writeFile(file, JSON.stringify({ services }));
}

/** A kube sink writing to `namespace` of the harness apiserver; `over` sets what a test needs. */
function sinkFor(namespace: string, over: Partial<KubeSinkOptions> = {}) {
  return kubeSink({
    kc,
    namespaces: [namespace],
    apiVersion: 'auto',
    fieldManager: 'registry-bridge',
    qps: 50,
    concurrency: 2,
    logger: silentLogger(),
    metrics: new BridgeMetrics(),
    ...over,
  });
}

/** The sources of `config` as the CLI builds them (static registry files under the test's dir). */
function sourcesOf(config: BridgeConfig, deps: { logger: Logger; metrics: BridgeMetrics }) {
  return buildSources(config, { ...deps, baseDir: dir, env: {}, apiVersion: 'networking.istio.io/v1' });
}

/** A ServiceEntry of another writer (no managed-by label unless `labels` says so). */
async function createForeign(namespace: string, name: string, spec: object, labels?: Record<string, string>) {
  await objects.create({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec,
  } as KubernetesObject);
}

/** One bridge wired like the CLI, against a registry file and the real apiserver. */
function bridge(namespace: string, registryFile: string, extra: Record<string, unknown> = {}) {
  const config = parseConfig(
    {
      sources: [staticSource(registryFile, namespace)],
      sink: { kind: 'kube', qps: 200 },
      ...extra,
    },
    adapterFactories,
  );
  const metrics = new BridgeMetrics();
  const logger = silentLogger();
  const sink = sinkFor(namespace, { qps: 200, concurrency: 8, logger, metrics, retries: 2 });
  const sources = sourcesOf(config, { logger, metrics });
  const run = (dryRun = false): Promise<ReconcileReport> =>
    reconcileOnce(
      sources,
      sink,
      { policy: config.policy.mode, maxDeletes: config.policy.maxDeletesPerRun, dryRun },
      { logger, signal: new AbortController().signal },
    );
  return { config, metrics, sink, sources, run };
}

async function read(namespace: string, name: string): Promise<SE | undefined> {
  try {
    return await objects.read<SE>({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name, namespace },
    });
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** Another writer edits a ServiceEntry (a JSON merge patch, like kubectl edit, as `manager`). */
async function editByHand(
  namespace: string,
  name: string,
  edit: { spec?: object; annotations?: Record<string, string> },
  manager = 'kubectl-edit',
): Promise<void> {
  const metadata = { name, namespace, ...(edit.annotations ? { annotations: edit.annotations } : {}) };
  await objects.patch(
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata,
      ...(edit.spec ? { spec: edit.spec } : {}),
    } as KubernetesObject,
    undefined,
    undefined,
    manager,
    undefined,
    PatchStrategy.MergePatch,
  );
}

async function writeCalls(metrics: BridgeMetrics): Promise<number> {
  const m = await metrics.apiWrites.get();
  return m.values.reduce((n, v) => n + v.value, 0);
}

beforeAll(async () => {
  kc = loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });
  objects = KubernetesObjectApi.makeApiClient(kc);
  dir = await mkdtemp(join(tmpdir(), 'rb-kube-'));
});

afterAll(async () => {
  const core = kc.makeApiClient(CoreV1Api);
  await Promise.allSettled(namespaces.map((name) => core.deleteNamespace({ name })));
  await rm(dir, { recursive: true, force: true });
});

describe('kube sink against the real apiserver', () => {
  it('creates, updates (instance added, port changed), deletes, and makes zero writes when nothing changed', async () => {
    const { ns, reg } = await newRegistry('rb-crud');
    const b = bridge(ns, reg);
    const host = hostIn(ns, 'orders');

    await writeRegistry(reg, [service('orders', ['10.0.0.1']), service('billing', ['10.0.1.1'])]);
    const first = await b.run();
    expect(first.plan.counts).toMatchObject({ create: 2, update: 0, delete: 0 });
    expect(first.failedWrites).toBe(0);
    expect((await b.metrics.queueDepth.get()).values[0]?.value).toBe(0);
    const created = await read(ns, host);
    expect(created?.spec).toMatchObject({
      hosts: [host],
      resolution: 'STATIC',
      ports: [{ name: 'http-8080', number: 8080, protocol: 'HTTP' }],
      endpoints: [{ address: '10.0.0.1' }],
    });
    expect(created?.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'registry-bridge',
      'registry-bridge.io/source': 'files',
    });
    expect(created?.metadata?.managedFields?.map((f) => f.manager)).toContain('registry-bridge');

    // Identical second run: zero write calls, resourceVersion untouched.
    const before = await writeCalls(b.metrics);
    const second = await b.run();
    expect(second.plan.counts).toMatchObject({ create: 0, update: 0, delete: 0, unchanged: 2 });
    expect(await writeCalls(b.metrics)).toBe(before);
    // generation, not resourceVersion: istiod writes status (auto-allocated addresses) on its own.
    expect((await read(ns, host))?.metadata?.generation).toBe(created?.metadata?.generation);

    // Instance added.
    await writeRegistry(reg, [service('orders', ['10.0.0.1', '10.0.0.2']), service('billing', ['10.0.1.1'])]);
    expect((await b.run()).plan.counts.update).toBe(1);
    expect((await read(ns, host))?.spec.endpoints).toEqual([{ address: '10.0.0.1' }, { address: '10.0.0.2' }]);

    // Port changed.
    await writeRegistry(reg, [service('orders', ['10.0.0.1', '10.0.0.2'], 9090), service('billing', ['10.0.1.1'])]);
    await b.run();
    expect((await read(ns, host))?.spec.ports).toEqual([{ name: 'http-9090', number: 9090, protocol: 'HTTP' }]);

    // Service gone from the registry.
    await writeRegistry(reg, [service('orders', ['10.0.0.1'])]);
    const removed = await b.run();
    expect(removed.plan.counts.delete).toBe(1);
    expect(await read(ns, hostIn(ns, 'billing'))).toBeUndefined();
  });

  it('reuses its TLS connections: 30 writes and reads open a handful, not one per request', async () => {
    const { ns, reg } = await newRegistry('rb-conn');
    await writeRegistry(
      reg,
      Array.from({ length: 30 }, (_, i) => service(`conn${i}`, [`10.0.4.${i + 1}`])),
    );
    const b = bridge(ns, reg);
    await b.run(); // the first run also discovers the API version and opens the pool
    await writeRegistry(
      reg,
      Array.from({ length: 30 }, (_, i) => service(`conn${i}`, [`10.0.4.${i + 1}`, `10.0.5.${i + 1}`])),
    );
    // Every TLS connection the process opens (https.Agent calls tls.connect through the module).
    let sockets = 0;
    const connect = tls.connect;
    tls.connect = ((...args: Parameters<typeof tls.connect>) => {
      sockets++;
      return connect.apply(tls, args);
    }) as typeof tls.connect;
    try {
      const r = await b.run();
      expect(r.plan.counts.update).toBe(30);
      expect(r.failedWrites).toBe(0);
    } finally {
      tls.connect = connect;
    }
    // 30 updates and a list with write concurrency 8: at most 8 (+1 for the list) connections.
    // @kubernetes/client-node 1.x alone opens a new one per request (31 here).
    expect(sockets).toBeLessThanOrEqual(9);
  });

  it('observes every owned object across list pages (continue tokens)', async () => {
    const { ns, reg } = await newRegistry('rb-pages');
    await writeRegistry(
      reg,
      ['a', 'b', 'c', 'd', 'e'].map((n, i) => service(n, [`10.0.3.${i + 1}`])),
    );
    await bridge(ns, reg).run();
    const paged = sinkFor(ns, { pageSize: 2 });
    const observed = await paged.observe(new AbortController().signal);
    expect(
      observed
        .filter((o) => o.owned)
        .map((o) => o.name)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'd', 'e'].map((n) => hostIn(ns, n)));
  });

  it('dry-run goes through server-side validation and persists nothing', async () => {
    const { ns, reg } = await newRegistry('rb-dry');
    await writeRegistry(reg, [service('orders', ['10.0.0.1'])]);
    const report = await bridge(ns, reg).run(true);
    expect(report.plan.counts.create).toBe(1);
    expect(report.failedWrites).toBe(0);
    expect(await read(ns, hostIn(ns, 'orders'))).toBeUndefined();
  });

  it('leaves foreign objects with the same name or host untouched and reports them', async () => {
    const { ns, reg } = await newRegistry('rb-foreign');
    const spec = {
      hosts: [hostIn(ns, 'orders')],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      resolution: 'DNS',
      location: 'MESH_EXTERNAL',
    };
    await createForeign(ns, hostIn(ns, 'orders'), spec);
    await createForeign(ns, 'hand-made', { ...spec, hosts: [hostIn(ns, 'billing')] }, { team: 'payments' });
    const foreignBefore = await read(ns, hostIn(ns, 'orders'));

    await writeRegistry(reg, [service('orders', ['10.0.0.1']), service('billing', ['10.0.1.1'])]);
    const report = await bridge(ns, reg).run();
    expect(report.plan.counts).toMatchObject({ conflict: 2, create: 0 });
    const reasons = report.plan.changes.filter((c) => c.action === 'conflict').map((c) => c.reason);
    expect(reasons.join('\n')).toMatch(/is not managed by registry-bridge/);
    expect(reasons.join('\n')).toMatch(/already served by ServiceEntry .*\/hand-made/);
    // Untouched by the bridge: same generation (a spec or label write bumps it), no field of
    // ours. (Its resourceVersion may move: istiod writes the status subresource on its own.)
    const foreignAfter = await read(ns, hostIn(ns, 'orders'));
    expect(foreignAfter?.metadata?.generation).toBe(foreignBefore?.metadata?.generation);
    expect(foreignAfter?.metadata?.labels ?? {}).toEqual(foreignBefore?.metadata?.labels ?? {});
    expect((foreignAfter?.metadata?.managedFields ?? []).map((f) => f.manager)).not.toContain('registry-bridge');
  });

  it('reports a TCP port that a foreign ServiceEntry without addresses already holds (a collision), naming both hosts and the port: exit 4', async () => {
    const { ns, reg } = await newRegistry('rb-collide');
    // A port of this run's: the shared apiserver keeps earlier runs' entries (in namespaces
    // no controller empties), and entries of other namespaces on the same port collide too.
    // Below the ephemeral range other files take free ports from.
    const port = randomInt(22_000, 32_000);
    await createForeign(ns, 'legacy-dubbo', {
      hosts: [`legacy-${ns}.dubbo.example`],
      ports: [{ number: port, name: 'tcp', protocol: 'TCP' }],
      resolution: 'STATIC',
      location: 'MESH_INTERNAL',
      endpoints: [{ address: '10.9.0.1' }],
    });
    await writeFile(
      reg,
      JSON.stringify({
        services: [
          {
            name: 'greet',
            namespace: 'public',
            group: 'DEFAULT_GROUP',
            protocol: 'dubbo',
            instances: [{ address: '10.0.0.1', port }],
          },
        ],
      }),
    );
    const report = await bridge(ns, reg).run();
    expect(report.plan.counts).toMatchObject({ create: 1, conflict: 0 });
    expect(
      report.plan.collisions.map((c) => `${c.kind} ${c.port ?? ''} ${c.entries.map((e) => e.host).join(' ')}`),
    ).toEqual([`port ${port} legacy-${ns}.dubbo.example ${hostIn(ns, 'greet')}`]);
    expect(exitCodeOf(report, false)).toBe(ExitCode.Degraded);
    // Neither stays on the port for another run (deleted namespaces keep their objects here).
    for (const name of ['legacy-dubbo', hostIn(ns, 'greet')])
      await objects.delete({
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name, namespace: ns },
      });
  });

  it('restores an owned object edited by hand and recreates one deleted by hand', async () => {
    const { ns, reg } = await newRegistry('rb-drift');
    const b = bridge(ns, reg);
    const host = hostIn(ns, 'orders');
    await writeRegistry(reg, [service('orders', ['10.0.0.1'])]);
    await b.run();

    // A human edits the endpoints with another field manager (like kubectl edit).
    await editByHand(ns, host, { spec: { endpoints: [{ address: '192.0.2.99' }] } });
    expect((await read(ns, host))?.spec.endpoints).toEqual([{ address: '192.0.2.99' }]);
    const repaired = await b.run();
    expect(repaired.plan.counts.update).toBe(1);
    expect((await read(ns, host))?.spec.endpoints).toEqual([{ address: '10.0.0.1' }]);

    await objects.delete({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: host, namespace: ns },
    });
    expect((await b.run()).plan.counts.create).toBe(1);
    expect(await read(ns, host)).toBeDefined();
  });

  it('with its watch running, a full run answers from the cache the watch keeps: hand edits, deletes, foreign objects and its own writes, and no list', async () => {
    const { ns, reg } = await newRegistry('rb-informed');
    const b = bridge(ns, reg);
    const host = hostIn(ns, 'orders');
    await writeRegistry(reg, [service('orders', ['10.0.0.1']), service('billing', ['10.0.1.1'])]);
    expect((await b.run()).plan.counts.create).toBe(2);
    const observes = async (via: string) =>
      (await b.metrics.sinkObserves.get()).values.find((v) => v.labels.via === via)?.value ?? 0;
    expect(await observes('list')).toBe(1);

    const stop = new AbortController();
    let hints = 0;
    await b.sink.watch!(() => void (hints += 1), stop.signal);
    try {
      // Once the watch runs, runs answer from its cache.
      await eventually(
        async () => (await b.run(), (await observes('watch')) > 0),
        'a full run answered from the watch cache',
      );
      const listed = await observes('list');
      const fromCache = await b.run();
      expect(fromCache.plan.counts).toMatchObject({ unchanged: 2, create: 0, update: 0, delete: 0 });

      // A hand edit reaches the cache (and hints); the next run repairs it.
      await editByHand(ns, host, { spec: { endpoints: [{ address: '192.0.2.99' }] } });
      await eventually(async () => hints > 0, 'the hand edit hinted');
      await eventually(async () => (await b.run()).plan.counts.update === 1, 'the hand edit seen and repaired');
      expect((await read(ns, host))?.spec.endpoints).toEqual([{ address: '10.0.0.1' }]);
      // Its own write is in the cache at once: the run right after it writes nothing.
      expect((await b.run()).plan.counts).toMatchObject({ unchanged: 2, update: 0 });

      // A hand delete: recreated.
      await objects.delete({
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name: host, namespace: ns },
      });
      await eventually(async () => (await b.run()).plan.counts.create === 1, 'the hand delete seen and repaired');
      expect(await read(ns, host)).toBeDefined();

      // A foreign object taking a host the bridge wants: a conflict, seen through the cache.
      const spec = {
        hosts: [hostIn(ns, 'payments')],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
        resolution: 'DNS',
        location: 'MESH_EXTERNAL',
      };
      await createForeign(ns, 'hand-made', spec);
      // (A cache, like every informer's, learns of a change a moment after it is made: wait for it.)
      await eventually(
        async () =>
          (await b.sink.observe(new AbortController().signal)).some(
            (o) => o.namespace === ns && o.name === 'hand-made',
          ),
        'the foreign object in the cache',
      );
      await writeRegistry(reg, [
        service('orders', ['10.0.0.1']),
        service('billing', ['10.0.1.1']),
        service('payments', ['10.0.2.1']),
      ]);
      expect((await b.run()).plan.counts).toMatchObject({ conflict: 1, create: 0 });

      // The registry drops a service: its object is deleted, and the cache knows at once.
      await writeRegistry(reg, [service('orders', ['10.0.0.1'])]);
      expect((await b.run()).plan.counts.delete).toBe(1);
      expect((await b.run()).plan.counts).toMatchObject({ delete: 0, unchanged: 1 });
      expect(await read(ns, hostIn(ns, 'billing'))).toBeUndefined();

      // Every run since the watch started was answered from its cache: the one list is the first run's.
      expect(await observes('list')).toBe(listed);
      // And what the cache says is what a list says.
      const fresh = sinkFor(ns);
      // (This namespace's: observe also returns every other namespace's entries, which other
      // tests change meanwhile.)
      const project = (xs: Awaited<ReturnType<typeof fresh.observe>>) =>
        xs
          .filter((o) => o.namespace === ns)
          .map((o) => ({ ...o, resourceVersion: undefined }))
          .sort((x, y) => x.name.localeCompare(y.name));
      await eventually(
        async () =>
          JSON.stringify(project(await b.sink.observe(new AbortController().signal))) ===
          JSON.stringify(project(await fresh.observe(new AbortController().signal))),
        'the cache equals a fresh list',
      );
    } finally {
      stop.abort();
    }
    // With the watch stopped, a run lists again.
    const before = await observes('list');
    await eventually(
      async () => (await b.run(), (await observes('list')) > before),
      'a list once the watch is stopped',
    );
  });

  it('a delete whose resourceVersion went stale (istiod writes status) looks again, by a list (the Role grants no get), and deletes', async () => {
    const { ns, reg } = await newRegistry('rb-stale');
    const b = bridge(ns, reg);
    const host = hostIn(ns, 'orders');
    await writeRegistry(reg, [service('orders', ['10.0.0.1'])]);
    await b.run();
    const observed = (await b.sink.observe(new AbortController().signal)).find((o) => o.name === host)!;
    // Another writer moves the resourceVersion on (as istiod's status writes do).
    await editByHand(ns, host, { annotations: { touched: 'yes' } }, 'someone-else');
    expect((await read(ns, host))?.metadata?.resourceVersion).not.toBe(observed.resourceVersion);
    const [outcome] = await b.sink.apply(
      [{ action: 'delete', namespace: ns, name: host, source: 'files', observed }],
      { dryRun: false },
      new AbortController().signal,
    );
    expect(outcome).toMatchObject({ ok: true });
    expect(await read(ns, host)).toBeUndefined();
  });

  it('deletes nothing of a source whose read failed, and holds the deletion cap', async () => {
    const { ns, reg } = await newRegistry('rb-fence');
    await writeRegistry(
      reg,
      ['a', 'b', 'c', 'd'].map((n, i) => service(n, [`10.0.2.${i + 1}`])),
    );
    const b = bridge(ns, reg, { policy: { maxDeletesPerRun: 2 } });
    await b.run();

    await rm(reg);
    const failed = await b.run();
    expect(failed.sourceErrors).toHaveLength(1);
    expect(failed.plan.counts.delete).toBe(0);
    expect(failed.plan.counts.keep).toBe(4);

    await writeRegistry(reg, [service('a', ['10.0.2.1'])]);
    const capped = await b.run();
    expect(capped.plan.counts).toMatchObject({ delete: 2, keep: 1, unchanged: 1 });
    expect(capped.failedWrites).toBe(0);
    const remaining = await objects.list('networking.istio.io/v1', 'ServiceEntry', ns);
    expect(remaining.items).toHaveLength(2);
    expect((await b.run()).plan.counts.delete).toBe(1);
  });
});

describe('continuous mode against the real apiserver', () => {
  it('two processes: only the leader writes; kill it and the other takes over within the lease duration', async () => {
    const { ns, reg } = await newRegistry('rb-leader');
    await writeRegistry(reg, [service('orders', ['10.0.0.1'])]);
    const cfg = join(dir, `${ns}.yaml`);
    await writeFile(
      cfg,
      JSON.stringify({
        sources: [staticSource(reg, ns)],
        sink: { kind: 'kube', kubeconfig: peer('kube').kubeconfig },
        controller: { resyncInterval: '1s', debounce: '50ms' },
        server: { address: '127.0.0.1', port: 0 },
        leaderElection: {
          enabled: true,
          namespace: ns,
          name: 'registry-bridge',
          leaseDuration: '4s',
          renewDeadline: '3s',
          retryPeriod: '500ms',
        },
        log: { level: 'info' },
      }),
    );
    const start = (id: string) => {
      const child = spawn(process.execPath, ['dist/registry-bridge.mjs', 'sync', '-c', cfg], {
        env: { ...process.env, POD_NAME: id },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const lines: string[] = [];
      child.stderr!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
      return { child, lines, reconciles: () => lines.filter((l) => l.includes('"reconcile finished"')).length };
    };
    const leases = kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await leases.readNamespacedLease({ name: 'registry-bridge', namespace: ns }).catch(() => undefined))?.spec
        ?.holderIdentity;

    const a = start('bridge-a');
    await waitFor(async () => (await holder()) === 'bridge-a', 20_000);
    const b = start('bridge-b');
    const children: ChildProcess[] = [a.child, b.child];
    try {
      await waitFor(async () => (await read(ns, hostIn(ns, 'orders'))) !== undefined, 20_000);
      // B is up (Node start-up takes seconds on a loaded machine) and standing by.
      await waitFor(async () => b.lines.some((l) => l.includes('waiting for the lease')), 30_000);
      await sleep(2500);
      expect(a.reconciles()).toBeGreaterThan(0);
      expect(b.reconciles()).toBe(0); // the standby never reconciles, so never writes

      a.child.kill('SIGKILL');
      const killedAt = Date.now();
      await waitFor(async () => (await holder()) === 'bridge-b', 15_000);
      const takeover = Date.now() - killedAt;
      console.log(`leader takeover after SIGKILL: ${takeover} ms (lease 4000 ms, retry 500 ms)`);
      expect(takeover).toBeLessThan(4000 + 5000); // lease duration + retry period + scheduling slack
      // The new leader does the job: a registry change reaches kube through it.
      await writeRegistry(reg, [service('orders', ['10.0.0.1', '10.0.0.7'])]);
      await waitFor(async () => (await read(ns, hostIn(ns, 'orders')))?.spec.endpoints?.length === 2, 15_000);
      // B writes before it logs the run: its line comes through the pipe after the object changed.
      await waitFor(async () => Promise.resolve(b.reconciles() > 0), 15_000);
    } finally {
      for (const c of children) c.kill('SIGTERM');
      await Promise.all(
        children.map((c) =>
          c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined,
        ),
      );
    }
    expect(b.child.exitCode).toBe(0); // SIGTERM: graceful
  });

  it('survives the apiserver stopping mid-run and converges after it restarts', async () => {
    const { ns, reg } = await newRegistry('rb-outage');
    await writeRegistry(reg, [service('orders', ['10.0.0.1'])]);
    const config = parseConfig(
      {
        sources: [staticSource(reg, ns)],
        sink: { kind: 'kube' },
        controller: { resyncInterval: '1s', debounce: '50ms' },
        server: { address: '127.0.0.1', port: 0 },
      },
      adapterFactories,
    );
    const metrics = new BridgeMetrics();
    const logger = silentLogger();
    const sink = sinkFor(ns, { qps: 100, concurrency: 4, logger, metrics, retries: 1 });
    const sources = sourcesOf(config, { logger, metrics });
    const shutdown = new AbortController();
    const reports: ReconcileReport[] = [];
    const running = runContinuous({
      config,
      sources,
      sink,
      kc,
      logger,
      metrics,
      dryRun: false,
      shutdown: shutdown.signal,
      env: {},
      onReport: (r) => reports.push(r),
    });
    try {
      await waitFor(async () => (await read(ns, hostIn(ns, 'orders'))) !== undefined, 20_000);
      const kube = control('kube');
      await kube.stop();
      await writeRegistry(reg, [service('orders', ['10.0.0.1', '10.0.0.2'])]);
      await sleep(3000); // several failing runs while the apiserver is down
      await kube.start();
      kc = loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });
      await waitFor(
        async () => (await read(ns, hostIn(ns, 'orders')).catch(() => undefined))?.spec.endpoints?.length === 2,
        60_000,
      );
      const failedRuns =
        (await metrics.reconcileRuns.get()).values.find((v) => v.labels.result === 'failed')?.value ?? 0;
      expect(failedRuns).toBeGreaterThan(0);
    } finally {
      shutdown.abort();
      expect(await running).toBe(0);
    }
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
