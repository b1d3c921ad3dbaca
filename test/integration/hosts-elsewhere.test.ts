/**
 * Hosts that a ServiceEntry in another namespace already declares (src/plan/elsewhere.ts), with
 * the built binary (`sync --once`) against the harness's real kube-apiserver: a foreign entry
 * visible in the bridge's namespace withholds the new entry and is named (exit 4); one exported
 * elsewhere only is not reported; an entry of the bridge's that exists already is kept and the
 * pair reported; credentials that cannot list ServiceEntries cluster-wide turn the check off with
 * one warning, never a failure. Every host is unique to this file's run (the apiserver is shared
 * and keeps what other tests leave).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { hasPeer, peer } from '../peers/endpoints.js';
import { eventually } from './eventually.js';
import {
  collisions,
  createEntry,
  entriesOf,
  kubeWithNamespaces,
  runSync,
  staticBridge,
  type LogLine,
} from './elsewhere-kit.js';

const suffix = randomBytes(3).toString('hex');
const ours = `rb-xns-${suffix}`;
const theirs = `rb-xns-other-${suffix}`;
let dir: string;
let admin: KubeConfig;
let custom: CustomObjectsApi;

/** A registry file with one service and a config that writes it into `ours`; returns the config path and the host. */
const bridgeFor = (service: string, extra: Record<string, unknown> = {}) =>
  staticBridge(dir, ours, service, { protocol: 'http', address: '10.0.0.1', port: 8080 }, extra);

async function foreignEntry(name: string, host: string, exportTo?: string[]): Promise<void> {
  await createEntry(custom, theirs, name, {
    hosts: [host],
    ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }],
    resolution: 'NONE',
    location: 'MESH_INTERNAL',
    ...(exportTo ? { exportTo } : {}),
  });
}

const entriesIn = (namespace: string) => entriesOf(custom, namespace);

async function kubeconfigWithToken(name: string, token: string): Promise<string> {
  const { server, caFile } = peer('kube');
  const file = join(dir, `${name}.kubeconfig`);
  await writeFile(
    file,
    toYaml({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'certificate-authority': caFile } }],
      users: [{ name: 'u', user: { token } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
    { mode: 0o600 },
  );
  return file;
}

const conflicts = (lines: LogLine[]) => lines.filter((l) => l.msg === 'conflict');

describe.skipIf(!hasPeer('kube'))('hosts declared in another namespace (built binary, real kube-apiserver)', () => {
  beforeAll(async () => {
    ({ dir, admin, custom } = await kubeWithNamespaces('rb-xns-', [ours, theirs]));
  });

  afterAll(async () => {
    const core = admin?.makeApiClient(CoreV1Api);
    await Promise.allSettled([ours, theirs].map((name) => core?.deleteNamespace({ name })));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a foreign entry elsewhere, visible here (exportTo unset): not written, both named, exit 4', async () => {
    const { config, host } = await bridgeFor(`a-${suffix}`);
    await foreignEntry('hand-made-a', host);
    const run = await runSync(config, peer('kube').kubeconfig);
    expect(run.code, run.output).toBe(4);
    expect(conflicts(run.lines)).toEqual([
      expect.objectContaining({
        namespace: ours,
        name: host,
        host,
        reason: expect.stringContaining(`already declared by ServiceEntry ${theirs}/hand-made-a in another namespace`),
      }),
    ]);
    expect(collisions(run.lines)).toEqual([
      expect.objectContaining({ kind: 'host', objects: [`${theirs}/hand-made-a`, `${ours}/${host}`] }),
    ]);
    expect(run.lines.find((l) => l.msg === 'reconcile finished')).toMatchObject({
      create: 0,
      conflict: 1,
      collisions: 1,
    });
    expect(await entriesIn(ours)).not.toContain(`${host} ${host}`);
  });

  it('a foreign entry exported to its own namespace only: not seen here, created, exit 0', async () => {
    const { config, host } = await bridgeFor(`b-${suffix}`);
    await foreignEntry('hand-made-b', host, ['.']);
    const run = await runSync(config, peer('kube').kubeconfig);
    expect(run.code, run.output).toBe(0);
    expect(conflicts(run.lines)).toEqual([]);
    expect(collisions(run.lines)).toEqual([]);
    expect(await entriesIn(ours)).toContain(`${host} ${host}`);
  });

  it("the bridge's entry exists, a foreign one elsewhere declares its host later: kept, the pair reported, exit 4", async () => {
    const { config, host } = await bridgeFor(`c-${suffix}`);
    expect((await runSync(config, peer('kube').kubeconfig)).code).toBe(0);
    await foreignEntry('hand-made-c', host);
    const run = await runSync(config, peer('kube').kubeconfig);
    expect(run.code, run.output).toBe(4);
    expect(conflicts(run.lines)).toEqual([]);
    const [collision, ...more] = collisions(run.lines);
    expect(more).toEqual([]);
    expect(collision).toMatchObject({ kind: 'host', hosts: [host, host] });
    expect(new Set(collision!.objects as string[])).toEqual(new Set([`${ours}/${host}`, `${theirs}/hand-made-c`]));
    expect(await entriesIn(ours)).toContain(`${host} ${host}`);
  });

  it('credentials without a cluster-wide list: one warning that the check is off, the run goes on (exit 0)', async () => {
    const { config, host } = await bridgeFor(`d-${suffix}`);
    await foreignEntry('hand-made-d', host);
    const core = admin.makeApiClient(CoreV1Api);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ours, body: { metadata: { name: 'bridge' } } });
    await rbac.createNamespacedRole({
      namespace: ours,
      body: {
        metadata: { name: 'bridge' },
        rules: [
          {
            apiGroups: ['networking.istio.io'],
            resources: ['serviceentries'],
            verbs: ['list', 'watch', 'create', 'patch', 'delete'],
          },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ours,
      body: {
        metadata: { name: 'bridge' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'bridge' },
        subjects: [{ kind: 'ServiceAccount', name: 'bridge', namespace: ours }],
      },
    });
    const token = await core.createNamespacedServiceAccountToken({
      name: 'bridge',
      namespace: ours,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const kubeconfig = await kubeconfigWithToken('bridge', token.status!.token);

    const run = await runSync(config, kubeconfig);
    expect(run.code, run.output).toBe(0);
    const warnings = run.lines.filter((l) => l.level === 40);
    expect(warnings).toEqual([
      expect.objectContaining({
        check: 'hosts-in-other-namespaces',
        msg: expect.stringMatching(
          /RBAC denies list of serviceentries\.networking\.istio\.io in all namespaces: hosts and TCP ports that ServiceEntries in other namespaces declare are not checked/,
        ),
      }),
    ]);
    expect(conflicts(run.lines)).toEqual([]);
    expect(await entriesIn(ours)).toContain(`${host} ${host}`);
  });

  it('continuous mode: an entry elsewhere that declares the host later is reported by the next full run (log and gauge), and no longer once it is deleted', async () => {
    const { config, host } = await bridgeFor(`e-${suffix}`, {
      controller: { resyncInterval: '1s', debounce: '50ms' },
      server: { address: '127.0.0.1', port: 0 },
    });
    const child = spawn(
      process.execPath,
      ['dist/registry-bridge.mjs', 'sync', '-c', config, '--kubeconfig', peer('kube').kubeconfig],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: LogLine[] = [];
    const take = (d: Buffer) =>
      lines.push(
        ...d
          .toString()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as LogLine),
      );
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await eventually(async () => lines.some((l) => l.msg.startsWith('serving')), 'the bridge serving', 60_000);
      const port = lines.find((l) => l.msg.startsWith('serving'))!.port as number;
      const gauge = async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return /^registry_bridge_collisions (\d+)$/m.exec(text)?.[1];
      };
      await eventually(async () => (await entriesIn(ours)).includes(`${host} ${host}`), 'the entry written', 60_000);
      await eventually(async () => (await gauge()) === '0', 'a full run with no collision', 60_000);

      await foreignEntry('hand-made-e', host);
      await eventually(async () => (await gauge()) === '1', 'the collision counted', 60_000);
      expect(collisions(lines).filter((l) => (l.hosts as string[]).includes(host))[0]).toMatchObject({
        kind: 'host',
        objects: expect.arrayContaining([`${ours}/${host}`, `${theirs}/hand-made-e`]) as unknown,
      });
      expect(await entriesIn(ours)).toContain(`${host} ${host}`); // kept

      await custom.deleteNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1',
        namespace: theirs,
        plural: 'serviceentries',
        name: 'hand-made-e',
      });
      await eventually(async () => (await gauge()) === '0', 'the collision gone', 60_000);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
