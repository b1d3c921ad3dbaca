/**
 * Every way the kube sink can be unusable at start is one line on stderr naming the cause, and
 * exit 1 (exit 2 for configuration): unreachable API server, rejected credentials, RBAC denied,
 * Istio CRDs missing. The built binary runs against the harness's real kube-apiserver (and, for
 * the missing CRDs, an own kube-apiserver without them, on its own etcd prefix and port).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthorizationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { hasPeer, peer } from '../peers/endpoints.js';
import * as kubePeer from '../peers/kube.js';

const suffix = randomBytes(3).toString('hex');
const ns = `rb-startup-${suffix}`;
let dir: string;
let admin: KubeConfig;

/** Runs the built binary; resolves with its exit code and output. */
function runBinary(
  args: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['dist/registry-bridge.mjs', ...args],
      { env: env as NodeJS.ProcessEnv, timeout: 90_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function kubeconfigFile(name: string, server: string, caFile: string, token: string): Promise<string> {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: 'u', user: { token } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  };
  const file = join(dir, `${name}.kubeconfig`);
  await writeFile(file, toYaml(doc), { mode: 0o600 });
  return file;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A token for a fresh ServiceAccount in `ns` (bound token from the TokenRequest API). */
async function serviceAccountToken(name: string): Promise<string> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
  const res = await core.createNamespacedServiceAccountToken({
    name,
    namespace: ns,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  if (!res.status?.token) throw new Error('TokenRequest returned no token');
  return res.status.token;
}

/** The one line that is not a JSON log line (logs may come before it). */
function expectOneLine(stderr: string): string {
  const lines = stderr
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('{'));
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0]!;
}

describe.skipIf(!hasPeer('kube'))('startup errors of the kube sink (built binary, real kube-apiserver)', () => {
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-startup-'));
    admin = new KubeConfig();
    admin.loadFromFile(peer('kube').kubeconfig);
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
    await writeFile(
      join(dir, 'registry.json'),
      JSON.stringify({
        services: [{ name: 'orders', protocol: 'http', instances: [{ address: '10.0.0.1', port: 8080 }] }],
      }),
    );
    config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      [
        'sources:',
        '  - name: s',
        '    kind: static',
        `    static: { path: ${JSON.stringify(join(dir, 'registry.json'))} }`,
        `    targetNamespace: ${ns}`,
        'sink: { kind: kube }',
        'server: { address: 127.0.0.1, port: 0 }',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await admin
      ?.makeApiClient(CoreV1Api)
      .deleteNamespace({ name: ns })
      .catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('unreachable API server (a kubeconfig pointing at a closed port): exit 1, one line', async () => {
    const { caFile, token } = peer('kube');
    const file = await kubeconfigFile('closed', `https://127.0.0.1:${await closedPort()}`, caFile, token);
    for (const once of [true, false]) {
      const r = await runBinary(['sync', ...(once ? ['--once'] : []), '-c', config, '--kubeconfig', file]);
      expect(r.code, r.stderr).toBe(1);
      expect(expectOneLine(r.stderr)).toMatch(
        /^registry-bridge: kube-apiserver https:\/\/127\.0\.0\.1:\d+ is unreachable .*ECONNREFUSED/,
      );
    }
  });

  it('wrong credentials: exit 1, one line naming 401, no token in it', async () => {
    const { server, caFile } = peer('kube');
    const bad = `not-a-token-${suffix}`;
    const file = await kubeconfigFile('wrong', server, caFile, bad);
    for (const once of [true, false]) {
      const r = await runBinary(['sync', ...(once ? ['--once'] : []), '-c', config, '--kubeconfig', file]);
      expect(r.code, r.stderr).toBe(1);
      const line = expectOneLine(r.stderr);
      expect(line).toContain(`kube-apiserver ${server} rejected the kubeconfig's credentials (401 Unauthorized`);
      expect(r.stderr + r.stdout).not.toContain(bad);
    }
  });

  it('RBAC: no permission at all, then list but not patch: exit 1, one line naming what is denied', async () => {
    const { server, caFile } = peer('kube');
    const token = await serviceAccountToken('nobody');
    const file = await kubeconfigFile('nobody', server, caFile, token);
    let r = await runBinary(['sync', '--once', '-c', config, '--kubeconfig', file]);
    expect(r.code, r.stderr).toBe(1);
    expect(expectOneLine(r.stderr)).toMatch(
      new RegExp(
        `kube-apiserver ${server} denies listing networking\\.istio\\.io/v1 serviceentries in namespace ${ns} \\(403 Forbidden, RBAC\\): .*cannot list resource "serviceentries"`,
      ),
    );

    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'read-only' },
        rules: [{ apiGroups: ['networking.istio.io'], resources: ['serviceentries'], verbs: ['get', 'list', 'watch'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'read-only' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-only' },
        subjects: [{ kind: 'ServiceAccount', name: 'nobody', namespace: ns }],
      },
    });
    // RBAC changes take effect at once on one apiserver; the review is the server's own answer.
    const asSa = new KubeConfig();
    asSa.loadFromFile(file);
    const review = await asSa.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
      body: {
        spec: {
          resourceAttributes: { group: 'networking.istio.io', resource: 'serviceentries', verb: 'list', namespace: ns },
        },
      },
    });
    expect(review.status?.allowed).toBe(true);
    for (const once of [true, false]) {
      r = await runBinary(['sync', ...(once ? ['--once'] : []), '-c', config, '--kubeconfig', file]);
      expect(r.code, r.stderr).toBe(1);
      expect(expectOneLine(r.stderr)).toContain(
        `kube-apiserver ${server} denies the bridge's credentials patch (server-side apply) of serviceentries.networking.istio.io in namespace ${ns} (RBAC); also denied: delete`,
      );
    }
  });

  it('Istio CRDs missing (an own kube-apiserver without them): exit 1, one line', { timeout: 180_000 }, async () => {
    const own = await kubePeer.start({
      dataDir: join(dir, 'kube-no-crds'),
      securePort: await closedPort(),
      istioCrds: false,
      etcdServers: peer('etcd').client,
      extraArgs: [`--etcd-prefix=/rb-startup-no-crds-${suffix}`],
    });
    try {
      const r = await runBinary(['sync', '--once', '-c', config, '--kubeconfig', own.endpoints.kubeconfig!]);
      expect(r.code, r.stderr).toBe(1);
      expect(expectOneLine(r.stderr)).toBe(
        `registry-bridge: kube-apiserver ${own.endpoints.server} serves no networking.istio.io ServiceEntry version (are the Istio CRDs installed?)`,
      );
      // A fixed apiVersion skips discovery: the list's 404 says the same.
      const fixed = join(dir, 'fixed.yaml');
      await writeFile(
        fixed,
        (await import('node:fs/promises').then((f) => f.readFile(config, 'utf8'))).replace(
          'sink: { kind: kube }',
          'sink: { kind: kube, apiVersion: networking.istio.io/v1 }',
        ),
      );
      const r2 = await runBinary(['sync', '--once', '-c', fixed, '--kubeconfig', own.endpoints.kubeconfig!]);
      expect(r2.code, r2.stderr).toBe(1);
      expect(expectOneLine(r2.stderr)).toBe(
        `registry-bridge: kube-apiserver ${own.endpoints.server} does not serve networking.istio.io/v1 serviceentries (404): are the Istio CRDs installed?`,
      );
    } finally {
      await own.stop();
    }
  });
});
