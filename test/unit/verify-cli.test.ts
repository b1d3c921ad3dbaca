import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capture, runCli } from './cli-harness.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'istiod');

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
  // the 1.19 fixture without its malformed element (a local file with one fails closed: exit 2)
  const clean = (
    JSON.parse(await readFile(join(fixtures, '1.19', 'registryz.json'), 'utf8')) as { hostname: string }[]
  ).filter((e) => e.hostname !== 'broken.example.com');
  await writeFile(join(dir, 'clean-registryz.json'), JSON.stringify(clean));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const captured = join(fixtures, '1.31-alpha.b01690e6db7d');
const f = (name: string) => join(dir, name);
const envoyDump = join(fixtures, 'envoy-admin-1.24', 'config_dump.json');
/** `verify` or `trace HOST` with no cluster, checking what `desired` (a file in the test's dir) holds. */
const noKube = (command: string[], desired: string) => [...command, '--no-kube', '--desired', f(desired)];
/** The saved 1.31 proxy: its config dump and syncz. */
const capturedProxy = () => [
  '--config-dump',
  join(captured, 'config_dump.json'),
  '--syncz',
  join(captured, 'syncz.json'),
];

describe('registry-bridge verify, offline (saved registryz + Envoy config_dump, no cluster)', () => {
  const offline = (desired: string) => [
    ...noKube(['verify'], desired),
    '--registryz',
    f('clean-registryz.json'),
    '--config-dump',
    envoyDump,
    '--timeout',
    '0',
  ];

  it('exit 0 when registryz and the proxy hold what was written; kube and sync are skipped', async () => {
    const c = await runCli(offline('good.yaml'));
    expect(c.err()).toBe('');
    expect(c.code).toBe(0);
    expect(c.out()).toContain('✓ www.example.com  (ServiceEntry default/www-example-com)');
    expect(c.out()).toMatch(/kube\s+- skipped/);
    expect(c.out()).toMatch(/istiod\s+✓ ok/);
    expect(c.out()).toMatch(/proxy\s+✓ ok/);
  });

  it('exit 5 with the reason at istiod and proxy when the port differs; -o json', async () => {
    const c = await runCli([...offline('moved.yaml'), '-o', 'json']);
    expect(c.code).toBe(5);
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
    const c = await runCli(['verify', '--no-kube', '--registryz', join(fixtures, '1.19', 'registryz.json')]);
    expect(c.code).toBe(2);
    expect(c.err()).toMatch(/nothing to compare with/);
  });
});

describe('registry-bridge verify -c', () => {
  it('reads the registries once and verifies what the bridge would write', async () => {
    const c = await runCli([
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
    ]);
    const report = JSON.parse(c.out()) as { hosts: { host: string; hops: { hop: string; detail: string[] }[] }[] };
    expect(report.hosts.length).toBeGreaterThan(0);
    expect(c.code).toBe(5);
    for (const h of report.hosts)
      expect(h.hops.find((x) => x.hop === 'istiod')!.detail.join(' ')).toMatch(/not in istiod's registry|differs/);
  });
});

// ---------------------------------------------------------------------------------------------
// Fail closed (issue 23.3) and offline ergonomics (issue 19.3)

/** A fake terminal stdout for trace's progress line. */
function captureTty() {
  const c = capture();
  (c.io as { stdout: { isTTY?: boolean } }).stdout.isTTY = true;
  return c;
}

describe('verify fails closed: nothing to check is never a pass', () => {
  beforeAll(async () => {
    await writeFile(f('empty-configs.json'), '{"configs": []}');
    await writeFile(f('empty-array.json'), '[]');
    await writeFile(f('bad.yaml'), 'apiVersion: v1\nkind: ServiceEntry\nmetadata: {name: x\n  spec: [\n');
    await writeFile(f('empty.yaml'), '\n# nothing here\n');
    await writeFile(f('array.yaml'), '- kind: ServiceEntry\n- kind: ServiceEntry\n');
    await writeFile(f('configmap.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\n');
    await writeFile(
      f('wrong-types-registryz.json'),
      JSON.stringify([{ hostname: 'www.example.com', ports: [{ port: '80', protocol: 'HTTP' }], Resolution: 'DNS' }]),
    );
  });
  const base = (desired: string) => [...noKube(['verify'], desired), '--timeout', '0'];

  it.each([
    ['{"configs": []}', 'empty-configs.json'],
    ['[]', 'empty-array.json'],
  ])('--config-dump of %s: the proxy hop is not ✓, the file is named, exit 2', async (_, file) => {
    const c = await runCli([...base('good.yaml'), '--config-dump', f(file)]);
    expect(c.code).toBe(2);
    expect(c.out()).not.toMatch(/proxy\s+✓/);
    expect(c.out()).toMatch(/proxy\s+! error\s.*no --config-dump could be read/);
    expect(c.out()).toContain('0/1 hosts propagated');
    expect(c.err()).toBe(`registry-bridge: ${f(file)}: holds no clusters, listeners or routes: nothing to check\n`);
  });

  it.each([
    ['invalid YAML', 'bad.yaml', /bad\.yaml:3:18: not YAML: Implicit keys need to be on a single line$/m],
    ['an empty file', 'empty.yaml', /empty\.yaml: holds no ServiceEntry \(empty\): nothing to verify/],
    ['a YAML sequence', 'array.yaml', /array\.yaml: is a YAML sequence; expected ServiceEntry documents/],
    ['no ServiceEntry', 'configmap.yaml', /configmap\.yaml: holds no ServiceEntry \(1 object\(s\) of other kinds\)/],
    ['a missing file', 'absent.yaml', /absent\.yaml: no such file \(--desired\)/],
  ])('--desired that is %s: exit 2 naming the file, never "0/0 hosts propagated"', async (_, file, message) => {
    const c = await runCli([...base(file), '--registryz', f('clean-registryz.json')]);
    expect(c.code).toBe(2);
    expect(c.err()).toMatch(message);
    expect(c.err().split('\n').filter(Boolean)).toHaveLength(1);
    expect(c.out()).toBe('');
  });

  it('a registryz element of the checked host with wrong types: reported at the istiod hop and on stderr, exit 2', async () => {
    const c = await runCli([...base('good.yaml'), '--registryz', f('wrong-types-registryz.json')]);
    expect(c.code).toBe(2);
    expect(c.out()).toMatch(
      /istiod\s+! error\s.*registryz element 0 \(host www\.example\.com\) skipped: ports\.0\.port: /,
    );
    expect(c.err()).toMatch(/wrong-types-registryz\.json: registryz element 0 \(host www\.example\.com\) skipped/);
  });

  it('a registryz with a malformed element of another host: the rest is checked, the element named, exit 2', async () => {
    const c = await runCli([...base('good.yaml'), '--registryz', join(fixtures, '1.19', 'registryz.json')]);
    expect(c.code).toBe(2);
    expect(c.out()).toMatch(/istiod\s+✓ ok/);
    expect(c.err()).toMatch(/registryz element 2 \(host broken\.example\.com\) skipped: ports: /);
  });
});

describe('verify and trace offline: files, lookups, progress', () => {
  beforeAll(async () => {
    const one = (JSON.parse(await readFile(join(captured, 'registryz.json'), 'utf8')) as { hostname: string }[]).find(
      (e) => e.hostname === 'www.baidu.com',
    );
    await writeFile(f('one-object.json'), JSON.stringify(one, null, 2));
    const full = await readFile(join(captured, 'registryz.json'), 'utf8');
    await writeFile(f('truncated.json'), full.slice(0, 700));
    await writeFile(
      f('shop.yaml'),
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop-2bf667.verify.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
    - { number: 80, name: http, protocol: HTTP }
    - { number: 9443, name: tls, protocol: TLS }
`,
    );
  });

  it('--host H alone against a registryz: found, with ports, resolution, location and addresses (exit 0)', async () => {
    const c = await runCli([
      'verify',
      '--no-kube',
      '--host',
      'www.baidu.com',
      '--registryz',
      join(captured, 'registryz.json'),
    ]);
    expect(c.code).toBe(0);
    expect(c.out()).toContain(`✓ www.baidu.com  in ${join(captured, 'registryz.json')}`);
    expect(c.out()).toMatch(/from\s+ServiceEntry default\/smoke-baidu-b4dba1 \(registry External\)/);
    expect(c.out()).toMatch(/ports\s+80\/HTTP \(http\)/);
    expect(c.out()).toMatch(/resolution\s+DNS/);
    expect(c.out()).toMatch(/location\s+MESH_INTERNAL/);
    expect(c.out()).toMatch(/addresses\s+2001:2::a, 240\.240\.0\.10/);
    expect(c.out()).toContain('1/1 hosts found');
  });

  it('--host H alone: not there is exit 5; -o json; a config dump says which clusters, routes, listeners', async () => {
    const c = await runCli([
      'verify',
      '--no-kube',
      '--host',
      'shop-2bf667.verify.example.com',
      '--config-dump',
      join(captured, 'config_dump.json'),
      '--host',
      'absent.example.com',
      '-o',
      'json',
    ]);
    expect(c.code).toBe(5);
    const out = JSON.parse(c.out()) as {
      host: string;
      found: boolean;
      sources: { clusters: { name: string; type: string }[]; listeners: { serverNames: string[] }[] }[];
    }[];
    expect(out.map((h) => [h.host, h.found])).toEqual([
      ['shop-2bf667.verify.example.com', true],
      ['absent.example.com', false],
    ]);
    expect(out[0]!.sources[0]!.clusters.map((x) => `${x.name} ${x.type}`)).toEqual([
      'outbound|80||shop-2bf667.verify.example.com STRICT_DNS',
      'outbound|9443||shop-2bf667.verify.example.com STRICT_DNS',
    ]);
    expect(out[0]!.sources[0]!.listeners[0]!.serverNames).toEqual(['shop-2bf667.verify.example.com']);
  });

  it('a registryz that is one service object, not an array, is accepted', async () => {
    const c = await runCli(['verify', '--no-kube', '--host', 'www.baidu.com', '--registryz', f('one-object.json')]);
    expect(c.code).toBe(0);
    expect(c.out()).toMatch(/resolution\s+DNS/);
  });

  it('a truncated registryz: exit 2 with the file, line and column; no raw bytes, one line; no waiting', async () => {
    // --timeout 1h: an offline check never waits for a file to change
    const c = await runCli([...noKube(['verify'], 'good.yaml'), '--registryz', f('truncated.json'), '--timeout', '1h']);
    expect(c.code).toBe(2);
    const err = c.err().split('\n').filter(Boolean);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(
      new RegExp(
        `^registry-bridge: ${f('truncated.json')}:\\d+:\\d+: not JSON: unterminated string|unexpected end of input`,
      ),
    );
    expect(err[0]).not.toContain('"Attributes"');
    // the table keeps one line per hop
    const istiodRow = c
      .out()
      .split('\n')
      .find((l) => l.trimStart().startsWith('istiod'))!;
    expect(istiodRow).toMatch(/! error .*truncated\.json:\d+:\d+: not JSON/);
  });

  it('each bad --config-dump is named on its own and the good one is still checked', async () => {
    const c = await runCli([
      ...noKube(['verify'], 'good.yaml'),
      '--config-dump',
      f('truncated.json'),
      '--config-dump',
      envoyDump,
      '--config-dump',
      f('absent.json'),
      '--timeout',
      '0',
    ]);
    expect(c.code).toBe(2);
    expect(c.out()).toMatch(/proxy\s+✓ ok/);
    const err = c.err().split('\n').filter(Boolean);
    expect(err).toHaveLength(2);
    expect(err[0]).toMatch(/truncated\.json:\d+:\d+: not JSON: /);
    expect(err[1]).toMatch(/absent\.json: no such file \(--config-dump\)/);
  });

  it('--syncz FILE offline: the sync hop is checked against the file (the one proxy in it)', async () => {
    const c = await runCli([...noKube(['verify'], 'shop.yaml'), ...capturedProxy()]);
    expect(c.out()).toMatch(/proxy\s+✓ ok/);
    expect(c.out()).toMatch(/sync\s+✓ ok/);
    expect(c.code).toBe(0);
    const other = await runCli([
      ...noKube(['verify'], 'shop.yaml'),
      '--syncz',
      join(captured, 'syncz.json'),
      '--proxy-id',
      'gone.default',
    ]);
    expect(other.code).toBe(5);
    expect(other.out()).toMatch(/sync\s+✗ missing\s.*proxy gone\.default is not connected/);
  });

  it('--host H against an istiod that does not answer: one try, exit 6 naming the URL', async () => {
    // port 9 (discard) on loopback: nothing listens, the connection is refused at once
    const c = await runCli(['verify', '--no-kube', '--host', 'www.baidu.com', '--istiod', 'http://127.0.0.1:9']);
    expect(c.code).toBe(6);
    expect(c.err()).toMatch(/^registry-bridge: GET http:\/\/127\.0\.0\.1:9\/debug\/registryz: /);
  });

  it('--istiod given a file path: exit 2 naming the flag', async () => {
    const c = await runCli([...noKube(['verify'], 'good.yaml'), '--istiod', 'registryz.json']);
    expect(c.code).toBe(2);
    expect(c.err()).toMatch(/--istiod: "registryz\.json" is not an http\(s\) URL/);
  });

  it('trace offline: plain lines per hop (no progress line off a terminal), one round, exit 0', async () => {
    const c = await runCli([
      ...noKube(['trace', 'shop-2bf667.verify.example.com'], 'shop.yaml'),
      ...capturedProxy(),
      '--timeout',
      '1h',
    ]);
    expect(c.code).toBe(0);
    const lines = c.out().split('\n');
    expect(lines[0]).toMatch(/^✓ proxy\s+\+\S+\s+config dump$/);
    expect(lines[1]).toMatch(/^✓ sync\s+\+\S+\s+\S+syncz\.json$/);
    expect(c.out()).not.toContain('\r');
  });

  it('trace on a terminal: a progress line; a hop that fails for good stops it at once (exit 5, not the timeout)', async () => {
    const c = await runCli(
      [
        ...noKube(['trace', 'www.example.com'], 'moved.yaml'),
        '--registryz',
        f('clean-registryz.json'),
        '--timeout',
        '1h',
      ],
      captureTty(),
    );
    expect(c.code).toBe(5);
    expect(c.out()).toContain('\r\u001b[Kwww.example.com  kube -  istiod ✗  proxy -  sync -');
    expect(c.out()).toMatch(/istiod\s+✗ differs\s.*ports differ: istiod has 80\/HTTP, 443\/TLS/);
  });

  it('trace of a host the desired file lacks: exit 5 at once, no waiting for kube', async () => {
    const c = await runCli([
      ...noKube(['trace', 'other.example.com'], 'good.yaml'),
      '--registryz',
      f('clean-registryz.json'),
      '--timeout',
      '1h',
    ]);
    expect(c.code).toBe(5);
    expect(c.err()).toBe('registry-bridge: host other.example.com is not among the ServiceEntries the bridge wrote\n');
  });
});

describe('verify offline: unreadable syncz and config dump elements are named', () => {
  beforeAll(async () => {
    const syncz = JSON.parse(await readFile(join(captured, 'syncz.json'), 'utf8')) as Record<string, unknown>[];
    // the captured proxy's element with a nonce that is not a string, and an element with no proxy id
    await writeFile(f('bad-syncz.json'), JSON.stringify([{ ...syncz[0], route_acked: 3 }, { cluster_sent: 'x' }]));
    const dump = JSON.parse(await readFile(join(captured, 'config_dump.json'), 'utf8')) as {
      configs: { '@type': string; dynamicActiveClusters?: { cluster: Record<string, unknown> }[] }[];
    };
    const clusters = dump.configs.find((c) => c['@type'].endsWith('.ClustersConfigDump'))!.dynamicActiveClusters!;
    clusters[1]!.cluster.type = 7; // outbound|80||shop-2bf667.verify.example.com
    await writeFile(f('bad-dump.json'), JSON.stringify(dump));
  });

  it('--syncz with the checked proxy unreadable: the sync hop names the element, stderr names both, exit 2', async () => {
    const c = await runCli([
      ...noKube(['verify'], 'shop.yaml'),
      '--config-dump',
      join(captured, 'config_dump.json'),
      '--syncz',
      f('bad-syncz.json'),
      '--proxy-id',
      'registry-bridge-probe-366682.default',
    ]);
    expect(c.code).toBe(2);
    expect(c.out()).toMatch(
      /sync\s+! error\s.*syncz element 0 \(proxy registry-bridge-probe-366682\.default\) skipped: route_acked: /,
    );
    const err = c.err().split('\n').filter(Boolean);
    expect(err).toEqual([
      expect.stringMatching(
        /bad-syncz\.json: syncz element 0 \(proxy registry-bridge-probe-366682\.default\) skipped: route_acked: /,
      ),
      expect.stringMatching(/bad-syncz\.json: syncz element 1 skipped: proxy: /),
    ]);
  });

  it("--config-dump with the host's cluster unreadable: -o json carries the element's place, name and type, exit 2", async () => {
    const c = await runCli([...noKube(['verify'], 'shop.yaml'), '--config-dump', f('bad-dump.json'), '-o', 'json']);
    expect(c.code).toBe(2);
    const report = JSON.parse(c.out()) as { hosts: { hops: { hop: string; status: string; detail: string[] }[] }[] };
    const proxy = report.hosts[0]!.hops.find((h) => h.hop === 'proxy')!;
    expect(proxy.status).toBe('error');
    expect(proxy.detail).toEqual([
      expect.stringMatching(
        /^config dump cluster configs\[1\]\.dynamic_active_clusters\[1\]\.cluster \(outbound\|80\|\|shop-2bf667\.verify\.example\.com, type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster\) skipped: type: /,
      ),
    ]);
    expect(c.err()).toMatch(
      /bad-dump\.json: config dump cluster configs\[1\]\.dynamic_active_clusters\[1\]\.cluster \(outbound/,
    );
  });
});
