import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'istiod');

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (s: string) => (out.push(s), true) },
      stderr: { write: (s: string) => (err.push(s), true) },
      env: {},
    } as never,
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

const seYaml = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: www-example-com
  namespace: default
  labels: { app.kubernetes.io/managed-by: registry-bridge }
  annotations: { registry-bridge.io/content-hash: "0000000000000000" }
spec:
  hosts: [www.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
    - { number: ${port}, name: http, protocol: HTTP }
    - { number: 443, name: tls, protocol: TLS }
`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rb-verify-cli-'));
  await writeFile(join(dir, 'good.yaml'), seYaml(80));
  await writeFile(join(dir, 'moved.yaml'), seYaml(8080));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('registry-bridge verify, offline (saved registryz + Envoy config_dump, no cluster)', () => {
  const offline = (desired: string) => [
    'verify',
    '--no-kube',
    '--desired',
    join(dir, desired),
    '--registryz',
    join(fixtures, '1.19', 'registryz.json'),
    '--config-dump',
    join(fixtures, 'envoy-admin-1.24', 'config_dump.json'),
    '--timeout',
    '0',
  ];

  it('exit 0 when registryz and the proxy hold what was written; kube and sync are skipped', async () => {
    const c = capture();
    const code = await main(offline('good.yaml'), c.io);
    // the 1.19 fixture holds one malformed element on purpose: logged once, the rest checked
    expect(c.err()).toMatch(/"dropped":1.*unknown shape were skipped/);
    expect(code).toBe(0);
    expect(c.out()).toContain('✓ www.example.com  (ServiceEntry default/www-example-com)');
    expect(c.out()).toMatch(/kube\s+- skipped/);
    expect(c.out()).toMatch(/istiod\s+✓ ok/);
    expect(c.out()).toMatch(/proxy\s+✓ ok/);
  });

  it('exit 5 with the reason at istiod and proxy when the port differs; -o json', async () => {
    const c = capture();
    const code = await main([...offline('moved.yaml'), '-o', 'json'], c.io);
    expect(code).toBe(5);
    const report = JSON.parse(c.out()) as {
      ok: boolean;
      hosts: { hops: { hop: string; status: string; detail: string[] }[] }[];
    };
    expect(report.ok).toBe(false);
    const hops = Object.fromEntries(report.hosts[0]!.hops.map((h) => [h.hop, h]));
    expect(hops.istiod!.detail).toEqual([
      'ports differ: istiod has 80/HTTP, 443/TLS, the bridge wrote 443/TLS, 8080/HTTP',
    ]);
    expect(hops.proxy!.detail[0]).toBe(
      'no cluster outbound|8080||www.example.com (has outbound|80||www.example.com: port differs)',
    );
  });

  it('exit 2 when there is nothing to compare with', async () => {
    const c = capture();
    expect(await main(['verify', '--no-kube', '--registryz', join(fixtures, '1.19', 'registryz.json')], c.io)).toBe(2);
    expect(c.err()).toMatch(/nothing to compare with/);
  });
});

describe('registry-bridge verify -c', () => {
  it('reads the registries once and verifies what the bridge would write', async () => {
    const c = capture();
    const code = await main(
      [
        'verify',
        '-c',
        'examples/quickstart.yaml',
        '--no-kube',
        '--registryz',
        join(fixtures, '1.22', 'registryz.json'),
        '--timeout',
        '0',
        '-o',
        'json',
        '--log-level',
        'silent',
      ],
      c.io,
    );
    const report = JSON.parse(c.out()) as { hosts: { host: string; hops: { hop: string; detail: string[] }[] }[] };
    expect(report.hosts.length).toBeGreaterThan(0);
    expect(code).toBe(5);
    for (const h of report.hosts)
      expect(h.hops.find((x) => x.hop === 'istiod')!.detail.join(' ')).toMatch(/not in istiod's registry|differs/);
  });
});
