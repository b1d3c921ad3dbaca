/**
 * Real frameworks of the older and the Spring kind register into the real ZooKeeper;
 * `sync --once` writes ServiceEntries into the real kube-apiserver, and istiod's registry holds
 * them. The clients are Maven Central jars run by the harness (test/peers/clients.ts): an Apache
 * Dubbo 2.7 provider (variant `dubbo27`), a Spring Boot web application with Spring Cloud
 * Zookeeper discovery (variant `spring-zk`), and beside them the Dubbo 3.3 and Curator
 * x-discovery clients of the default launcher. Nothing here writes registry data by hand.
 *
 * Each scenario runs at most two JVMs at once and stops them before the next.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';
import { SERVICE_ANNOTATION, SOURCE_LABEL } from '../../src/synth/index.js';
import { install, startClient, type ClientHandle, type Variant } from '../peers/clients.js';
import { hasPeer, peer } from '../peers/endpoints.js';
import {
  capture,
  freePort,
  entriesByHost,
  until,
  zkChildren,
  zkNode,
  zkRemoveTree,
  type Endpoint,
  type Entry,
  removeNamespaces,
} from './real-clients-kit.js';

const id = randomBytes(3).toString('hex');
const ZK_DUBBO = `rcl-${id}`; // the Dubbo registry group = its ZooKeeper root
const ZK_SPRING = `/rcl-${id}-svc`; // Spring Cloud Zookeeper's and Curator's discovery root
const ZK_NAMES = `/rcl-${id}-names`;
const TARGET_DUBBO = `rb-rcl-${id}`;
const TARGET_SPRING = `rb-rcl-${id}-s`;
const TARGET_NAMES = `rb-rcl-${id}-n`;
const IFACE = 'registrybridge.demo.GreetService';
// A Dubbo group of its own: other tests (and earlier runs, whose namespaces stay Terminating
// with their objects, as this kube-apiserver runs no namespace controller) publish the same
// interface, and istiod's registry would list their entry under the same host.
const DUBBO_GROUP = `l${id}`;
const DUBBO_HOST = `registrybridge.demo.greetservice.v-1-0-0.g-${DUBBO_GROUP}.dubbo`;
const SPRING_APP = `orders-${id}`;
const CURATOR_SVC = `inventory-${id}`;

/** `TCP:20880` for each port an endpoint serves, in the entry's order. */
function portsInOrder(e: Entry, ep: Endpoint): string {
  return e.spec.ports.map((p) => `${p.protocol}:${ep.ports?.[p.name] ?? p.number}`).join(' ');
}

/** The provider URLs under `/<root>/<iface>/providers`, decoded. */
async function dubboProviders(root: string): Promise<string[]> {
  return (await zkChildren(`/${root}/${IFACE}/providers`)).map((c) => decodeURIComponent(c)).sort();
}

describe.skipIf(!hasPeer('zookeeper') || !hasPeer('kube'))(
  'real Dubbo 2.7 and Spring Cloud Zookeeper clients → ServiceEntries in kube and istiod',
  () => {
    let dir: string;
    const running: ClientHandle[] = [];
    const kc = () => loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });

    const entries = (namespace: string) => entriesByHost(kc(), namespace);

    async function syncOnce(cfg: string): Promise<{ code: number; err: string }> {
      const c = capture();
      const code = await main(['sync', '--once', '-c', cfg], c.io);
      return { code, err: c.err() };
    }

    async function start(args: string[], variant: Variant, heapMb?: number): Promise<ClientHandle> {
      const h = await startClient(args, { variant, ...(heapMb ? { heapMb } : {}) });
      running.push(h);
      return h;
    }

    type Registryz = { hostname: string; ports?: { port: number; protocol: string }[] }[];
    /** The host's `protocol/port` list in istiod's registry (undefined while istiod has not got it). */
    async function inIstiod(host: string): Promise<string[] | undefined> {
      const res = await fetch(`${peer('istiod').debug}/debug/registryz`);
      const found = ((await res.json()) as Registryz).find((s) => s.hostname === host);
      return found?.ports?.map((p) => `${p.protocol}/${p.port}`).sort();
    }

    async function config(name: string, target: string, root: string, extra: string[] = []): Promise<string> {
      const file = join(dir, `${name}.yaml`);
      await writeFile(
        file,
        [
          'sources:',
          '  - name: zk',
          '    kind: zookeeper',
          `    targetNamespace: ${target}`,
          '    zookeeper:',
          `      connect: "${peer('zookeeper').connect}"`,
          `      roots: [${root}]`,
          ...extra.map((l) => `      ${l}`),
          `sink: {kind: kube, kubeconfig: ${peer('kube').kubeconfig}}`,
        ].join('\n'),
      );
      return file;
    }

    beforeAll(async () => {
      // First run on a machine: Maven resolution + javac per variant (measured with an empty
      // variant cache folder: ~6 s each with a warm ~/.m2, 10-14 s of Maven from an empty one).
      const log = (m: string) => process.stderr.write(`[registry-clients] ${m}\n`);
      for (const v of ['dubbo27', 'spring-zk', 'default'] as const) await install(log, v);
      dir = await mkdtemp(join(tmpdir(), 'rb-real-clients-legacy-'));
      for (const name of [TARGET_DUBBO, TARGET_SPRING, TARGET_NAMES])
        await kc()
          .makeApiClient(CoreV1Api)
          .createNamespace({ body: { metadata: { name } } });
    }, 15 * 60_000);

    afterAll(async () => {
      await Promise.all(running.map((c) => c.kill()));
      await removeNamespaces(kc(), [TARGET_DUBBO, TARGET_SPRING, TARGET_NAMES]);
      for (const root of [`/${ZK_DUBBO}`, ZK_SPRING, ZK_NAMES]) await zkRemoveTree(root);
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('a Dubbo 2.7 provider on ZooKeeper → the interface entry (TCP, its address and port, no volatile labels); a Dubbo 3.3 provider of the same interface, version and group joins the SAME entry; the 2.7 provider stops → its endpoint is gone', async () => {
      const cfg = await config('dubbo', TARGET_DUBBO, `/${ZK_DUBBO}`);
      // timeout: Dubbo's wait for its first ZooKeeper connection (5 s by default; Dubbo 2.7 exits
      // with "zookeeper not connected" past it, which a loaded machine reaches).
      const registry = `zookeeper://${peer('zookeeper').connect}?group=${ZK_DUBBO}&timeout=30000`;
      const identity = ['--version', '1.0.0', '--group', DUBBO_GROUP];
      // Dubbo 2.7 binds every address (anyhost) and registers this machine's first non-loopback
      // address: it refuses 127.x as the host to register.
      const p27 = await freePort('0.0.0.0');
      const d27 = await start(
        ['dubbo', '--registry', registry, '--app', `greet27-${id}`, ...identity, '--dubbo-port', String(p27)],
        'dubbo27',
      );
      expect(d27.output()).toContain('dubbo 2.7.23');
      await until('the Dubbo 2.7 provider in ZooKeeper', async () => (await dubboProviders(ZK_DUBBO)).length === 1);
      const [url27] = await dubboProviders(ZK_DUBBO);
      // What Dubbo 2.7 writes: interface level only, dubbo=2.0.2, release=2.7.23, anyhost...
      expect(url27).toMatch(new RegExp(`^dubbo://[^/]+:${p27}/${IFACE}\\?`));
      const params27 = new URLSearchParams(url27!.slice(url27!.indexOf('?') + 1));
      expect([params27.get('dubbo'), params27.get('release'), params27.get('anyhost')]).toEqual([
        '2.0.2',
        '2.7.23',
        'true',
      ]);
      expect((await zkChildren(`/${ZK_DUBBO}`)).filter((c) => c.startsWith('greet27'))).toEqual([]);
      const host27 = /^dubbo:\/\/([^/]+):\d+\//.exec(url27!)![1]!;

      const first = await syncOnce(cfg);
      expect(first.code, first.err).toBe(0);
      const alone = await entries(TARGET_DUBBO);
      expect(alone.map((e) => e.spec.hosts[0])).toEqual([DUBBO_HOST]);
      const e27 = alone[0]!;
      expect(e27.spec.resolution).toBe('STATIC');
      expect(e27.spec.ports.map((p) => p.protocol)).toEqual(['TCP']);
      expect(e27.spec.endpoints!.map((ep) => [ep.address, portsInOrder(e27, ep)])).toEqual([[host27, `TCP:${p27}`]]);
      const labels27 = e27.spec.endpoints![0]!.labels ?? {};
      for (const volatile of ['timestamp', 'pid', 'methods', 'dubbo', 'release', 'anyhost', 'revision', 'weight'])
        expect(Object.keys(labels27)).not.toContain(volatile);
      expect(e27.metadata.labels?.[SOURCE_LABEL]).toBe('zk');
      if (hasPeer('istiod'))
        await until('istiod registryz lists the Dubbo 2.7 host', async () =>
          ((await inIstiod(DUBBO_HOST)) ?? []).includes(`TCP/${e27.spec.ports[0]!.number}`),
        );

      // A Dubbo 3.3 provider of the same interface + version + group (register-mode all: it
      // also registers its application at /<root>/<app>). Like Dubbo 2.7, it registers this
      // machine's address rather than the loopback one it was given.
      const p3 = await freePort('0.0.0.0');
      const d3 = await start(
        ['dubbo', '--registry', registry, '--app', `greet3-${id}`, ...identity, '--dubbo-port', String(p3)],
        'default',
      );
      await until('both providers and the Dubbo 3 application in ZooKeeper', async () => {
        const [providers, app] = await Promise.all([dubboProviders(ZK_DUBBO), zkChildren(`/${ZK_DUBBO}/greet3-${id}`)]);
        return providers.length === 2 && app.length === 1;
      });
      const url3 = (await dubboProviders(ZK_DUBBO)).find((u) => u.includes('release=3.'))!;
      expect(url3).toMatch(new RegExp(`^dubbo://[^/]+:${p3}/${IFACE}\\?`));
      const host3 = /^dubbo:\/\/([^/]+):\d+\//.exec(url3)![1]!;
      const both = await syncOnce(cfg);
      expect(both.code, both.err).toBe(0);
      const merged = await entries(TARGET_DUBBO);
      // One entry: no second one for Dubbo 3's application (greet3-<id>.dubbo), which would
      // collide with it on the dubbo port.
      expect(merged.map((e) => e.spec.hosts[0])).toEqual([DUBBO_HOST]);
      const m = merged[0]!;
      expect(m.spec.ports.map((p) => p.protocol)).toEqual(['TCP']);
      expect(m.spec.endpoints!.map((ep) => `${ep.address} ${portsInOrder(m, ep)}`).sort()).toEqual(
        [`${host27} TCP:${p27}`, `${host3} TCP:${p3}`].sort(),
      );
      expect(m.metadata.annotations?.[SERVICE_ANNOTATION]).toBe(e27.metadata.annotations?.[SERVICE_ANNOTATION]);

      // The 2.7 provider stops (unregisters): its endpoint is gone, the Dubbo 3 one stays.
      await d27.stop();
      await until('the Dubbo 2.7 provider gone from ZooKeeper', async () => {
        const providers = await dubboProviders(ZK_DUBBO);
        return providers.length === 1 && providers[0] === url3;
      });
      const after = await syncOnce(cfg);
      expect(after.code, after.err).toBe(0);
      const [left] = await entries(TARGET_DUBBO);
      expect(left!.spec.hosts).toEqual([DUBBO_HOST]);
      expect(left!.spec.endpoints!.map((ep) => `${ep.address} ${portsInOrder(left!, ep)}`)).toEqual([
        `${host3} TCP:${p3}`,
      ]);
      await d3.stop();
    }, 300_000);

    it('Spring Cloud Zookeeper (Spring Boot web app) → HTTP entry with its address, port and metadata labels, beside a plain Curator instance (TCP, or curatorProtocol); SIGKILL → its ephemeral znode expires → the entry is gone', async () => {
      const springPort = await freePort('0.0.0.0');
      const curatorPort = await freePort('127.0.0.1');
      const [spring, curator] = await Promise.all([
        start(
          [
            `--spring.application.name=${SPRING_APP}`,
            `--server.port=${springPort}`,
            `--spring.cloud.zookeeper.connect-string=${peer('zookeeper').connect}`,
            `--spring.cloud.zookeeper.discovery.root=${ZK_SPRING}`,
            '--spring.cloud.zookeeper.discovery.metadata.zone=z1',
            '--spring.cloud.zookeeper.session-timeout=6s',
            '--spring.main.banner-mode=off',
            '--logging.level.root=WARN',
          ],
          'spring-zk',
          256,
        ),
        start(
          [
            'curator',
            '--connect',
            peer('zookeeper').connect,
            '--base',
            ZK_SPRING,
            '--name',
            CURATOR_SVC,
            '--address',
            '127.0.0.1',
            '--port',
            String(curatorPort),
          ],
          'default',
        ),
      ]);
      // What Spring Cloud Zookeeper wrote: one ephemeral Curator ServiceInstance znode under
      // <root>/<name>/<uuid>, payload class ZookeeperInstance with the configured metadata.
      const [springId] = await zkChildren(`${ZK_SPRING}/${SPRING_APP}`);
      expect(springId).toMatch(/^[0-9a-f-]{36}$/);
      const node = await zkNode(`${ZK_SPRING}/${SPRING_APP}/${springId}`);
      expect(node?.ephemeral).toBe(true);
      const registered = JSON.parse(node!.data) as {
        name: string;
        address: string;
        port: number;
        sslPort: number | null;
        payload: { '@class': string; metadata: Record<string, string> };
      };
      expect(registered).toMatchObject({
        name: SPRING_APP,
        port: springPort,
        sslPort: null,
        payload: {
          '@class': 'org.springframework.cloud.zookeeper.discovery.ZookeeperInstance',
          metadata: { zone: 'z1', instance_status: 'UP' },
        },
      });
      // Spring registers the first non-loopback interface's host: its address, or a name when
      // the address resolves to one.
      const springAddress = registered.address;
      expect(springAddress).not.toMatch(/^127\./);
      const springResolution = net.isIP(springAddress) === 0 ? 'DNS' : 'STATIC';

      const plain = await config('spring', TARGET_SPRING, ZK_SPRING);
      const r = await syncOnce(plain);
      expect(r.code, r.err).toBe(0);
      const byHost = new Map((await entries(TARGET_SPRING)).map((e) => [e.spec.hosts[0], e] as const));
      expect([...byHost.keys()].sort()).toEqual([`${CURATOR_SVC}.zk`, `${SPRING_APP}.zk`]);

      const s = byHost.get(`${SPRING_APP}.zk`)!;
      expect(s.spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual([`HTTP/${springPort}`]);
      expect(s.spec.resolution).toBe(springResolution);
      expect(s.spec.endpoints!.map((ep) => ep.address)).toEqual([springAddress]);
      expect(s.spec.endpoints![0]!.labels).toEqual({ instance_status: 'UP', zone: 'z1' });
      expect(s.metadata.labels?.[SOURCE_LABEL]).toBe('zk');

      const c = byHost.get(`${CURATOR_SVC}.zk`)!;
      expect(c.spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual([`TCP/${curatorPort}`]);
      expect(c.spec.endpoints!.map((ep) => ep.address)).toEqual(['127.0.0.1']);

      if (hasPeer('istiod')) {
        await until('istiod registryz lists both hosts', async () => {
          const [sp, cu] = await Promise.all([inIstiod(`${SPRING_APP}.zk`), inIstiod(`${CURATOR_SVC}.zk`)]);
          return sp !== undefined && cu !== undefined;
        });
        expect(await inIstiod(`${SPRING_APP}.zk`)).toEqual([`HTTP/${springPort}`]);
        expect(await inIstiod(`${CURATOR_SVC}.zk`)).toEqual([`TCP/${curatorPort}`]);
      }

      // zookeeper.curatorProtocol names the protocol of plain Curator instances only; Spring
      // Cloud Zookeeper's stays HTTP whatever it says.
      const grpc = await config('spring-grpc', TARGET_SPRING, ZK_SPRING, ['curatorProtocol: grpc']);
      const g = await syncOnce(grpc);
      expect(g.code, g.err).toBe(0);
      const byHost2 = new Map((await entries(TARGET_SPRING)).map((e) => [e.spec.hosts[0], e] as const));
      expect(byHost2.get(`${CURATOR_SVC}.zk`)!.spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual([
        `GRPC/${curatorPort}`,
      ]);
      expect(byHost2.get(`${SPRING_APP}.zk`)!.spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual([
        `HTTP/${springPort}`,
      ]);
      if (hasPeer('istiod'))
        await until(
          'istiod registryz has the Curator host as GRPC',
          async () => JSON.stringify(await inIstiod(`${CURATOR_SVC}.zk`)) === JSON.stringify([`GRPC/${curatorPort}`]),
        );

      // The Spring application dies without deregistering: its znode is ephemeral, so it goes
      // when ZooKeeper expires the session, and the next run deletes the entry.
      await spring.kill();
      await until(
        'the Spring instance znode expired',
        async () => (await zkChildren(`${ZK_SPRING}/${SPRING_APP}`)).length === 0,
        90_000,
      );
      const gone = await syncOnce(grpc);
      expect(gone.code, gone.err).toBe(0);
      expect((await entries(TARGET_SPRING)).map((e) => e.spec.hosts[0])).toEqual([`${CURATOR_SVC}.zk`]);
      if (hasPeer('istiod'))
        await until(
          'istiod registryz drops the Spring host',
          async () => (await inIstiod(`${SPRING_APP}.zk`)) === undefined,
        );

      // The Curator client stops (unregisters): its entry goes too.
      await curator.stop();
      await until(
        'the Curator instance gone',
        async () => (await zkChildren(`${ZK_SPRING}/${CURATOR_SVC}`)).length === 0,
      );
      const last = await syncOnce(grpc);
      expect(last.code, last.err).toBe(0);
      expect(await entries(TARGET_SPRING)).toEqual([]);
    }, 300_000);

    it('Spring Cloud Zookeeper registering a host name: a fully qualified one → a DNS entry; a short one (a pod name, what Spring registers where the address resolves to one) → rejected with the reason', async () => {
      const fqdn = `web-${id}.apps.example.test`;
      const fqdnPort = await freePort('0.0.0.0');
      const shortPort = await freePort('0.0.0.0');
      const spring = (name: string, port: number, instanceHost: string) =>
        start(
          [
            `--spring.application.name=${name}`,
            `--server.port=${port}`,
            `--spring.cloud.zookeeper.connect-string=${peer('zookeeper').connect}`,
            `--spring.cloud.zookeeper.discovery.root=${ZK_NAMES}`,
            `--spring.cloud.zookeeper.discovery.instance-host=${instanceHost}`,
            '--spring.main.banner-mode=off',
            '--logging.level.root=WARN',
          ],
          'spring-zk',
          256,
        );
      const [named, short] = await Promise.all([
        spring(`web-fqdn-${id}`, fqdnPort, fqdn),
        spring(`web-short-${id}`, shortPort, `web-7d9f8-${id}`),
      ]);
      const [shortId] = await zkChildren(`${ZK_NAMES}/web-short-${id}`);
      expect(JSON.parse((await zkNode(`${ZK_NAMES}/web-short-${id}/${shortId}`))!.data)).toMatchObject({
        address: `web-7d9f8-${id}`,
        port: shortPort,
      });

      const cfg = await config('spring-names', TARGET_NAMES, ZK_NAMES);
      const r = await syncOnce(cfg);
      // The short name is refused, and the run says which instance and why (a degraded run: exit 4).
      expect(r.code, r.err).toBe(4);
      const byHost = new Map((await entries(TARGET_NAMES)).map((e) => [e.spec.hosts[0], e] as const));
      expect([...byHost.keys()]).toEqual([`web-fqdn-${id}.zk`]);
      const e = byHost.get(`web-fqdn-${id}.zk`)!;
      expect(e.spec.resolution).toBe('DNS');
      expect(e.spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual([`HTTP/${fqdnPort}`]);
      expect(e.spec.endpoints!.map((ep) => ep.address)).toEqual([fqdn]);
      expect(r.err).toContain(`web-7d9f8-${id}`);
      expect(r.err).toMatch(/short name \(no dot\)/);
      if (hasPeer('istiod'))
        await until(
          'istiod registryz lists the DNS host',
          async () => JSON.stringify(await inIstiod(`web-fqdn-${id}.zk`)) === JSON.stringify([`HTTP/${fqdnPort}`]),
        );

      await Promise.all([named.stop(), short.stop()]);
      await until(
        'both deregistered',
        async () =>
          (await zkChildren(`${ZK_NAMES}/web-fqdn-${id}`)).length === 0 &&
          (await zkChildren(`${ZK_NAMES}/web-short-${id}`)).length === 0,
      );
      const last = await syncOnce(cfg);
      expect(last.code, last.err).toBe(0);
      expect(await entries(TARGET_NAMES)).toEqual([]);
    }, 300_000);
  },
);
