/**
 * The Helm chart against the real kube-apiserver from the harness:
 *  1. every object the chart renders (default values, and a variant with leader election,
 *     verification, the sync/verify CronJobs) is accepted by a server-side dry-run apply;
 *  2. the chart's ServiceAccount, Roles and RoleBindings are created for real, and the bridge
 *     (the CLI's `sync --once`, in-process) runs with that ServiceAccount's token from the
 *     TokenRequest API: it CAN do its job (discover, list, create/patch, delete ServiceEntries
 *     in its target namespace, hold its leader lease) and CANNOT do more (ServiceEntries in
 *     another namespace, secrets, leases outside its namespace or under another name).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { main } from '../../src/cli/main.js';
import { LeaderElector } from '../../src/controller/leader.js';
import { silentLogger } from '../../src/log.js';
import { hasPeer, peer } from '../peers/endpoints.js';
import { install, renderChart, type KubeObject } from '../peers/helm.js';

const id = randomBytes(3).toString('hex');
const releaseNs = `rb-chart-${id}`;
const targetNs = `rb-target-${id}`;
const otherNs = `rb-other-${id}`;
const release = 'rb';
const sa = `${release}-registry-bridge`;
const saUser = `system:serviceaccount:${releaseNs}:${sa}`;
const SE = { group: 'networking.istio.io', version: 'v1', plural: 'serviceentries' } as const;

let admin: KubeConfig;
/** The ClusterRole and binding the RBAC tests apply (deleted afterwards: no namespace holds them). */
const clusterScoped: KubeObject[] = [];
let helmBin: string;
let dir: string;

/** The variant the RBAC tests run with: leader election (2 replicas), verification, both CronJobs. */
function variantValues(registryFile: string) {
  return {
    replicaCount: 2,
    rbac: { verification: { enabled: true } },
    syncJob: { enabled: true },
    verifyJob: { enabled: true },
    config: {
      sources: [
        {
          name: 'files',
          kind: 'static',
          static: { path: registryFile },
          // Hosts unique to this run: the bridge checks ServiceEntries in every namespace, and
          // the shared apiserver keeps what earlier runs wrote.
          hostTemplate: `{service}.{group}.${id}.nacos`,
          targetNamespace: targetNs,
        },
      ],
      sink: { kind: 'kube' },
      leaderElection: { enabled: true, name: 'registry-bridge' },
    },
  };
}

function service(name: string, address: string) {
  return { name, namespace: 'public', group: 'DEFAULT_GROUP', protocol: 'http', instances: [{ address, port: 8080 }] };
}

async function ensureNamespace(name: string): Promise<void> {
  await admin
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name } } })
    .catch((err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
}

async function apply(objs: readonly KubeObject[], dryRun: boolean): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(admin);
  for (const o of objs) {
    try {
      await api.patch(
        o as KubernetesObject,
        undefined,
        dryRun ? 'All' : undefined,
        'rb-chart-test',
        true,
        PatchStrategy.ServerSideApply,
      );
    } catch (err) {
      const body = (err as { body?: unknown }).body;
      throw new Error(
        `${dryRun ? 'dry-run ' : ''}apply of ${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name} failed: ${typeof body === 'string' ? body : String(err)}`,
      );
    }
  }
}

/** A kubeconfig that authenticates as the chart's ServiceAccount (bound token from TokenRequest). */
async function serviceAccountKubeconfig(): Promise<{ kc: KubeConfig; file: string }> {
  const res = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: sa,
    namespace: releaseNs,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = res.status?.token;
  if (!token) throw new Error('TokenRequest returned no token');
  const { server, caFile } = peer('kube');
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'harness', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: sa, user: { token } }],
    contexts: [{ name: sa, context: { cluster: 'harness', user: sa } }],
    'current-context': sa,
  };
  const file = join(dir, 'sa.kubeconfig');
  await writeFile(file, toYaml(doc), { mode: 0o600 });
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return { kc, file };
}

/** HTTP status of a call made with the ServiceAccount's identity (200 when it succeeded). */
async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 200;
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (typeof code !== 'number') throw err;
    return code;
  }
}

async function runCli(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const sink = (fn: (s: string) => void) =>
    ({ write: (s: string) => (fn(s), true) }) as unknown as NodeJS.WritableStream & { write(chunk: string): boolean };
  const code = await main(args, { stdout: sink(() => {}), stderr: sink((s) => (stderr += s)), env: {} });
  return { code, stderr };
}

describe.skipIf(!hasPeer('kube'))('helm chart on the real kube-apiserver', () => {
  beforeAll(async () => {
    helmBin = (await install()).binary;
    admin = new KubeConfig();
    admin.loadFromFile(peer('kube').kubeconfig);
    dir = await mkdtemp(join(tmpdir(), 'rb-chart-'));
    for (const ns of [releaseNs, targetNs, otherNs]) await ensureNamespace(ns);
  });

  afterAll(async () => {
    const core = admin?.makeApiClient(CoreV1Api);
    for (const ns of [releaseNs, targetNs, otherNs]) await core?.deleteNamespace({ name: ns }).catch(() => {});
    const objects = admin && KubernetesObjectApi.makeApiClient(admin);
    for (const o of clusterScoped) await objects?.delete(o as KubernetesObject).catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('default values: every rendered object passes a server-side dry-run apply', async () => {
    const objs = await renderChart(helmBin, {}, { release, namespace: releaseNs });
    // The default config writes to namespace istio-config: it has to exist for the Role.
    await ensureNamespace('istio-config');
    await apply(objs, true);
    expect(objs.map((o) => o.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
  });

  it('leader election + verification + CronJobs: every rendered object passes a server-side dry-run apply', async () => {
    const objs = await renderChart(helmBin, variantValues('/etc/registry-bridge/registry.yaml'), {
      release,
      namespace: releaseNs,
    });
    await apply(objs, true);
    expect(new Set(objs.map((o) => o.kind))).toEqual(
      new Set([
        'ConfigMap',
        'CronJob',
        'Deployment',
        'PodDisruptionBudget',
        'Role',
        'RoleBinding',
        'ClusterRole',
        'ClusterRoleBinding',
        'Service',
        'ServiceAccount',
      ]),
    );
  });

  describe("with the chart's RBAC, as its ServiceAccount", () => {
    let kc: KubeConfig;
    let kubeconfigFile: string;
    let registryFile: string;
    let configFile: string;

    beforeAll(async () => {
      registryFile = join(dir, 'registry.yaml');
      const objs = await renderChart(helmBin, variantValues(registryFile), { release, namespace: releaseNs });
      const rbac = objs.filter((o) =>
        ['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind),
      );
      expect(rbac.length).toBeGreaterThanOrEqual(9);
      clusterScoped.push(...rbac.filter((o) => o.kind.startsWith('Cluster')));
      await apply(rbac, false);
      // The config exactly as the chart's ConfigMap holds it.
      configFile = join(dir, 'config.yaml');
      const cm = objs.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
      await writeFile(configFile, cm.data['config.yaml']!);
      ({ kc, file: kubeconfigFile } = await serviceAccountKubeconfig());
    });

    const owned = async (ns: string) =>
      (
        (await admin.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
          ...SE,
          namespace: ns,
          labelSelector: 'app.kubernetes.io/managed-by=registry-bridge',
        })) as { items: KubernetesObject[] }
      ).items
        .map((o) => o.metadata?.name)
        .sort();

    it('CAN do its job: `sync --once` creates, updates and deletes ServiceEntries in its target namespace', async () => {
      await writeFile(
        registryFile,
        JSON.stringify({ services: [service('orders', '10.0.0.1'), service('users', '10.0.0.2')] }),
      );
      const first = await runCli([
        'sync',
        '--once',
        '-c',
        configFile,
        '--kubeconfig',
        kubeconfigFile,
        '--log-level',
        'silent',
      ]);
      expect(first).toEqual({ code: 0, stderr: '' });
      expect(await owned(targetNs)).toHaveLength(2);

      await writeFile(registryFile, JSON.stringify({ services: [service('orders', '10.0.0.9')] }));
      const second = await runCli([
        'sync',
        '--once',
        '-c',
        configFile,
        '--kubeconfig',
        kubeconfigFile,
        '--log-level',
        'silent',
      ]);
      expect(second).toEqual({ code: 0, stderr: '' });
      const names = await owned(targetNs);
      expect(names).toHaveLength(1);
      const se = (await admin
        .makeApiClient(CustomObjectsApi)
        .getNamespacedCustomObject({ ...SE, namespace: targetNs, name: names[0]! })) as {
        spec: { endpoints: { address: string }[] };
      };
      expect(se.spec.endpoints.map((e) => e.address)).toEqual(['10.0.0.9']);
    });

    it('CAN see hosts declared in other namespaces: a foreign entry elsewhere holding a host withholds it, exit 4', async () => {
      const host = `shadowed.default-group.${id}.nacos`;
      const objects = admin.makeApiClient(CustomObjectsApi);
      await objects.createNamespacedCustomObject({
        ...SE,
        namespace: otherNs,
        body: {
          apiVersion: 'networking.istio.io/v1',
          kind: 'ServiceEntry',
          metadata: { name: 'hand-made', namespace: otherNs },
          spec: { hosts: [host], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS' },
        },
      });
      try {
        await writeFile(registryFile, JSON.stringify({ services: [service('shadowed', '10.0.0.5')] }));
        const run = await runCli(['sync', '--once', '-c', configFile, '--kubeconfig', kubeconfigFile]);
        expect(run.code, run.stderr).toBe(4);
        expect(run.stderr).toContain(`already declared by ServiceEntry ${otherNs}/hand-made in another namespace`);
        expect(await owned(targetNs)).not.toContain(host);
      } finally {
        await objects.deleteNamespacedCustomObject({ ...SE, namespace: otherNs, name: 'hand-made' });
      }
    });

    it('needs every ServiceEntry verb its Role grants in the target namespace: without one of them `sync --once` fails (list and watch come from the ClusterRole too)', async () => {
      const objectsApi = KubernetesObjectApi.makeApiClient(admin);
      const role = (verbs: string[]) => ({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: sa, namespace: targetNs },
        rules: [{ apiGroups: ['networking.istio.io'], resources: ['serviceentries'], verbs }],
      });
      const granted = ['list', 'watch', 'create', 'patch', 'delete'];
      const sync = () =>
        runCli(['sync', '--once', '-c', configFile, '--kubeconfig', kubeconfigFile, '--log-level', 'silent']);
      const outcome: Record<string, number> = {};
      try {
        for (const [verb, services] of [
          ['create', [service('orders', '10.0.0.9'), service('billing', '10.0.0.3')]],
          ['patch', [service('orders', '10.0.0.7')]],
          ['delete', [service('users', '10.0.0.2')]],
        ] as const) {
          // Start from a converged state with the full Role, then take one verb away.
          await objectsApi.replace(role(granted) as KubernetesObject);
          expect((await sync()).code).toBe(0);
          await writeFile(registryFile, JSON.stringify({ services }));
          await objectsApi.replace(role(granted.filter((v) => v !== verb)) as KubernetesObject);
          await new Promise((r) => setTimeout(r, 300)); // RBAC is read from an informer cache
          outcome[verb] = (await sync()).code;
        }
      } finally {
        await objectsApi.replace(role(granted) as KubernetesObject);
      }
      expect(outcome).toEqual({ create: 1, patch: 1, delete: 1 });
    });

    it('CAN hold its leader lease in the release namespace', async () => {
      const elector = new LeaderElector({
        kc,
        namespace: releaseNs,
        name: 'registry-bridge',
        identity: `chart-test-${id}`,
        leaseDurationMs: 4000,
        renewDeadlineMs: 3000,
        retryPeriodMs: 500,
        logger: silentLogger(),
      });
      const stop = new AbortController();
      await elector.acquire(AbortSignal.any([stop.signal, AbortSignal.timeout(15_000)]));
      expect(elector.isLeader()).toBe(true);
      await new Promise((r) => setTimeout(r, 1500)); // a few renewals (get + update)
      expect(elector.lost.aborted).toBe(false);
      stop.abort();
      await elector.release();
      const lease = await admin
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: 'registry-bridge', namespace: releaseNs });
      expect(lease.spec?.holderIdentity).toBeFalsy();
    });

    it('CANNOT do more: write in other namespaces, secrets, other leases, cluster scope; CAN read ServiceEntries anywhere', async () => {
      const objects = kc.makeApiClient(CustomObjectsApi);
      const core = kc.makeApiClient(CoreV1Api);
      const leases = kc.makeApiClient(CoordinationV1Api);
      const body = (ns: string) => ({
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name: 'intruder', namespace: ns },
        spec: {
          hosts: ['intruder.example'],
          ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
          resolution: 'DNS',
        },
      });
      const lease = (ns: string, name: string) => ({
        metadata: { name, namespace: ns },
        spec: { holderIdentity: 'x', leaseDurationSeconds: 15 },
      });
      const results = {
        'create serviceentry in another namespace': await statusOf(() =>
          objects.createNamespacedCustomObject({ ...SE, namespace: otherNs, body: body(otherNs) }),
        ),
        'list secrets in its own namespace': await statusOf(() => core.listNamespacedSecret({ namespace: releaseNs })),
        'list secrets in the target namespace': await statusOf(() =>
          core.listNamespacedSecret({ namespace: targetNs }),
        ),
        'create a lease in another namespace': await statusOf(() =>
          leases.createNamespacedLease({ namespace: otherNs, body: lease(otherNs, 'registry-bridge') }),
        ),
        'read a lease with another name': await statusOf(() =>
          leases.readNamespacedLease({ namespace: releaseNs, name: 'kube-scheduler' }),
        ),
        'list configmaps': await statusOf(() => core.listNamespacedConfigMap({ namespace: releaseNs })),
        'list namespaces': await statusOf(() => core.listNamespace()),
        'token for another ServiceAccount': await statusOf(() =>
          core.createNamespacedServiceAccountToken({
            name: 'default',
            namespace: releaseNs,
            body: { spec: { audiences: ['istio-ca'] } },
          }),
        ),
      };
      expect(results).toEqual(Object.fromEntries(Object.keys(results).map((k) => [k, 403])));
      // ServiceEntries of every namespace are readable (the hosts they declare: rbac.otherNamespaces).
      expect({
        'list serviceentries in another namespace': await statusOf(() =>
          objects.listNamespacedCustomObject({ ...SE, namespace: otherNs }),
        ),
        'list serviceentries cluster-wide': await statusOf(() => objects.listClusterCustomObject(SE)),
      }).toEqual({ 'list serviceentries in another namespace': 200, 'list serviceentries cluster-wide': 200 });
      // ...while the verify Job's one extra right works: a token for itself, audience istio-ca.
      expect(
        await statusOf(() =>
          core.createNamespacedServiceAccountToken({
            name: sa,
            namespace: releaseNs,
            body: { spec: { audiences: ['istio-ca'] } },
          }),
        ),
      ).toBe(200);
    });

    it('the apiserver agrees (SubjectAccessReview): exactly the verbs the bridge uses', async () => {
      const authz = admin.makeApiClient(AuthorizationV1Api);
      const can = async (verb: string, group: string, resource: string, namespace: string, name?: string) =>
        (
          await authz.createSubjectAccessReview({
            body: {
              spec: {
                user: saUser,
                groups: ['system:serviceaccounts', `system:serviceaccounts:${releaseNs}`, 'system:authenticated'],
                resourceAttributes: { verb, group, resource, namespace, ...(name ? { name } : {}) },
              },
            },
          })
        ).status?.allowed === true;
      const se = (verb: string, ns: string) => can(verb, 'networking.istio.io', 'serviceentries', ns);
      const matrix = {
        target: Object.fromEntries(
          await Promise.all(
            ['list', 'watch', 'create', 'patch', 'delete', 'get', 'update', 'deletecollection'].map(
              async (v) => [v, await se(v, targetNs)] as const,
            ),
          ),
        ),
        other: Object.fromEntries(
          await Promise.all(
            ['list', 'watch', 'create', 'patch', 'delete'].map(async (v) => [v, await se(v, otherNs)] as const),
          ),
        ),
        lease: {
          getOwn: await can('get', 'coordination.k8s.io', 'leases', releaseNs, 'registry-bridge'),
          updateOwn: await can('update', 'coordination.k8s.io', 'leases', releaseNs, 'registry-bridge'),
          create: await can('create', 'coordination.k8s.io', 'leases', releaseNs),
          updateOther: await can('update', 'coordination.k8s.io', 'leases', releaseNs, 'other'),
          deleteOwn: await can('delete', 'coordination.k8s.io', 'leases', releaseNs, 'registry-bridge'),
          createElsewhere: await can('create', 'coordination.k8s.io', 'leases', otherNs),
        },
        secrets: await can('get', '', 'secrets', releaseNs),
      };
      expect(matrix).toEqual({
        target: {
          list: true,
          watch: true,
          create: true,
          patch: true,
          delete: true,
          get: true,
          update: false,
          deletecollection: false,
        },
        other: { list: true, watch: true, create: false, patch: false, delete: false },
        lease: {
          getOwn: true,
          updateOwn: true,
          create: true,
          updateOther: false,
          deleteOwn: false,
          createElsewhere: false,
        },
        secrets: false,
      });
    });
  });
});
