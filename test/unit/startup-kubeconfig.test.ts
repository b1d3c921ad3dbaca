/**
 * No kubeconfig anywhere: @kubernetes/client-node falls back to http://localhost:8080 without a
 * word, and the first call failed with "HTTP protocol is not allowed when skipTLSVerify is not
 * set". The bridge says what is missing instead, as a configuration error (exit 2), before any
 * source starts. The built binary runs with an empty HOME and no KUBECONFIG.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';

let home: string;
let config: string;

function runBinary(args: string[], env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const clean: Record<string, string> = { PATH: process.env.PATH ?? '', ...env };
    execFile(
      process.execPath,
      ['dist/registry-bridge.mjs', ...args],
      { env: clean, timeout: 60_000 },
      (err, _o, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }),
    );
  });
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rb-nokube-'));
  await writeFile(join(home, 'registry.json'), JSON.stringify({ services: [] }));
  config = join(home, 'bridge.yaml');
  await writeFile(
    config,
    [
      'sources:',
      '  - name: s',
      '    kind: static',
      `    static: { path: ${JSON.stringify(join(home, 'registry.json'))} }`,
      // The ZooKeeper source of the original report: it must never get to start.
      '  - name: zk',
      '    kind: zookeeper',
      '    zookeeper: { connect: "127.0.0.1:1", requestTimeout: 1s }',
      'sink: { kind: kube }',
      'server: { address: 127.0.0.1, port: 0 }',
      '',
    ].join('\n'),
  );
});
afterAll(async () => rm(home, { recursive: true, force: true }));

describe('no kubeconfig found', () => {
  it(
    'names every place looked at, exit 2, one line of cause (sync --once and continuous)',
    { timeout: 60_000 },
    async () => {
      for (const once of [true, false]) {
        const r = await runBinary(['sync', ...(once ? ['--once'] : []), '-c', config], { HOME: home });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toBe(
          'registry-bridge: invalid configuration:\n' +
            `sink.kubeconfig: no kubeconfig found: no --kubeconfig or sink.kubeconfig, KUBECONFIG is not set, ${join(home, '.kube', 'config')} ` +
            'does not exist, and there is no in-cluster service account (/var/run/secrets/kubernetes.io/serviceaccount/token)\n',
        );
      }
    },
  );

  it('KUBECONFIG naming only missing files', () => {
    expect(() => loadKubeConfig({ env: { KUBECONFIG: '/nonexistent/a:/nonexistent/b' } })).toThrow(
      'sink.kubeconfig: no file of KUBECONFIG=/nonexistent/a:/nonexistent/b exists',
    );
  });

  it('finds ~/.kube/config, then the service account, in kubectl order', async () => {
    const kubeDir = join(home, '.kube');
    await mkdir(kubeDir, { recursive: true });
    const doc = (server: string) =>
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${server}"}}]\n` +
      'users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n';
    await writeFile(join(kubeDir, 'config'), doc('https://home.example:6443'));
    expect(loadKubeConfig({ env: { HOME: home } }).getCurrentCluster()?.server).toBe('https://home.example:6443');
    await writeFile(join(home, 'other'), doc('https://other.example:6443'));
    expect(loadKubeConfig({ env: { HOME: home, KUBECONFIG: join(home, 'other') } }).getCurrentCluster()?.server).toBe(
      'https://other.example:6443',
    );
    await rm(join(kubeDir, 'config'));
  });

  it('a plain-HTTP cluster without insecure-skip-tls-verify is named, not left to fail at the first call', async () => {
    const file = join(home, 'http.kubeconfig');
    await writeFile(
      file,
      'apiVersion: v1\nkind: Config\nclusters: [{name: local, cluster: {server: "http://127.0.0.1:8080"}}]\n' +
        'users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: local, user: u}}]\ncurrent-context: x\n',
    );
    expect(() => loadKubeConfig({ kubeconfig: file })).toThrow(
      'sink.kubeconfig: cluster "local" has the plain-HTTP server http://127.0.0.1:8080: the Kubernetes client refuses plain HTTP unless the cluster sets insecure-skip-tls-verify: true',
    );
  });
});
