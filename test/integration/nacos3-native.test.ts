/**
 * Nacos 3 without the v1 API: a Java Nacos 3.1 of this file's own (other ports) started with
 * `nacos.core.api.compatibility.client.enabled=false`, so its v1 client API answers 410 as a
 * Nacos 3.2 server refuses it, and with auth on. Instances are registered through the server's
 * v3 admin API. The bridge must reach the same golden ServiceEntries as the v1 suite
 * (nacos-adapter.test.ts, fixtures/nacos/golden/integration.yaml) in `sync --once` and in
 * continuous mode, and fuzzy watch must announce a new service long before the names poll.
 * Last, the official Nacos 3 Java client (nacos-client 3.2.x, test/peers/clients.ts variant
 * 'nacos3') registers against it with auth, and the bridge must publish what it registered.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { nacosAdapter } from '../../adapters/nacos/index.js';
import { main } from '../../src/cli/main.js';
import { secretResolver } from '../../src/config/secret.js';
import { BridgeMetrics } from '../../src/metrics.js';
import type { SourceAdapter } from '../../src/sources/adapter.js';
import { startClient } from '../peers/clients.js';
import { hasPeer } from '../peers/endpoints.js';
import { versionEntry } from '../peers/lib/paths.js';
import { eventually } from './eventually.js';
import { GOLDEN_YAML, GROUPS, NS_A, NS_B, registrations, type Reg } from './nacos-golden-registry.js';

const ADMIN = 'nacos';
const USER = 'rb-reader';
const PASSWORD = 'Rb3-native-pw-51d0e7';
const HTTP_PORT = Number(process.env.RB_NACOS3_PORT || 8888);

let handle: { stop(): Promise<void>; endpoints: Record<string, string> } | undefined;
let base: string;
let url: string;
let token: string;
let dir: string;

/** One call of the server's v3 admin API as the built-in admin; throws on anything but success. */
async function admin(method: string, path: string, params: Record<string, string>): Promise<unknown> {
  const res = await fetch(`${base}${path}${method === 'POST' ? '' : `?${new URLSearchParams(params)}`}`, {
    method,
    headers: {
      accessToken: token,
      ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    },
    ...(method === 'POST' ? { body: new URLSearchParams(params) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  if (res.status !== 200 || !/"code":\s*0/.test(body)) throw new Error(`${method} ${path}: ${res.status} ${body}`);
  return (JSON.parse(body) as { data: unknown }).data;
}

const instanceParams = (r: Reg) => ({
  namespaceId: r.ns,
  groupName: r.group,
  serviceName: r.service,
  ip: r.ip,
  port: String(r.port),
  ephemeral: 'false',
  clusterName: 'DEFAULT',
});

/** A persistent instance as the test means it: no health checker, health and weight as registered. */
async function register(r: Reg): Promise<void> {
  const form = {
    ...instanceParams(r),
    healthy: String(r.healthy ?? true),
    enabled: String(r.enabled ?? true),
    weight: String(r.weight ?? 1),
    metadata: JSON.stringify(r.metadata ?? {}),
  };
  await admin('POST', '/v3/admin/ns/instance', form);
  // An unhealthy one is left to the server's TCP check (nothing listens there), and its service
  // gets no cluster metadata: with metadata, Nacos answers a service whose instances are all
  // down with every instance marked healthy (protect threshold), as it tells its own clients.
  if (r.healthy === false) return;
  // The server health-checks persistent instances (TCP to made-up addresses): switch that off.
  await admin('PUT', '/v3/admin/ns/cluster', {
    namespaceId: r.ns,
    groupName: r.group,
    serviceName: r.service,
    clusterName: 'DEFAULT',
    checkPort: '80',
    useInstancePort4Check: 'true',
    healthChecker: JSON.stringify({ type: 'NONE' }),
  });
  // Registered again: the health as registered (the checker may have marked it down meanwhile).
  await admin('POST', '/v3/admin/ns/instance', form);
}

async function deregister(r: Reg): Promise<void> {
  await admin('DELETE', '/v3/admin/ns/instance', instanceParams(r));
}

async function hostsOf(r: Reg): Promise<{ ip: string; healthy?: boolean; enabled?: boolean }[]> {
  // Persistent instances are written through Raft: right after a registration the server may
  // not know the cluster yet ("cluster DEFAULT is not found"), which reads as none here.
  const data = (await admin('GET', '/v3/admin/ns/instance/list', {
    namespaceId: r.ns,
    groupName: r.group,
    serviceName: r.service,
  }).catch((err: Error) => {
    if (/cluster .* is not found/.test(err.message)) return [];
    throw err;
  })) as { ip: string; healthy?: boolean; enabled?: boolean }[] | null;
  return data ?? [];
}

function capture(shutdown?: AbortSignal) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (s: string) => (out.push(s), true) },
      stderr: { write: (s: string) => (err.push(s), true) },
      env: { RB_NACOS3_PASSWORD: PASSWORD },
      ...(shutdown ? { shutdown } : {}),
    } as never,
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

function configYaml(extra: string[] = []): string {
  return [
    'sources:',
    '  - name: nacos',
    '    kind: nacos',
    '    targetNamespace: mesh',
    '    nacos:',
    `      servers: [${url}]`,
    `      namespaces: [${NS_A}, ${NS_B}]`,
    `      groups: [${GROUPS.join(', ')}]`,
    `      auth: { username: ${USER}, password: { env: RB_NACOS3_PASSWORD } }`,
    ...extra,
  ].join('\n');
}

function makeAdapter(over: Record<string, unknown>, logs: string[]): SourceAdapter {
  const config = nacosAdapter.configSchema.parse({
    servers: [url],
    namespaces: [NS_A, NS_B],
    groups: [...GROUPS, 'LATE'],
    auth: { username: USER, password: { env: 'RB_NACOS3_PASSWORD' } },
    ...over,
  });
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(s) });
  return nacosAdapter.create(config, {
    source: 'nacos',
    logger,
    baseDir: dir,
    resolveSecret: secretResolver({ RB_NACOS3_PASSWORD: PASSWORD }, dir),
    metrics: new BridgeMetrics(new Registry()),
  });
}

describe.skipIf(!hasPeer('nacos') || process.env.RB_NACOS3_TESTS === '0')(
  'Nacos 3.1 with the v1 client API refused (410) and auth on',
  () => {
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rb-nacos3-it-'));
      const { start } = await import('../peers/nacos.js');
      handle = await start({
        dataDir: join(dir, 'server'),
        port: HTTP_PORT,
        consolePort: HTTP_PORT + 10_000,
        console: false,
        v1ClientApi: false,
        auth: { username: USER, password: PASSWORD },
      });
      base = handle.endpoints.http!;
      url = base.replace(/\/nacos$/, '');
      const login = await fetch(`${base}/v3/auth/user/login`, {
        method: 'POST',
        body: new URLSearchParams({ username: ADMIN, password: PASSWORD }),
      });
      token = ((await login.json()) as { accessToken: string }).accessToken;
      for (const ns of [NS_A, NS_B])
        await admin('POST', '/v3/admin/core/namespace', { namespaceId: ns, namespaceName: ns });
      for (const r of registrations) await register(r);
      for (const r of registrations)
        await eventually(
          async () =>
            (await hostsOf(r)).some(
              (h) => h.ip === r.ip && h.healthy === (r.healthy ?? true) && h.enabled === (r.enabled ?? true),
            ),
          `${r.service} ${r.ip} registered`,
        );
    }, 300_000);
    afterAll(async () => {
      await handle?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('refuses the v1 client API (the premise)', async () => {
      const res = await fetch(`${base}/v1/ns/service/list?pageNo=1&pageSize=10&namespaceId=${NS_A}`);
      expect(res.status).toBe(410);
    });

    it('sync --once reaches the golden ServiceEntries of the v1 suite over gRPC, and logs the path once', async () => {
      const cfg = join(dir, 'once.yaml');
      await writeFile(cfg, configYaml());
      for (const r of registrations)
        expect(
          (await hostsOf(r)).find((h) => h.ip === r.ip),
          `the server's own view of ${r.service} ${r.ip}`,
        ).toMatchObject({ healthy: r.healthy ?? true, enabled: r.enabled ?? true });
      const c = capture();
      const code = await main(['sync', '--once', '-c', cfg, '-o', 'yaml'], c.io);
      expect(c.err()).not.toMatch(/"level":50/);
      expect(code).toBe(0);
      expect(c.out()).toBe(await readFile(join(import.meta.dirname, GOLDEN_YAML), 'utf8'));
      expect(c.err().match(/nacos read path: gRPC/g)).toHaveLength(1);
      expect(c.err()).not.toContain(PASSWORD);
    });

    it('groups ["*"] (read permission) and namespaces ["*"] (the admin user) reach the same golden ServiceEntries', async () => {
      const golden = await readFile(join(import.meta.dirname, GOLDEN_YAML), 'utf8');
      const allGroups = join(dir, 'all-groups.yaml');
      await writeFile(allGroups, configYaml().replace(`groups: [${GROUPS.join(', ')}]`, 'groups: ["*"]'));
      const c = capture();
      expect(await main(['sync', '--once', '-c', allGroups, '-o', 'yaml'], c.io), c.err().slice(-2000)).toBe(0);
      expect(c.out()).toBe(golden);

      const everything = join(dir, 'everything.yaml');
      const asAdmin = configYaml()
        .replace(`groups: [${GROUPS.join(', ')}]`, 'groups: ["*"]')
        .replace(`namespaces: [${NS_A}, ${NS_B}]`, 'namespaces: ["*"]');
      await writeFile(everything, asAdmin.replace(`username: ${USER}`, `username: ${ADMIN}`));
      const a = capture();
      expect(await main(['sync', '--once', '-c', everything, '-o', 'yaml'], a.io), a.err().slice(-2000)).toBe(0);
      expect(a.out()).toBe(golden);

      // Listing namespaces is the admin role's: a reader gets an error that says so.
      await writeFile(everything, asAdmin);
      const r = capture();
      expect(await main(['sync', '--once', '-c', everything, '-o', 'yaml'], r.io)).toBe(1);
      expect(r.err()).toMatch(
        /namespace\/list \(namespaces: \[\\"\*\\"\]\) with HTTP 403: listing namespaces needs a user with the admin role/,
      );
    });

    it('api: v1 against it names the refused v1 API (what the gRPC path replaces)', async () => {
      const cfg = join(dir, 'v1.yaml');
      await writeFile(cfg, configYaml(['      api: v1']));
      const c = capture();
      expect(await main(['sync', '--once', '-c', cfg, '-o', 'yaml'], c.io)).toBe(1);
      expect(c.err()).toMatch(/answered HTTP 410/);
    });

    it('continuous mode writes the same ServiceEntries as sync --once, then follows a new service and its deletion', async () => {
      const onceDir = join(dir, 'once-files');
      const onceCfg = join(dir, 'once-files.yaml');
      await writeFile(onceCfg, configYaml([`sink: {kind: files, dir: ${onceDir}}`]));
      expect(await main(['sync', '--once', '-c', onceCfg], capture().io)).toBe(0);
      const read = async (d: string) => {
        const names = (await readdir(join(d, 'mesh')).catch(() => [] as string[])).sort();
        return Promise.all(names.map(async (n) => [n, await readFile(join(d, 'mesh', n), 'utf8')] as const));
      };
      const once = await read(onceDir);
      expect(once.length).toBeGreaterThanOrEqual(4);

      const liveDir = join(dir, 'live-files');
      const liveCfg = join(dir, 'live-files.yaml');
      await writeFile(
        liveCfg,
        configYaml([`sink: {kind: files, dir: ${liveDir}}`, 'server: {address: 127.0.0.1, port: 0}']),
      );
      const ac = new AbortController();
      const c = capture(ac.signal);
      const running = main(['sync', '-c', liveCfg], c.io);
      const late: Reg = { ns: NS_B, group: 'GROUP_B', service: 'late-arrival', ip: '127.2.1.1', port: 8080 };
      try {
        await eventually(async () => JSON.stringify(await read(liveDir)) === JSON.stringify(once), 'continuous = once');
        await register(late);
        await eventually(
          async () => (await read(liveDir)).some(([n]) => n.includes('late-arrival')),
          'the new service written',
        );
        // An emptied service still exists and is kept; a deleted one is removed.
        await deregister(late);
        await eventually(
          async () =>
            admin('DELETE', '/v3/admin/ns/service', {
              namespaceId: late.ns,
              groupName: late.group,
              serviceName: late.service,
            }).then(
              () => true,
              () => false,
            ),
          'the emptied service deleted on the server',
        );
        await eventually(
          async () => !(await read(liveDir)).some(([n]) => n.includes('late-arrival')),
          'the deleted service removed',
        );
        expect(JSON.stringify(await read(liveDir))).toBe(JSON.stringify(once));
      } finally {
        ac.abort();
        expect(await running, c.err().slice(-3000)).toBe(0);
      }
      expect(c.err()).toMatch(/nacos new services: announced by fuzzy watch/);
      expect(c.err()).not.toContain(PASSWORD);
    });

    it('fuzzy watch hints a new service long before the names poll would, and subscribes it at once', async () => {
      const logs: string[] = [];
      // The names poll every 60 s: a hint within the 20 s below comes from the fuzzy watch.
      const adapter = makeAdapter({ serviceListInterval: 60_000, relistInterval: 120_000 }, logs);
      const ac = new AbortController();
      const fresh: Reg = { ns: NS_A, group: 'LATE', service: `fuzzy-${Date.now()}`, ip: '127.4.0.1', port: 8080 };
      const second: Reg = { ...fresh, ip: '127.4.0.2' };
      let armed = 0;
      const hints: { at: number; keys: string[] }[] = [];
      try {
        await adapter.watch!((keys) => {
          if (armed > 0) hints.push({ at: Date.now() - armed, keys: (keys ?? []).map((k) => k.name) });
        }, ac.signal);
        await adapter.list(ac.signal);
        await eventually(
          async () => logs.some((l) => l.includes('announced by fuzzy watch') && l.includes('"group":"LATE"')),
          'fuzzy watch live for LATE',
        );
        armed = Date.now();
        await register(fresh);
        await eventually(
          async () => hints.some((h) => h.keys.includes(fresh.service)),
          'hint of the new service',
          20_000,
        );
        const first = hints.find((h) => h.keys.includes(fresh.service))!;
        console.log(`[nacos 3.1, v1 off] new service → hint by fuzzy watch: ${first.at} ms (names poll: 60 s)`);
        // Its next instance is pushed by the subscription made on the announcement.
        const before = hints.length;
        await register(second);
        await eventually(
          async () => hints.slice(before).some((h) => h.keys.includes(fresh.service)),
          'hint of the second instance',
          20_000,
        );
        const snap = await adapter.readServices!(
          [{ source: 'nacos', namespace: NS_A, group: 'LATE', name: fresh.service }],
          ac.signal,
        );
        expect(snap.services[0]?.instances.map((i) => i.address).sort()).toEqual(['127.4.0.1', '127.4.0.2']);
      } finally {
        ac.abort();
        await adapter.close();
        await deregister(fresh).catch(() => undefined);
        await deregister(second).catch(() => undefined);
      }
      expect(logs.join('')).not.toContain(PASSWORD);
    });

    // Last in this file: its namespace would otherwise show in namespaces ["*"] above.
    it('the official Nacos 3 Java client (nacos-client 3.2) registers with auth; sync --once publishes its endpoints', async () => {
      const ns = 'rb-it-java3';
      const group = 'JAVA3';
      await admin('POST', '/v3/admin/core/namespace', { namespaceId: ns, namespaceName: ns });
      const client = await startClient(
        [
          'nacos',
          '--server',
          `127.0.0.1:${HTTP_PORT}`,
          '--username',
          USER,
          '--instance',
          `${ns}/${group}/java3-orders/127.3.0.1:8080;weight=1;protocol=http;version=v1`,
          '--instance',
          `${ns}/${group}/java3-orders/127.3.0.2:8080;weight=3;protocol=http;version=v2;zone=z2`,
        ],
        { variant: 'nacos3', env: { RB_CLIENT_NACOS_PASSWORD: PASSWORD } },
      );
      try {
        // The JVM runs the Nacos 3 client, not the 2.x one of the default build.
        const { nacosClient } = (await versionEntry('registry-clients-nacos3')) as unknown as { nacosClient: string };
        expect(nacosClient).toMatch(/^3\./);
        expect(client.output()).toContain(`nacos-client ${nacosClient}\n`);
        const cfg = join(dir, 'java3.yaml');
        await writeFile(
          cfg,
          configYaml()
            .replace(`namespaces: [${NS_A}, ${NS_B}]`, `namespaces: [${ns}]`)
            .replace(`groups: [${GROUPS.join(', ')}]`, `groups: [${group}]`),
        );
        const c = capture();
        expect(await main(['sync', '--once', '-c', cfg, '-o', 'json'], c.io), c.err().slice(-2000)).toBe(0);
        const list = JSON.parse(c.out()) as {
          items: { metadata: { name: string; annotations: Record<string, string> }; spec: Record<string, unknown> }[];
        };
        expect(list.items.map((i) => i.metadata.name)).toEqual([`java3-orders.java3.${ns}.nacos`]);
        const [se] = list.items;
        expect(se!.metadata.annotations['registry-bridge.io/service']).toBe(`nacos/${ns}/${group}/java3-orders`);
        expect(se!.spec).toEqual({
          hosts: [`java3-orders.java3.${ns}.nacos`],
          ports: [{ name: 'http-8080', number: 8080, protocol: 'HTTP' }],
          location: 'MESH_INTERNAL',
          resolution: 'STATIC',
          endpoints: [
            { address: '127.3.0.1', labels: { protocol: 'http', version: 'v1' }, weight: 33 },
            { address: '127.3.0.2', labels: { protocol: 'http', version: 'v2', zone: 'z2' }, weight: 100 },
          ],
        });
        expect(c.err()).not.toContain(PASSWORD);
      } finally {
        await client.stop();
      }
      expect(client.output()).toContain('STOPPED');
      expect(client.output()).not.toContain(PASSWORD);
    }, 180_000);
  },
);
