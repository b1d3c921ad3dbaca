/**
 * Real Dubbo 3.3 providers (and nacos-client, Curator) in the scenarios a deployment goes
 * through, against the shared ZooKeeper, Nacos, kube-apiserver and istiod:
 *
 * - a provider is SIGKILLed: ZooKeeper expires its session, Nacos closes its gRPC connection;
 *   the bridge (the built binary, in continuous mode) drops the dead endpoint, or deletes the
 *   entry when nothing is left, and the time from the kill is measured;
 * - `register-mode` interface and instance, with `dubbo.applicationLevel` merge | separate |
 *   ignore: what each writes, and what the bridge publishes (instance mode: the interfaces come
 *   from Dubbo's metadata report, `<root>/mapping` and `<root>/metadata`);
 * - migration from Nacos to ZooKeeper: the entry keeps the live ZooKeeper endpoints, loses the
 *   Nacos ones, hands the owner over and is never deleted in between;
 * - `registry-bridge verify` (the built binary) passes kube → istiod registryz → proxy for every host
 *   the bridge wrote in a mixed deployment.
 *
 * Unique ZooKeeper roots (Dubbo's registry group), Nacos namespaces and kube namespaces per run;
 * the shared servers are never restarted.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';
import { SOURCE_LABEL, SOURCES_ANNOTATION } from '../../src/synth/index.js';
import { install, startClient, type ClientHandle } from '../peers/clients.js';
import { hasPeer, peer } from '../peers/endpoints.js';
import { BridgeProcess, waitUntil } from './faults-harness.js';
import {
  capture,
  dubboArgs,
  effectivePorts,
  freePorts,
  entriesByHost,
  nacosConfig,
  nacosHosts,
  until,
  zkChildren,
  zkNode,
  zkRemoveTree,
  withZk,
  type Entry,
  removeNamespaces,
} from './real-clients-kit.js';

const id = randomBytes(3).toString('hex');
const ROOT = `rcs-${id}`; // Dubbo's registry group = its ZooKeeper root
const CURATOR_ROOT = `/rcs-${id}-svc`;
const NS = `rcs-${id}`; // Nacos namespace
const TARGET_LIVE = `rb-rcs-${id}`; // the continuous bridge's namespace
const TARGET_MODES = `rb-rcs-${id}-m`; // the register-mode syncs' namespace
const IFACE = 'registrybridge.demo.GreetService';
const hostOf = (version: string, group: string) =>
  `registrybridge.demo.greetservice.v-${version.replaceAll('.', '-')}.g-${group}.dubbo`;

const endpointsOf = (e: Entry | undefined) => (e?.spec.endpoints ?? []).map((ep) => effectivePorts(e!, ep)).sort();

describe.skipIf(!hasPeer('zookeeper') || !hasPeer('nacos') || !hasPeer('kube'))(
  'real Dubbo 3.3 providers: SIGKILL, register modes, Nacos → ZooKeeper migration, verify',
  () => {
    let dir: string;
    const running: ClientHandle[] = [];
    const kc = () => loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });

    const entries = (namespace: string) => entriesByHost(kc(), namespace);
    const entryOf = async (namespace: string, host: string) =>
      (await entries(namespace)).find((e) => e.spec.hosts[0] === host);

    async function start(args: string[]): Promise<ClientHandle> {
      const h = await startClient(args);
      running.push(h);
      return h;
    }

    /** A Dubbo 3.3 provider of GreetService (dubbo + tri ports) in ZooKeeper or Nacos. */
    function dubbo(
      registry: 'zk' | 'nacos',
      o: { app: string; version: string; group: string; dubbo: number; tri: number; mode?: string },
    ): Promise<ClientHandle> {
      // session=: the ZooKeeper session timeout Dubbo asks for (the server bounds it to 4-40 s).
      const url =
        registry === 'zk'
          ? `zookeeper://${peer('zookeeper').connect}?group=${ROOT}&session=10000`
          : // nacos.retry / nacos.retry-wait: Dubbo checks the server is UP 10 times 10 ms apart by
            // default, too short on a loaded machine ("server status check failed").
            `nacos://${peer('nacos').serverAddr}?namespace=${NS}&nacos.retry=60&nacos.retry-wait=1000`;
      return start(['dubbo', ...dubboArgs(url, o)]);
    }

    const providersPath = `/${ROOT}/${IFACE}/providers`;
    const nacosIface = (version: string, group: string) => `providers:${IFACE}:${version}:${group}`;

    function sourcesYaml(target: string, order: 'nacos-first' | 'zk-first', applicationLevel = 'merge'): string {
      const zk = [
        '  - name: zk',
        '    kind: zookeeper',
        `    targetNamespace: ${target}`,
        '    zookeeper:',
        `      connect: "${peer('zookeeper').connect}"`,
        `      roots: [/${ROOT}, ${CURATOR_ROOT}]`,
        `      dubbo: {applicationLevel: ${applicationLevel}}`,
      ];
      const nacos = [
        '  - name: nacos',
        '    kind: nacos',
        `    targetNamespace: ${target}`,
        '    nacos:',
        `      servers: [${peer('nacos').http}]`,
        `      namespaces: [${NS}]`,
        '      groups: [DEFAULT_GROUP]',
        `      dubbo: {applicationLevel: ${applicationLevel}}`,
      ];
      return [
        'sources:',
        ...(order === 'zk-first' ? [...zk, ...nacos] : [...nacos, ...zk]),
        `sink: {kind: kube, kubeconfig: ${peer('kube').kubeconfig}}`,
        'server: {address: 127.0.0.1, port: 0}',
      ].join('\n');
    }

    beforeAll(async () => {
      await install((m) => process.stderr.write(`[registry-clients] ${m}\n`));
      dir = await mkdtemp(join(tmpdir(), 'rb-rcs-'));
      // The roots exist before the bridge reads them (a missing root is an unavailable source).
      await withZk(async (c) => {
        for (const root of [`/${ROOT}`, CURATOR_ROOT])
          await new Promise<void>((resolve) => c.create(root, null, 0, () => resolve())); // exists: fine
      });
      for (const name of [TARGET_LIVE, TARGET_MODES])
        await kc()
          .makeApiClient(CoreV1Api)
          .createNamespace({ body: { metadata: { name } } });
    }, 15 * 60_000);

    afterAll(async () => {
      await Promise.all(running.map((c) => c.kill()));
      await removeNamespaces(kc(), [TARGET_LIVE, TARGET_MODES]);
      for (const root of [`/${ROOT}`, CURATOR_ROOT]) await zkRemoveTree(root);
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('register-mode interface and instance, in ZooKeeper and Nacos, with dubbo.applicationLevel merge | separate | ignore', async () => {
      const appI = `rm-iface-${id}`;
      const appN = `rm-inst-${id}`;
      // Both providers of one service share this machine's address: dubbo ports below tri ports,
      // in the same order, so the port pairing (by port order) keeps each provider's own pair.
      const [i1, i3, i2, i4] = (await freePorts(4)) as [number, number, number, number];
      const [n1, n3, n2, n4] = (await freePorts(4)) as [number, number, number, number];
      const ifaceHost = hostOf('2.0.0', `ri-${id}`);
      const instHost = hostOf('3.0.0', `rin-${id}`);
      const providers = await Promise.all([
        dubbo('zk', { app: appI, version: '2.0.0', group: `ri-${id}`, dubbo: i1, tri: i2, mode: 'interface' }),
        dubbo('nacos', { app: appI, version: '2.0.0', group: `ri-${id}`, dubbo: i3, tri: i4, mode: 'interface' }),
        dubbo('zk', { app: appN, version: '3.0.0', group: `rin-${id}`, dubbo: n1, tri: n2, mode: 'instance' }),
        dubbo('nacos', { app: appN, version: '3.0.0', group: `rin-${id}`, dubbo: n3, tri: n4, mode: 'instance' }),
      ]);

      // What each mode writes. interface: interface level only. instance: application level
      // only, plus Dubbo's metadata report: the interface → application mapping (ZooKeeper
      // `<root>/mapping/<interface>`, Nacos config group `mapping`) and the service definition
      // (ZooKeeper `<root>/metadata/<interface>/<version>/<group>/provider/<app>`).
      await until('register-mode interface: interface level in ZooKeeper and Nacos', async () => {
        const [zk, nacos] = await Promise.all([
          zkChildren(providersPath),
          nacosHosts(NS, 'DEFAULT_GROUP', nacosIface('2.0.0', `ri-${id}`)),
        ]);
        return zk.filter((p) => decodeURIComponent(p).includes(`:${i1}/`)).length === 1 && nacos.length === 2;
      });
      await until('register-mode instance: application level and mapping in ZooKeeper and Nacos', async () => {
        const [zkApp, nacosApp, zkMapping, nacosMapping, definition] = await Promise.all([
          zkChildren(`/${ROOT}/${appN}`),
          nacosHosts(NS, 'DEFAULT_GROUP', appN),
          zkNode(`/${ROOT}/mapping/${IFACE}`).then((n) => n?.data),
          nacosConfig(NS, 'mapping', IFACE),
          zkNode(`/${ROOT}/metadata/${IFACE}/3.0.0/rin-${id}/provider/${appN}`).then((n) => n?.data),
        ]);
        return (
          zkApp.length === 1 &&
          nacosApp.length === 1 &&
          (zkMapping ?? '').split(',').includes(appN) &&
          (nacosMapping ?? '').split(',').includes(appN) &&
          definition !== undefined
        );
      });
      // interface mode wrote no application level; instance mode no interface level.
      expect(await zkChildren(`/${ROOT}/${appI}`)).toEqual([]);
      expect(await nacosHosts(NS, 'DEFAULT_GROUP', appI)).toEqual([]);
      expect((await zkChildren(providersPath)).filter((p) => decodeURIComponent(p).includes(`:${n1}/`))).toEqual([]);
      expect(await nacosHosts(NS, 'DEFAULT_GROUP', nacosIface('3.0.0', `rin-${id}`))).toEqual([]);

      const sync = async (mode: string) => {
        const cfg = join(dir, `modes-${mode}.yaml`);
        await writeFile(cfg, sourcesYaml(TARGET_MODES, 'zk-first', mode));
        const c = capture();
        const code = await main(['sync', '--once', '-c', cfg], c.io);
        expect(code, c.err()).toBe(0);
        return entries(TARGET_MODES);
      };
      const bothI = [`TCP:${i1} GRPC:${i2}`, `TCP:${i3} GRPC:${i4}`].sort();
      const bothN = [`TCP:${n1} GRPC:${n2}`, `TCP:${n3} GRPC:${n4}`].sort();

      // merge: the instance-mode providers are published on their interface's entry, named by
      // the ZooKeeper metadata (the Nacos application instance of the same application too).
      const merged = await sync('merge');
      expect(merged.map((e) => e.spec.hosts[0])).toEqual([ifaceHost, instHost]);
      expect(endpointsOf(merged[0])).toEqual(bothI);
      expect(endpointsOf(merged[1])).toEqual(bothN);
      expect(merged[1]!.metadata.annotations?.[SOURCES_ANNOTATION]).toBe('zk,nacos');
      expect(merged[1]!.spec.ports.map((p) => p.protocol).sort()).toEqual(['GRPC', 'TCP']);

      // separate: the applications are entries of their own; the interface-mode one has none.
      const separate = await sync('separate');
      const appHosts = separate.map((e) => e.spec.hosts[0]!).filter((h) => h !== ifaceHost);
      expect(separate.map((e) => e.spec.hosts[0])).toContain(ifaceHost);
      expect(appHosts.length).toBeGreaterThan(0);
      for (const h of appHosts) expect(h).toContain(appN);
      expect(appHosts.flatMap((h) => endpointsOf(separate.find((e) => e.spec.hosts[0] === h))).sort()).toEqual(bothN);
      expect(separate.map((e) => e.spec.hosts[0])).not.toContain(instHost);

      // ignore: application level is not read; the instance-mode providers publish nothing.
      const ignored = await sync('ignore');
      expect(ignored.map((e) => e.spec.hosts[0])).toEqual([ifaceHost]);
      expect(endpointsOf(ignored[0])).toEqual(bothI);

      await Promise.all(providers.map((p) => p.stop()));
    }, 300_000);

    describe('the built bridge in continuous mode', () => {
      let bridge: BridgeProcess;

      beforeAll(async () => {
        const cfg = join(dir, 'live.yaml');
        await writeFile(cfg, sourcesYaml(TARGET_LIVE, 'nacos-first'));
        bridge = new BridgeProcess(cfg, join(dir, 'live.log'));
        await bridge.start();
      }, 120_000);

      afterAll(async () => {
        await bridge?.stop();
      });

      it('SIGKILL of a provider: ZooKeeper session expiry and Nacos connection close drop its endpoints; an entry left with nothing is deleted', async () => {
        const zkHost = hostOf('1.0.0', `k1-${id}`);
        const nacosHost = hostOf('1.0.0', `k2-${id}`);
        const [a1, b1, a2, b2] = (await freePorts(4)) as [number, number, number, number];
        const [c1, c2] = (await freePorts(2)) as [number, number];
        const app = `kill-${id}`;
        const [zkA, zkB, nacosC] = await Promise.all([
          dubbo('zk', { app, version: '1.0.0', group: `k1-${id}`, dubbo: a1, tri: a2 }),
          dubbo('zk', { app, version: '1.0.0', group: `k1-${id}`, dubbo: b1, tri: b2 }),
          dubbo('nacos', { app: `${app}-n`, version: '1.0.0', group: `k2-${id}`, dubbo: c1, tri: c2 }),
        ]);
        const live = `TCP:${b1} GRPC:${b2}`;
        // Every port of every provider published (Dubbo registers a provider's protocols one
        // after the other: a run between them sees the dubbo port without the tri one).
        await waitUntil(
          async () =>
            JSON.stringify(endpointsOf(await entryOf(TARGET_LIVE, zkHost))) ===
              JSON.stringify([`TCP:${a1} GRPC:${a2}`, live].sort()) &&
            JSON.stringify(endpointsOf(await entryOf(TARGET_LIVE, nacosHost))) ===
              JSON.stringify([`TCP:${c1} GRPC:${c2}`]),
          'both entries published with every port',
          120_000,
        );
        expect(endpointsOf(await entryOf(TARGET_LIVE, zkHost))).toEqual([`TCP:${a1} GRPC:${a2}`, live].sort());

        const t0 = Date.now();
        await Promise.all([zkA!.kill(), nacosC!.kill()]);
        const figures: Record<string, number> = {};
        const seen: string[][] = [];
        await Promise.all([
          waitUntil(
            async () => (await zkChildren(providersPath)).every((p) => !decodeURIComponent(p).includes(`:${a1}/`)),
            'ZooKeeper expired the killed provider',
            120_000,
          ).then(() => (figures.zkRegistryMs = Date.now() - t0)),
          waitUntil(
            async () => (await nacosHosts(NS, 'DEFAULT_GROUP', nacosIface('1.0.0', `k2-${id}`))).length === 0,
            'Nacos removed the killed provider',
            120_000,
          ).then(() => (figures.nacosRegistryMs = Date.now() - t0)),
          waitUntil(
            async () => {
              const eps = endpointsOf(await entryOf(TARGET_LIVE, zkHost));
              seen.push(eps);
              return eps.length === 1;
            },
            'the entry dropping the killed ZooKeeper provider',
            120_000,
          ).then(() => (figures.zkEntryMs = Date.now() - t0)),
          waitUntil(
            async () => (await entryOf(TARGET_LIVE, nacosHost)) === undefined,
            'the entry of the killed Nacos provider deleted',
            120_000,
          ).then(() => (figures.nacosEntryMs = Date.now() - t0)),
        ]);
        console.log(`[real-clients] SIGKILL: ${JSON.stringify(figures)}`);
        // The live provider was in the entry at every look, and is what is left.
        for (const eps of seen) expect(eps).toContain(live);
        expect(endpointsOf(await entryOf(TARGET_LIVE, zkHost))).toEqual([live]);
        await zkB!.stop();
      }, 300_000);

      it('migration from Nacos to ZooKeeper: the Nacos providers stop; the entry keeps the ZooKeeper endpoints, loses the Nacos ones, hands over, is never deleted', async () => {
        const host = hostOf('4.0.0', `mig-${id}`);
        const app = `mig-${id}`;
        const [z1, n1, z2, n2] = (await freePorts(4)) as [number, number, number, number];
        const [zkP, nacosP] = await Promise.all([
          dubbo('zk', { app, version: '4.0.0', group: `mig-${id}`, dubbo: z1, tri: z2 }),
          dubbo('nacos', { app, version: '4.0.0', group: `mig-${id}`, dubbo: n1, tri: n2 }),
        ]);
        const zkEp = `TCP:${z1} GRPC:${z2}`;
        const nacosEp = `TCP:${n1} GRPC:${n2}`;
        // Every port of both providers published (Dubbo registers the dubbo and tri ports one
        // after the other; ports of one address are paired in port order, so a run between them
        // pairs the Nacos dubbo port with the ZooKeeper provider's tri port).
        await waitUntil(
          async () =>
            JSON.stringify(endpointsOf(await entryOf(TARGET_LIVE, host))) === JSON.stringify([zkEp, nacosEp].sort()),
          'the entry with both registries and every port',
          120_000,
        );
        const before = (await entryOf(TARGET_LIVE, host))!;
        // Nacos is first in the configuration: it holds the source label.
        expect(before.metadata.labels?.[SOURCE_LABEL]).toBe('nacos');
        expect(before.metadata.annotations?.[SOURCES_ANNOTATION]).toBe('nacos,zk');
        expect(endpointsOf(before)).toEqual([zkEp, nacosEp].sort());

        const seen: (Entry | undefined)[] = [];
        const stopped = nacosP!.stop();
        await waitUntil(
          async () => {
            const e = await entryOf(TARGET_LIVE, host);
            seen.push(e);
            return e?.metadata.labels?.[SOURCE_LABEL] === 'zk' && endpointsOf(e).length === 1;
          },
          'the entry handed over to ZooKeeper',
          120_000,
        );
        await stopped;
        for (const e of seen) {
          expect(e, 'the entry was never missing').toBeDefined();
          expect(e!.metadata.uid, 'the entry was never deleted and re-created').toBe(before.metadata.uid);
          expect(endpointsOf(e)).toContain(zkEp);
        }
        const after = (await entryOf(TARGET_LIVE, host))!;
        expect(endpointsOf(after)).toEqual([zkEp]);
        expect(after.metadata.annotations?.[SOURCES_ANNOTATION]).toBeUndefined();
        expect(bridge.logText()).not.toMatch(/"action":"conflict"/);
        await zkP!.stop();
      }, 300_000);

      it.skipIf(!hasPeer('istiod'))(
        'registry-bridge verify passes kube → istiod registryz → proxy for every host of a mixed deployment (Dubbo on ZooKeeper and Nacos, nacos-client, Curator)',
        async () => {
          const [d1, d3, d2, d4] = (await freePorts(4)) as [number, number, number, number];
          const [ordersPort, curatorPort] = (await freePorts(2)) as [number, number];
          const app = `mixed-${id}`;
          await Promise.all([
            dubbo('zk', { app, version: '5.0.0', group: `mix-${id}`, dubbo: d1, tri: d2 }),
            dubbo('nacos', { app, version: '5.0.0', group: `mix-${id}`, dubbo: d3, tri: d4 }),
            start([
              'nacos',
              '--server',
              peer('nacos').serverAddr,
              '--instance',
              `${NS}/DEFAULT_GROUP/orders-${id}/127.0.0.31:${ordersPort};weight=1`,
              '--instance',
              `${NS}/DEFAULT_GROUP/orders-${id}/127.0.0.32:${ordersPort};weight=3`,
            ]),
            start([
              'curator',
              '--connect',
              peer('zookeeper').connect,
              '--base',
              CURATOR_ROOT,
              '--name',
              `inventory-${id}`,
              '--address',
              '127.0.0.33',
              '--port',
              String(curatorPort),
            ]),
          ]);
          const expected = [
            hostOf('5.0.0', `mix-${id}`),
            `orders-${id}.default-group.${NS}.nacos`,
            `inventory-${id}.zk`,
          ];
          // Exactly these (the entries of the scenarios before are gone with their providers).
          await waitUntil(
            async () =>
              JSON.stringify((await entries(TARGET_LIVE)).map((e) => e.spec.hosts[0]!)) ===
              JSON.stringify([...expected].sort()),
            'the mixed deployment in kube',
            120_000,
          );
          const hosts = (await entries(TARGET_LIVE)).map((e) => e.spec.hosts[0]!);
          const run = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
            const child = spawn(
              process.execPath,
              [
                'dist/registry-bridge.mjs',
                'verify',
                '--kubeconfig',
                peer('kube').kubeconfig,
                '--namespace',
                TARGET_LIVE,
                '--istiod',
                peer('istiod').debug,
                '--xds',
                peer('istiod').xds,
                '--timeout',
                '60s',
                '-o',
                'json',
                '--log-level',
                'silent',
              ],
              { stdio: ['ignore', 'pipe', 'pipe'] },
            );
            let out = '';
            let err = '';
            child.stdout.on('data', (b: Buffer) => (out += b.toString()));
            child.stderr.on('data', (b: Buffer) => (err += b.toString()));
            child.once('exit', (code) => resolve({ code, out, err }));
          });
          const report = JSON.parse(run.out) as {
            hosts: { host: string; hops: { hop: string; status: string; detail: string[] }[] }[];
          };
          const failing = report.hosts.filter((h) =>
            h.hops.some((x) => ['kube', 'istiod', 'proxy'].includes(x.hop) && x.status !== 'ok'),
          );
          const decisions = bridge
            .logText()
            .split('\n')
            .filter((l) => l.includes('"action"'));
          expect(failing, `${JSON.stringify(failing, null, 1)}\n${decisions.join('\n')}`).toEqual([]);
          expect(run.code, run.err).toBe(0);
          expect(report.hosts.map((h) => h.host).sort()).toEqual([...hosts].sort());
          for (const h of expected) expect(report.hosts.map((r) => r.host)).toContain(h);
          for (const r of report.hosts)
            expect(r.hops.map((x) => x.hop)).toEqual(expect.arrayContaining(['kube', 'istiod', 'proxy']));
        },
        300_000,
      );
    });
  },
);
