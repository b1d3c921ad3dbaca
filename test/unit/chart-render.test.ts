/**
 * Renders charts/registry-bridge with Helm (built from its Go module by test/peers/helm.ts,
 * once per machine) for the default values and the variants users pick, and checks the
 * objects: secure defaults, least-privilege RBAC, the replicas/leader-election rule (schema
 * and template), sidecar mode and the sync/verify CronJobs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { install, lintChart, renderChart, renderChartText, type KubeObject } from '../peers/helm.js';

let bin = '';
beforeAll(async () => {
  bin = (await install((m) => console.log(`[helm] ${m}`))).binary;
}, 1_800_000);

type Any = Record<string, any>;

const find = (objs: KubeObject[], kind: string, name?: string, namespace?: string): Any | undefined =>
  objs.find(
    (o) =>
      o.kind === kind &&
      (name === undefined || o.metadata.name === name) &&
      (namespace === undefined || o.metadata.namespace === namespace),
  );
const kind1 = (o: KubeObject) => `${o.kind}/${o.metadata.name}`;
const kinds = (objs: KubeObject[]) =>
  objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`).sort();

const staticConfig = (extra: Any = {}) => ({
  sources: [
    {
      name: 'files',
      kind: 'static',
      static: { path: 'registry.yaml' },
      hostTemplate: '{service}.files',
      targetNamespace: 'mesh-a',
    },
  ],
  ...extra,
});

async function renderError(values: unknown, flags: string[] = []): Promise<string> {
  try {
    await renderChartText(bin, values, { flags });
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected helm template to fail');
}

describe('chart: default values', () => {
  let objs: KubeObject[];
  beforeAll(async () => {
    objs = await renderChart(bin, {});
  });

  it('renders exactly the Deployment mode objects', () => {
    expect(kinds(objs)).toEqual([
      'ClusterRole//rb-registry-bridge-registry-bridge-other-namespaces',
      'ClusterRoleBinding//rb-registry-bridge-registry-bridge-other-namespaces',
      'ConfigMap/registry-bridge/rb-registry-bridge',
      'Deployment/registry-bridge/rb-registry-bridge',
      'Role/istio-config/rb-registry-bridge',
      'RoleBinding/istio-config/rb-registry-bridge',
      'Service/registry-bridge/rb-registry-bridge-metrics',
      'ServiceAccount/registry-bridge/rb-registry-bridge',
    ]);
  });

  it('has secure pod and container defaults, probes and resources', () => {
    const pod = find(objs, 'Deployment')!.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.containers[0];
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.args).toEqual(['sync', '-c', '/etc/registry-bridge/config.yaml']);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(find(objs, 'Deployment')!.spec.replicas).toBe(1);
  });

  it('renders a ConfigMap the CLI accepts, with in-cluster defaults filled in', () => {
    const text = find(objs, 'ConfigMap')!.data['config.yaml'] as string;
    const config = parseConfig(parseYaml(text), adapterFactories);
    expect(config.sink).toMatchObject({ kind: 'kube' });
    expect(config.leaderElection).toMatchObject({ enabled: false, namespace: 'registry-bridge' });
    expect(config.server.port).toBe(8080);
  });

  it('grants only the ServiceEntry verbs the sink uses in the target namespace, and reading ServiceEntries elsewhere', () => {
    // Cluster scope: get, list and watch of ServiceEntries only (hosts declared in other namespaces).
    expect(objs.filter((o) => o.kind === 'ClusterRole').map((o) => (o as Any).rules)).toEqual([
      [{ apiGroups: ['networking.istio.io'], resources: ['serviceentries'], verbs: ['get', 'list', 'watch'] }],
    ]);
    expect(find(objs, 'ClusterRoleBinding')).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: 'rb-registry-bridge-registry-bridge-other-namespaces' },
      subjects: [{ kind: 'ServiceAccount', name: 'rb-registry-bridge', namespace: 'registry-bridge' }],
    });
    expect(find(objs, 'Role')!.rules).toEqual([
      {
        apiGroups: ['networking.istio.io'],
        resources: ['serviceentries'],
        verbs: ['list', 'watch', 'create', 'patch', 'delete'],
      },
    ]);
    expect(find(objs, 'RoleBinding')!.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'rb-registry-bridge', namespace: 'registry-bridge' },
    ]);
  });

  it('passes helm lint', async () => {
    const out = await lintChart(bin);
    expect(out).toMatch(/0 chart\(s\) failed/);
  });
});

describe('chart: variants', () => {
  it('replicas 2 with leader election: lease Role limited to its lease, PDB, rolling update', async () => {
    const objs = await renderChart(bin, {
      replicaCount: 2,
      config: staticConfig({ leaderElection: { enabled: true, name: 'rb-lease' } }),
    });
    expect(find(objs, 'Deployment')!.spec).toMatchObject({ replicas: 2, strategy: { type: 'RollingUpdate' } });
    expect(find(objs, 'Role', 'rb-registry-bridge-leader-election', 'registry-bridge')!.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['rb-lease'],
        verbs: ['get', 'update'],
      },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    ]);
    expect(find(objs, 'PodDisruptionBudget')!.spec).toMatchObject({ maxUnavailable: 1 });
    expect(find(objs, 'Role', 'rb-registry-bridge', 'mesh-a')).toBeDefined();
  });

  it('replicas 2 without leader election: the schema rejects it', async () => {
    const msg = await renderError({ replicaCount: 2, config: staticConfig() });
    expect(msg).toMatch(/values don't meet the specifications of the schema/);
    expect(msg).toMatch(/leaderElection/);
  });

  it('replicas 2 without leader election: the template fails too (schema skipped)', async () => {
    const msg = await renderError({ replicaCount: 2, config: staticConfig() }, ['--skip-schema-validation']);
    expect(msg).toMatch(/replicaCount=2 needs config.leaderElection.enabled=true/);
  });

  it.each([
    [
      'an inline registry password',
      {
        sources: [
          {
            name: 'n',
            kind: 'nacos',
            nacos: { servers: ['http://n:8848'], auth: { username: 'u', password: 'hunter2' } },
          },
        ],
      },
    ],
    ['an unknown source kind', { sources: [{ name: 'n', kind: 'eureka' }] }],
    ['no sources', { sources: [] }],
    ['an unknown config key', { ...staticConfig(), polcy: {} }],
  ])('the schema rejects %s', async (_name, config) => {
    expect(await renderError({ config })).toMatch(/values don't meet the specifications of the schema/);
  });

  it('registry credentials come from existing Secrets, never inline', async () => {
    const objs = await renderChart(bin, {
      registryCredentials: [{ env: 'NACOS_PASSWORD', secretName: 'nacos-auth', secretKey: 'password' }],
      secretMounts: [{ name: 'nacos-ca', secretName: 'nacos-ca', mountPath: '/etc/registry-bridge/secrets/nacos-ca' }],
      config: {
        sources: [
          {
            name: 'n',
            kind: 'nacos',
            nacos: { servers: ['http://n:8848'], auth: { username: 'u', password: { env: 'NACOS_PASSWORD' } } },
          },
        ],
      },
    });
    expect(objs.some((o) => o.kind === 'Secret')).toBe(false);
    const pod = find(objs, 'Deployment')!.spec.template.spec;
    expect(pod.containers[0].env).toEqual([
      { name: 'NACOS_PASSWORD', valueFrom: { secretKeyRef: { name: 'nacos-auth', key: 'password' } } },
    ]);
    expect(pod.volumes).toContainEqual({ name: 'nacos-ca', secret: { secretName: 'nacos-ca' } });
  });

  it('sidecar mode with sync and verify CronJobs: no Deployment/Service/PDB, Jobs run the right commands', async () => {
    const objs = await renderChart(bin, {
      mode: 'sidecar',
      serviceAccount: { create: false, name: 'my-app' },
      rbac: { verification: { enabled: true } },
      syncJob: { enabled: true },
      verifyJob: { enabled: true, extraArgs: ['--token-file', '/var/run/secrets/istio-ca/token'] },
      configFiles: { 'registry.yaml': 'services: []\n' },
      config: staticConfig(),
    });
    expect(
      objs.filter((o) => ['Deployment', 'Service', 'PodDisruptionBudget', 'ServiceAccount'].includes(o.kind)),
    ).toEqual([]);
    expect(find(objs, 'RoleBinding', 'rb-registry-bridge', 'mesh-a')!.subjects[0]).toMatchObject({ name: 'my-app' });
    const sync = find(objs, 'CronJob', 'rb-registry-bridge-sync')!.spec.jobTemplate.spec.template.spec;
    expect(sync.containers[0].args).toEqual(['sync', '--once', '-c', '/etc/registry-bridge/config.yaml']);
    expect(sync).toMatchObject({ restartPolicy: 'Never', serviceAccountName: 'my-app' });
    const verify = find(objs, 'CronJob', 'rb-registry-bridge-verify')!.spec.jobTemplate.spec.template.spec;
    expect(verify.containers[0].args).toEqual([
      'verify',
      '-c',
      '/etc/registry-bridge/config.yaml',
      '-n',
      'mesh-a',
      '--token-file',
      '/var/run/secrets/istio-ca/token',
    ]);
    // One target namespace: -n, no cluster-wide list for verify.
    expect(find(objs, 'ClusterRole', 'rb-registry-bridge-registry-bridge-verify')).toBeUndefined();
    expect(verify.volumes).toContainEqual(expect.objectContaining({ name: 'istio-ca-token' }));
    expect(find(objs, 'Role', 'rb-registry-bridge-verify')!.rules).toEqual([
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['my-app'], verbs: ['create'] },
    ]);
    expect(find(objs, 'ConfigMap')!.data['registry.yaml']).toBe('services: []\n');
  });

  it('verification over several target namespaces: one read-only ClusterRole (list serviceentries), no -n', async () => {
    const config = {
      sources: [staticConfig().sources[0], { ...staticConfig().sources[0], name: 'more', targetNamespace: 'mesh-b' }],
    };
    const objs = await renderChart(bin, {
      rbac: { verification: { enabled: true } },
      verifyJob: { enabled: true },
      config,
    });
    expect(find(objs, 'ClusterRole', 'rb-registry-bridge-registry-bridge-verify')!.rules).toEqual([
      { apiGroups: ['networking.istio.io'], resources: ['serviceentries'], verbs: ['list'] },
    ]);
    const verify = find(objs, 'CronJob', 'rb-registry-bridge-verify')!.spec.jobTemplate.spec.template.spec;
    expect(verify.containers[0].args).toEqual(['verify', '-c', '/etc/registry-bridge/config.yaml']);
    expect(
      objs
        .filter((o) => o.kind === 'Role' && o.metadata.name === 'rb-registry-bridge')
        .map((o) => o.metadata.namespace),
    ).toEqual(['mesh-a', 'mesh-b']);
    const withoutVerification = await renderChart(bin, { config });
    expect(
      withoutVerification.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding').map(kind1),
    ).toEqual([
      'ClusterRole/rb-registry-bridge-registry-bridge-other-namespaces',
      'ClusterRoleBinding/rb-registry-bridge-registry-bridge-other-namespaces',
    ]);
  });

  it('rbac.otherNamespaces.enabled=false: nothing cluster-wide', async () => {
    const objs = await renderChart(bin, { rbac: { otherNamespaces: { enabled: false } } });
    expect(objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
    expect(find(objs, 'Role', 'rb-registry-bridge')).toBeDefined();
  });

  it('a ServiceMonitor only when asked for', async () => {
    const objs = await renderChart(bin, { serviceMonitor: { enabled: true } });
    expect(find(objs, 'ServiceMonitor')!.spec.endpoints[0]).toMatchObject({ port: 'http-metrics', path: '/metrics' });
  });
});
