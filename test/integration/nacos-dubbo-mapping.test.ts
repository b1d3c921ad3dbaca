/**
 * Real Dubbo 3.3 providers registered in Nacos only with `register-mode=instance`: the bridge
 * maps the application-level registration to its interfaces through what Dubbo's metadata report
 * wrote into the Nacos config service (definitions `<interface>:<version>:<group>:provider:<app>`
 * in group `dubbo`), against the shared Java Nacos 3.1 (`/v3/admin/cs/config/list`) and r-nacos
 * (`/v1/cs/configs?search=blur`), with `dubbo.applicationLevel` merge | separate | ignore; a
 * provider of the same interface in ZooKeeper lands on the same entry; an unchanged provider
 * costs no config read on the next full read.
 *
 * Unique Nacos namespaces, applications, Dubbo groups, ZooKeeper root and kube namespaces per
 * run; the shared servers are never restarted.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nacosAdapter } from '../../adapters/nacos/index.js';
import { main } from '../../src/cli/main.js';
import { secretResolver } from '../../src/config/secret.js';
import { BridgeMetrics } from '../../src/metrics.js';
import type { RegistryService } from '../../src/model/service.js';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';
import { SOURCES_ANNOTATION } from '../../src/synth/index.js';
import { install, startClient, type ClientHandle } from '../peers/clients.js';
import type { ManagedHandle } from '../peers/lib/managed.js';
import { hasPeer, peer } from '../peers/endpoints.js';
import {
  capture,
  effectivePorts,
  freePorts,
  listEntries,
  removeNamespaces,
  until,
  withZk,
  zkChildren,
  zkRemoveTree,
  type Entry,
} from './real-clients-kit.js';

const id = randomBytes(3).toString('hex');
const IFACE = 'registrybridge.demo.GreetService';
const ROOT = `ndm-${id}`; // the ZooKeeper provider's registry group = its root
const hostOf = (version: string, group: string) =>
  `registrybridge.demo.greetservice.v-${version.replaceAll('.', '-')}.g-${group}.dubbo`;
const endpointsOf = (e: Entry | undefined) => (e?.spec.endpoints ?? []).map((ep) => effectivePorts(e!, ep)).sort();

type Server = 'nacos' | 'rnacos';

describe.skipIf(!hasPeer('nacos') || !hasPeer('rnacos') || !hasPeer('zookeeper') || !hasPeer('kube'))(
  'Dubbo register-mode=instance in Nacos: interfaces from the metadata report in the config service',
  () => {
    let dir: string;
    const running: ClientHandle[] = [];
    const targets: string[] = [];
    const kc = () => loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });

    async function entries(namespace: string): Promise<Entry[]> {
      return (await listEntries(kc(), namespace)).sort((a, b) => a.spec.hosts[0]!.localeCompare(b.spec.hosts[0]!));
    }

    async function target(name: string): Promise<string> {
      await kc()
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name } } });
      targets.push(name);
      return name;
    }

    async function dubbo(args: string[]): Promise<ClientHandle> {
      const h = await startClient(['dubbo', ...args]);
      running.push(h);
      return h;
    }

    /** A Dubbo provider registered in `server` (namespace `ns`) at application level only. */
    function nacosProvider(
      server: Server,
      o: { ns: string; app: string; version: string; group: string; dubbo: number; tri: number; mode: string },
    ): Promise<ClientHandle> {
      return dubbo([
        '--registry',
        // nacos.retry / retry-wait: Dubbo checks the server is UP 10 times 10 ms apart by default.
        `nacos://${peer(server).serverAddr}?namespace=${o.ns}&nacos.retry=60&nacos.retry-wait=1000`,
        '--app',
        o.app,
        '--version',
        o.version,
        '--group',
        o.group,
        '--dubbo-port',
        String(o.dubbo),
        '--tri-port',
        String(o.tri),
        '--register-mode',
        o.mode,
      ]);
    }

    /** The Dubbo definitions of `app` the server lists in its config service. */
    async function definitionsListed(server: Server, ns: string, app: string): Promise<string[]> {
      const base = peer(server).http;
      const q =
        server === 'nacos'
          ? `/v3/admin/cs/config/list?${new URLSearchParams({ namespaceId: ns, groupName: 'dubbo', dataId: `*:provider:${app}`, search: 'blur', pageNo: '1', pageSize: '100' }).toString()}`
          : `/v1/cs/configs?${new URLSearchParams({ tenant: ns, group: 'dubbo', dataId: `:provider:${app}`, search: 'blur', pageNo: '1', pageSize: '100' }).toString()}`;
      const res = await fetch(`${base}${q}`);
      if (res.status !== 200) return [];
      const body = (await res.json()) as {
        data?: { pageItems?: { dataId: string }[] };
        pageItems?: { dataId: string }[];
      };
      return (body.data?.pageItems ?? body.pageItems ?? []).map((i) => i.dataId);
    }

    /** The instances the server lists for a service (application-level: the application name). */
    async function nacosHostsOf(server: Server, ns: string, service: string): Promise<number> {
      const q = new URLSearchParams({
        namespaceId: ns,
        serviceName: `DEFAULT_GROUP@@${service}`,
        healthyOnly: 'false',
      });
      const res = await fetch(`${peer(server).http}/v1/ns/instance/list?${q.toString()}`);
      if (res.status !== 200) return 0;
      return ((await res.json()) as { hosts?: unknown[] }).hosts?.length ?? 0;
    }

    function nacosSourceYaml(server: Server, ns: string, mode: string, extra: string[] = []): string[] {
      return [
        `  - name: ${server}`,
        '    kind: nacos',
        '    nacos:',
        `      servers: [${peer(server).http}]`,
        `      namespaces: [${ns}]`,
        '      groups: [DEFAULT_GROUP]',
        `      dubbo: {applicationLevel: ${mode}}`,
        ...extra,
      ];
    }

    async function syncOnce(
      name: string,
      targetNs: string,
      sources: string[],
      expected: { code: number; args?: string[]; log?: RegExp } = { code: 0 },
    ): Promise<Entry[]> {
      const cfg = join(dir, `${name}.yaml`);
      await writeFile(
        cfg,
        [
          'sources:',
          ...sources.flatMap((l) => (/^ {4}kind: /.test(l) ? [l, `    targetNamespace: ${targetNs}`] : [l])),
          `sink: {kind: kube, kubeconfig: ${peer('kube').kubeconfig}}`,
          'server: {address: 127.0.0.1, port: 0}',
        ].join('\n'),
      );
      const c = capture();
      const code = await main(['sync', '--once', '-c', cfg, ...(expected.args ?? [])], c.io);
      expect(code, c.err()).toBe(expected.code);
      if (expected.log) expect(c.err()).toMatch(expected.log);
      return entries(targetNs);
    }

    beforeAll(async () => {
      await install((m) => process.stderr.write(`[registry-clients] ${m}\n`));
      dir = await mkdtemp(join(tmpdir(), 'rb-ndm-'));
      await withZk(
        (c) => new Promise<void>((resolve) => c.create(`/${ROOT}`, null, 0, () => resolve())), // exists: fine
      );
    }, 15 * 60_000);

    afterAll(async () => {
      await Promise.all(running.map((c) => c.kill()));
      await removeNamespaces(kc(), targets);
      await zkRemoveTree(`/${ROOT}`);
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    for (const server of ['nacos', 'rnacos'] as const)
      it(`${server}: register-mode=instance publishes <interface>.v-<version>.g-<group>.dubbo (merge), the application (separate), nothing (ignore)`, async () => {
        const ns = `ndm-${id}-${server}`;
        const app = `ndm-app-${id}-${server}`;
        const version = '4.0.0';
        const group = `ndm-${id}-${server}`;
        const host = hostOf(version, group);
        const [d, t] = (await freePorts(2)) as [number, number];
        const provider = await nacosProvider(server, { ns, app, version, group, dubbo: d, tri: t, mode: 'instance' });
        // What Dubbo wrote: the application-level registration and its definition in the
        // config service (the metadata report writes it asynchronously).
        await until(`${server}: application ${app} registered and its definition written`, async () => {
          const [hosts, defs] = await Promise.all([nacosHostsOf(server, ns, app), definitionsListed(server, ns, app)]);
          return hosts === 1 && defs.includes(`${IFACE}:${version}:${group}:provider:${app}`);
        });
        expect(await nacosHostsOf(server, ns, `providers:${IFACE}:${version}:${group}`)).toBe(0);

        const t1 = await target(`rb-ndm-${id}-${server}`);
        const merged = await syncOnce(`${server}-merge`, t1, nacosSourceYaml(server, ns, 'merge'));
        expect(merged.map((e) => e.spec.hosts[0])).toEqual([host]);
        expect(endpointsOf(merged[0])).toEqual([`TCP:${d} GRPC:${t}`]);
        expect(merged[0]!.spec.ports.map((p) => p.protocol).sort()).toEqual(['GRPC', 'TCP']);

        // separate: the application on its own entry; no interface entry (the merge's is deleted).
        const separate = await syncOnce(`${server}-separate`, t1, nacosSourceYaml(server, ns, 'separate'));
        expect(separate.map((e) => e.spec.hosts[0])).toHaveLength(1);
        expect(separate[0]!.spec.hosts[0]).toContain(app);
        expect(endpointsOf(separate[0])).toEqual([`TCP:${d} GRPC:${t}`]);

        // ignore: the application level is not published. The source then publishes nothing while
        // it owns an entry: a sharp shrink (policy.shrinkHold), which sync --once cannot tell from a
        // registry that lost its data. It keeps the entry and exits 4; --allow-shrink accepts it.
        const held = await syncOnce(`${server}-ignore`, t1, nacosSourceYaml(server, ns, 'ignore'), {
          code: 4,
          log: /would lose 1 of its 1 entries in one run.*--allow-shrink/,
        });
        expect(held.map((e) => e.spec.hosts[0])).toEqual(separate.map((e) => e.spec.hosts[0]));
        expect(
          await syncOnce(`${server}-ignore-accepted`, t1, nacosSourceYaml(server, ns, 'ignore'), {
            code: 0,
            args: ['--allow-shrink'],
          }),
        ).toEqual([]);

        // metadataReport: false reads no config: the provider stays on the application entry.
        const off = await syncOnce(
          `${server}-off`,
          t1,
          nacosSourceYaml(server, ns, 'merge').map((l) =>
            l.includes('applicationLevel') ? '      dubbo: {applicationLevel: merge, metadataReport: false}' : l,
          ),
        );
        expect(off.map((e) => e.spec.hosts[0])).not.toContain(host);
        expect(off.map((e) => e.spec.hosts[0]!).some((h) => h.includes(app))).toBe(true);

        // An unchanged provider costs no config read on the next full read; one search on the first.
        const logs: string[] = [];
        const adapter = nacosAdapter.create(
          nacosAdapter.configSchema.parse({
            servers: [peer(server).http],
            namespaces: [ns],
            groups: ['DEFAULT_GROUP'],
          }),
          {
            source: server,
            logger: pino({ level: 'debug' }, { write: (s: string) => void logs.push(s) }),
            baseDir: dir,
            resolveSecret: secretResolver({}, dir),
            metrics: new BridgeMetrics(new Registry()),
          },
        );
        const searches = () => logs.filter((l) => l.includes('dubbo metadata report: config search')).length;
        try {
          const signal = new AbortController().signal;
          const first = await adapter.list(signal);
          const firstSearches = searches();
          const second = await adapter.list(signal);
          const appOf = (s: typeof first) => s.services.find((x) => x.applicationLevel?.application === app);
          expect(appOf(first)?.applicationLevel?.interfaces?.map((i) => i.host)).toEqual([host]);
          expect(appOf(second)?.applicationLevel?.interfaces?.map((i) => i.host)).toEqual([host]);
          // Java Nacos: one v3 search; r-nacos: the v3 API is not served (one request), then the
          // v1 search, whose `*` form finds nothing there and whose substring form does.
          expect(firstSearches).toBe(server === 'nacos' ? 1 : 3);
          expect(searches()).toBe(firstSearches);
        } finally {
          await adapter.close();
        }
        await provider.stop();
      }, 300_000);

    it('nacos + ZooKeeper: a register-mode=instance provider in Nacos and an interface-level one in ZooKeeper land on one entry', async () => {
      const ns = `ndm-${id}-both`;
      const version = '5.0.0';
      const group = `ndm-${id}-both`;
      const host = hostOf(version, group);
      const [z1, n1, z2, n2] = (await freePorts(4)) as [number, number, number, number];
      const appZ = `ndm-zk-${id}`;
      const appN = `ndm-nacos-${id}`;
      const [, nacosOne] = await Promise.all([
        dubbo([
          '--registry',
          `zookeeper://${peer('zookeeper').connect}?group=${ROOT}&session=10000`,
          '--app',
          appZ,
          '--version',
          version,
          '--group',
          group,
          '--dubbo-port',
          String(z1),
          '--tri-port',
          String(z2),
          '--register-mode',
          'interface',
        ]),
        nacosProvider('nacos', { ns, app: appN, version, group, dubbo: n1, tri: n2, mode: 'instance' }),
      ]);
      await until('both providers registered, the Nacos one with its definition', async () => {
        const [zk, hosts, defs] = await Promise.all([
          zkChildren(`/${ROOT}/${IFACE}/providers`),
          nacosHostsOf('nacos', ns, appN),
          definitionsListed('nacos', ns, appN),
        ]);
        return zk.length === 2 && hosts === 1 && defs.length === 1;
      });
      const t = await target(`rb-ndm-${id}-both`);
      const got = await syncOnce('both', t, [
        '  - name: zk',
        '    kind: zookeeper',
        '    zookeeper:',
        `      connect: "${peer('zookeeper').connect}"`,
        `      roots: [/${ROOT}]`,
        ...nacosSourceYaml('nacos', ns, 'merge'),
      ]);
      expect(got.map((e) => e.spec.hosts[0])).toEqual([host]);
      expect(endpointsOf(got[0])).toEqual([`TCP:${n1} GRPC:${n2}`, `TCP:${z1} GRPC:${z2}`].sort());
      expect(got[0]!.metadata.annotations?.[SOURCES_ANNOTATION]).toBe('zk,nacos');
      await nacosOne.stop();
    }, 300_000);
  },
);

/** A free HTTP port p for a server of its own whose other ports are p + each offset, all free. */
async function freePortSet(offsets: readonly number[]): Promise<number> {
  const canListen = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
    });
  for (let i = 0; i < 100; i++) {
    const p = 21_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (const o of offsets) if (!(await canListen(p + o))) ok = false;
    if (ok) return p;
  }
  throw new Error('no free port set');
}

describe.skipIf(!hasPeer('rnacos'))(
  'Dubbo register-mode=instance in Nacos with auth on: the config search with the login token',
  () => {
    let dir: string;
    const servers: ManagedHandle[] = [];
    const running: ClientHandle[] = [];
    const password = `pw-${randomBytes(9).toString('hex')}`;

    beforeAll(async () => {
      await install((m) => process.stderr.write(`[registry-clients] ${m}\n`));
      dir = await mkdtemp(join(tmpdir(), 'rb-ndm-auth-'));
    }, 15 * 60_000);

    afterAll(async () => {
      await Promise.all(running.map((c) => c.kill()));
      for (const h of servers) await h.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    // r-nacos only: a Java Nacos of its own (embedded Derby) failed to start in 2 of 3 runs on the
    // loaded test machine ("load derby-schema.sql error: Login timeout exceeded").
    for (const server of ['rnacos'] as const)
      it(`${server}: the config search goes with the login token and maps the application`, async () => {
        const user = 'nacos';
        const handle = await (
          await import('../peers/rnacos.js')
        ).start({
          dataDir: join(dir, 'rnacos'),
          // Dubbo's nacos-client connects to gRPC on the HTTP port + 1000 (r-nacos's default).
          port: await freePortSet([0, 1000, 2000]),
          auth: { username: user, password },
        });
        servers.push(handle);
        const http = handle.endpoints.http!;
        const serverAddr = http.replace(/^https?:\/\//, '').replace(/\/nacos$/, '');
        const ns = `ndm-auth-${id}`;
        const app = `ndm-auth-${id}-${server}`;
        const group = `ndm-auth-${id}`;
        const [d, t] = (await freePorts(2)) as [number, number];
        const provider = await startClient([
          'dubbo',
          '--registry',
          `nacos://${serverAddr}?namespace=${ns}&username=${user}&password=${password}&nacos.retry=60&nacos.retry-wait=1000`,
          '--app',
          app,
          '--version',
          '6.0.0',
          '--group',
          group,
          '--dubbo-port',
          String(d),
          '--tri-port',
          String(t),
          '--register-mode',
          'instance',
        ]);
        running.push(provider);
        const logs: string[] = [];
        const adapter = nacosAdapter.create(
          nacosAdapter.configSchema.parse({
            servers: [http],
            namespaces: [ns],
            groups: ['DEFAULT_GROUP'],
            auth: { username: user, password: { env: 'RB_NDM_PASSWORD' } },
          }),
          {
            source: server,
            logger: pino({ level: 'debug' }, { write: (l: string) => void logs.push(l) }),
            baseDir: dir,
            resolveSecret: secretResolver({ RB_NDM_PASSWORD: password }, dir),
            metrics: new BridgeMetrics(new Registry()),
          },
        );
        try {
          const signal = new AbortController().signal;
          // Dubbo writes its definition asynchronously: read until the application is mapped
          // (an application not mapped yet is searched again after 10 s).
          let level: RegistryService['applicationLevel'];
          await until(
            `${server}: the application read and mapped`,
            async () => {
              const snap = await adapter.list(signal);
              level = snap.services.find((x) => x.applicationLevel?.application === app)?.applicationLevel;
              return (level?.interfaces?.length ?? 0) > 0;
            },
            120_000,
          );
          expect(level?.metadataError).toBeUndefined();
          expect(level?.interfaces?.map((i) => i.host)).toEqual([hostOf('6.0.0', group)]);
          expect(logs.join('')).not.toContain(password);
        } finally {
          await adapter.close();
          await provider.stop();
        }
      }, 420_000);
  },
);
