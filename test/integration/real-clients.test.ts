/**
 * Real provider frameworks register into the real servers; `sync --once` writes ServiceEntries
 * into the real kube-apiserver, and istiod's registry holds them. The clients are the Maven
 * Central jars run by test/peers/clients/RegistryClients.java (Apache Dubbo 3.3, nacos-client
 * 2.5, Curator x-discovery 5.9); nothing here writes registry data by hand.
 *
 * Each scenario starts at most two JVMs (~150-190 MB each) and stops them before the next.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';
import { SERVICE_ANNOTATION, SOURCE_LABEL, SOURCES_ANNOTATION } from '../../src/synth/index.js';
import { install, startClient, type ClientHandle } from '../peers/clients.js';
import { hasPeer, peer } from '../peers/endpoints.js';
import {
  capture,
  effectivePorts,
  freePort,
  listEntries,
  nacosHosts,
  until,
  zkChildren,
  zkRemoveTree,
  type Entry,
} from './real-clients-kit.js';

const id = randomBytes(3).toString('hex');
const ZK_GROUP = `rc-${id}`; // Dubbo's registry group = its ZooKeeper root
const ZK_CURATOR = `/rc-${id}-svc`;
const NS_A = `rc-${id}`;
const NS_B = `rc-${id}-b`;
const NS_C = `rc-${id}-c`;
const TARGET = `rb-rc-${id}`;
const TARGET2 = `rb-rc-${id}-2`;
/**
 * Hosts carry this run's id: the shared apiserver keeps every run's entries, and a host that an
 * entry in another namespace declares is not written (src/plan/elsewhere.ts).
 */
const HOST_TEMPLATE = `{service}.{versionLabel}.{groupLabel}.rc-${id}.{kind}`;
const DUBBO_HOST = `registrybridge.demo.greetservice.v-1-0-0.g-g1.rc-${id}.dubbo`;
/**
 * Registered ports that nothing listens on, this run's own: a TCP port that an entry of another
 * run (another namespace) serves without addresses is a collision (src/plan/collisions.ts).
 * Below the ephemeral range that free ports come from.
 */
const ORDERS_PORT = randomInt(22_000, 31_000);
const INVENTORY_PORT = ORDERS_PORT + 1;

describe.skipIf(!hasPeer('zookeeper') || !hasPeer('nacos') || !hasPeer('kube'))(
  'real registry clients → ServiceEntries in kube and istiod',
  () => {
    let dir: string;
    let cfgDubbo: string;
    let cfgClients: string;
    const running: ClientHandle[] = [];
    const kc = () => loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });

    async function entries(namespace: string): Promise<Entry[]> {
      return (await listEntries(kc(), namespace)).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    }

    async function syncOnce(cfg: string): Promise<{ code: number; err: string }> {
      const c = capture();
      const code = await main(['sync', '--once', '-c', cfg], c.io);
      return { code, err: c.err() };
    }

    async function start(args: string[]): Promise<ClientHandle> {
      const h = await startClient(args);
      running.push(h);
      return h;
    }

    beforeAll(async () => {
      // First run on a machine: Maven resolution + javac (measured: ~30 s with a warm ~/.m2,
      // ~2 min from nothing). Later runs: a marker check.
      await install((m) => process.stderr.write(`[registry-clients] ${m}\n`));
      dir = await mkdtemp(join(tmpdir(), 'rb-real-clients-'));
      await kc()
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: TARGET } } });
      await kc()
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: TARGET2 } } });
      const config = (target: string, zkRoots: string[], nacosNamespaces: string[]) =>
        [
          'sources:',
          '  - name: zk',
          '    kind: zookeeper',
          `    targetNamespace: ${target}`,
          `    hostTemplate: '${HOST_TEMPLATE}'`,
          '    zookeeper:',
          `      connect: "${peer('zookeeper').connect}"`,
          `      roots: [${zkRoots.join(', ')}]`,
          '  - name: nacos',
          '    kind: nacos',
          `    targetNamespace: ${target}`,
          '    nacos:',
          `      servers: [${peer('nacos').http}]`,
          `      namespaces: [${nacosNamespaces.join(', ')}]`,
          `      dubboHostTemplate: '${HOST_TEMPLATE}'`,
          '      groups: [DEFAULT_GROUP, G1]',
          '      push: false',
          `sink: {kind: kube, kubeconfig: ${peer('kube').kubeconfig}}`,
        ].join('\n');
      cfgDubbo = join(dir, 'dubbo.yaml');
      await writeFile(cfgDubbo, config(TARGET, [`/${ZK_GROUP}`], [NS_A]));
      cfgClients = join(dir, 'clients.yaml');
      await writeFile(cfgClients, config(TARGET2, [ZK_CURATOR], [NS_C, NS_B]));
    }, 15 * 60_000);

    afterAll(async () => {
      await Promise.all(running.map((c) => c.kill()));
      for (const name of [TARGET, TARGET2])
        await kc()
          .makeApiClient(CoreV1Api)
          .deleteNamespace({ name })
          .catch(() => undefined);
      for (const root of [`/${ZK_GROUP}`, ZK_CURATOR]) await zkRemoveTree(root);
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('one Dubbo 3.3 service registered in ZooKeeper and in Nacos (register-mode all) → ONE entry: dubbo TCP, tri GRPC, Dubbo weights, both sources; the ZooKeeper provider stops → the entry goes to Nacos', async () => {
      // Both providers run on this machine's one address. Synthesis pairs the dubbo and tri
      // ports of one address into endpoints in port order (the registries do not say which
      // ports are one process), so the ports are chosen in that order: dubbo p1 < p3 < tri p2 < p4.
      const free = [await freePort(), await freePort(), await freePort(), await freePort()].sort((a, b) => a - b);
      const [p1, p3, p2, p4] = free as [number, number, number, number];
      const common = ['--app', `greet-${id}`, '--version', '1.0.0', '--group', 'g1'];
      const [zkProvider, nacosProvider] = await Promise.all([
        start([
          'dubbo',
          '--registry',
          `zookeeper://${peer('zookeeper').connect}?group=${ZK_GROUP}`,
          ...common,
          '--dubbo-port',
          String(p1),
          '--tri-port',
          String(p2),
        ]),
        start([
          'dubbo',
          '--registry',
          `nacos://${peer('nacos').serverAddr}?namespace=${NS_A}`,
          ...common,
          '--dubbo-port',
          String(p3),
          '--tri-port',
          String(p4),
          '--weight',
          '40',
        ]),
      ]);
      // Both registration levels are in place before the bridge reads.
      await until('Dubbo interface + application level in ZooKeeper', async () => {
        const [providers, app] = await Promise.all([
          zkChildren(`/${ZK_GROUP}/registrybridge.demo.GreetService/providers`),
          zkChildren(`/${ZK_GROUP}/greet-${id}`),
        ]);
        return providers.length === 2 && app.length === 1;
      });
      await until('Dubbo interface + application level in Nacos', async () => {
        const [iface, app] = await Promise.all([
          nacosHosts(NS_A, 'DEFAULT_GROUP', 'providers:registrybridge.demo.GreetService:1.0.0:g1'),
          nacosHosts(NS_A, 'DEFAULT_GROUP', `greet-${id}`),
        ]);
        return iface.length === 2 && app.length === 1;
      });

      const r = await syncOnce(cfgDubbo);
      expect(r.code, r.err).toBe(0);
      const all = await entries(TARGET);
      // Not greet-<id>.dubbo nor a Nacos application entry: they would duplicate this one.
      expect(all.map((e) => e.spec.hosts[0])).toEqual([DUBBO_HOST]);
      const e = all[0]!;
      expect(e.spec.ports.map((p) => p.protocol).sort()).toEqual(['GRPC', 'TCP']);
      expect(e.spec.endpoints!.map((ep) => effectivePorts(e, ep)).sort()).toEqual(
        [`TCP:${p1} GRPC:${p2}`, `TCP:${p3} GRPC:${p4}`].sort(),
      );
      // ZooKeeper's provider has Dubbo's default weight 100, the Nacos one weight=40.
      const weightOf = (tcp: number) =>
        e.spec.endpoints!.find((ep) => effectivePorts(e, ep).includes(`TCP:${tcp} `))?.weight;
      expect([weightOf(p1), weightOf(p3)]).toEqual([100, 40]);
      for (const ep of e.spec.endpoints!) expect(Object.keys(ep.labels ?? {})).not.toContain('weight');
      expect(JSON.stringify(e.spec)).not.toMatch(/revision|timestamp|pid/);
      expect(e.metadata.labels?.[SOURCE_LABEL]).toBe('zk');
      expect(e.metadata.annotations?.[SOURCES_ANNOTATION]).toBe('zk,nacos');

      // istiod's registry has the host with the same protocols (istiod watches kube).
      if (hasPeer('istiod')) {
        type Registryz = { hostname: string; ports?: { port: number; protocol: string }[] }[];
        const inRegistry = async () => {
          const res = await fetch(`${peer('istiod').debug}/debug/registryz`);
          return ((await res.json()) as Registryz).find((s) => s.hostname === DUBBO_HOST);
        };
        await until('istiod registryz lists the host', async () => (await inRegistry()) !== undefined);
        expect((await inRegistry())?.ports?.map((p) => p.protocol).sort()).toEqual(['GRPC', 'TCP']);
      }

      // Migration: the ZooKeeper provider stops; Nacos still publishes the service. The entry
      // goes to Nacos in the same run, without the dead endpoint and without a conflict.
      await zkProvider.stop();
      await until(
        'ZooKeeper providers gone',
        async () => (await zkChildren(`/${ZK_GROUP}/registrybridge.demo.GreetService/providers`)).length === 0,
      );
      const after = await syncOnce(cfgDubbo);
      expect(after.code, after.err).toBe(0);
      const [moved] = await entries(TARGET);
      expect(moved?.metadata.labels?.[SOURCE_LABEL]).toBe('nacos');
      expect(moved!.spec.endpoints!.map((ep) => effectivePorts(moved!, ep))).toEqual([`TCP:${p3} GRPC:${p4}`]);

      await nacosProvider.stop();
    }, 240_000);

    it('nacos-client 2.5 (ephemeral and persistent, weights, metadata, disabled, weight 0, unhealthy, two namespaces) and Curator 5.9 (zone-scoped IPv6)', async () => {
      const healthyPort = await freePort('127.0.0.21');
      const deadPort = await freePort('127.0.0.22');
      const listener = net.createServer((s) => s.destroy());
      await new Promise<void>((resolve) => listener.listen(healthyPort, '127.0.0.21', resolve));
      try {
        const [nacosClient, curator] = await Promise.all([
          start([
            'nacos',
            '--server',
            peer('nacos').serverAddr,
            '--instance',
            `${NS_C}/DEFAULT_GROUP/orders/127.0.0.11:${ORDERS_PORT};weight=1;version=v1`,
            '--instance',
            `${NS_C}/DEFAULT_GROUP/orders/127.0.0.12:${ORDERS_PORT};weight=3;version=v1`,
            '--instance',
            `${NS_C}/DEFAULT_GROUP/orders/127.0.0.13:${ORDERS_PORT};enabled=false;version=v1`,
            '--instance',
            `${NS_C}/DEFAULT_GROUP/orders/127.0.0.14:${ORDERS_PORT};weight=0;version=v1`,
            '--instance',
            `${NS_B}/G1/billing/127.0.0.21:${healthyPort};ephemeral=false`,
            '--instance',
            `${NS_B}/G1/ledger/127.0.0.22:${deadPort};ephemeral=false`,
          ]),
          start([
            'curator',
            '--connect',
            peer('zookeeper').connect,
            '--base',
            ZK_CURATOR,
            '--name',
            'inventory',
            '--id',
            'inventory-1',
            '--address',
            'fd00:0:0:0:0:0:0:2%eth0',
            '--port',
            String(INVENTORY_PORT),
          ]),
        ]);
        // The server health-checks persistent instances: wait until it has judged both.
        await until(
          'Nacos health check of the persistent instances',
          async () => {
            const [billing, ledger] = await Promise.all([
              nacosHosts(NS_B, 'G1', 'billing'),
              nacosHosts(NS_B, 'G1', 'ledger'),
            ]);
            return billing[0]?.healthy === true && ledger.length === 1 && ledger[0]?.healthy === false;
          },
          90_000,
        );
        await until('orders registered', async () => (await nacosHosts(NS_C, 'DEFAULT_GROUP', 'orders')).length >= 3);

        const r = await syncOnce(cfgClients);
        expect(r.code, r.err).toBe(0);
        const byService = new Map(
          (await entries(TARGET2)).map(
            (e) => [e.metadata.annotations?.[SERVICE_ANNOTATION]?.split('/').pop(), e] as const,
          ),
        );
        // ledger's only instance is unhealthy: nothing to publish, no object.
        expect([...byService.keys()].sort()).toEqual(['billing', 'inventory', 'orders']);

        const orders = byService.get('orders')!;
        // 127.0.0.13 (enabled=false) and 127.0.0.14 (weight 0) are left out; weights 1:3.
        expect(orders.spec.endpoints!.map((ep) => [ep.address, ep.weight, ep.labels?.version])).toEqual([
          ['127.0.0.11', 33, 'v1'],
          ['127.0.0.12', 100, 'v1'],
        ]);
        expect(byService.get('billing')!.spec.endpoints!.map((ep) => ep.address)).toEqual(['127.0.0.21']);

        const inventory = byService.get('inventory')!;
        expect(inventory.spec.endpoints!.map((ep) => ep.address)).toEqual(['fd00::2']);
        expect(inventory.spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual([`TCP/${INVENTORY_PORT}`]);
        expect(inventory.metadata.labels?.[SOURCE_LABEL]).toBe('zk');

        await Promise.all([nacosClient.stop(), curator.stop()]);
      } finally {
        await new Promise((resolve) => listener.close(resolve));
      }
    }, 240_000);
  },
);
