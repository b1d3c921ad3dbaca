/**
 * A real Dubbo 3.3.5 provider in `register-mode=all` without a metadata center (the registry is
 * not Dubbo's metadata center: no `<root>/mapping`, no `<root>/metadata`) loses its interface
 * level while its application level lives, and the built bridge (continuous mode, `merge`)
 * never writes the application's own entry `<app>.dubbo` meanwhile (a kube watch sees every
 * ServiceEntry event of the namespace).
 *
 * Dubbo 3 holds two ZooKeeper sessions: the registry's (interface level,
 * `<root>/<iface>/providers/<url>`) and service discovery's (application level,
 * `<root>/<app>/<ip:port>`). Between the two levels, a bridge run sees the application at
 * application level only; that happens at start (Dubbo writes one level after the other), at a
 * graceful stop (the interface level goes first), and when one session expires before the other
 * (here, deterministically: the provider reaches ZooKeeper through a TCP proxy of the test's own
 * that cuts the connection which carried the interface level and refuses new ones until the
 * server has expired that session; service discovery's connection stays). Then the proxy lets
 * the registry client reconnect: Dubbo gets a new session and registers its interface level
 * again. The shared ZooKeeper itself is never touched.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';
import { install, startClient, type ClientHandle } from '../peers/clients.js';
import { hasPeer, peer } from '../peers/endpoints.js';
import { BridgeProcess, report, waitUntil } from './faults-harness.js';
import {
  freePorts,
  listEntries,
  removeNamespaces,
  withZk,
  zkChildren,
  zkRemoveTree,
  zkBridgeYaml,
  type Entry,
} from './real-clients-kit.js';

const id = randomBytes(3).toString('hex');
const ROOT = `rcas-${id}`;
const TARGET = `rb-rcas-${id}`;
const IFACE = 'registrybridge.demo.GreetService';
const APP = `settle-${id}`;
const GROUP = `as-${id}`;
const IFACE_HOST = `registrybridge.demo.greetservice.v-1-0-0.g-${GROUP}.dubbo`;
const APP_HOST = `${APP}.dubbo`;

/**
 * A TCP proxy to ZooKeeper that knows which of its connections carried the interface level (a
 * path with `/providers/` from the client), and can cut those and refuse new connections.
 */
class ZkSplitProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; providers: boolean }>();
  refuse = false;
  port = 0;
  connections = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    if (this.refuse) {
      client.destroy();
      return;
    }
    this.connections += 1;
    const upstream = net.connect(this.target.port, this.target.host);
    const pair = { client, upstream, providers: false };
    this.pairs.add(pair);
    let tail = '';
    client.on('data', (b: Buffer) => {
      const text = tail + b.toString('latin1');
      if (text.includes('/providers/')) pair.providers = true;
      tail = text.slice(-16);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  }

  /** Connections open now, and how many carried the interface level. */
  open(): { all: number; providers: number } {
    return { all: this.pairs.size, providers: [...this.pairs].filter((p) => p.providers).length };
  }

  /** Cuts the connections that carried the interface level; refuses every new one. */
  cutInterfaceLevel(): void {
    this.refuse = true;
    for (const p of this.pairs)
      if (p.providers) {
        p.client.destroy();
        p.upstream.destroy();
        this.pairs.delete(p);
      }
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    await new Promise((r) => this.server.close(r));
  }
}

describe.skipIf(!hasPeer('zookeeper') || !hasPeer('kube'))(
  'a real Dubbo 3 register-mode=all provider between its interface and application level: no transient application entry (controller.applicationSettle)',
  () => {
    let dir: string;
    let bridge: BridgeProcess;
    let proxy: ZkSplitProxy;
    let stopWatch = () => {};
    const events: string[] = []; // `ADDED name`, `MODIFIED name`, `DELETED name`, in order
    const running: ClientHandle[] = [];
    const kc = () => loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });
    const entryOf = async (host: string): Promise<Entry | undefined> =>
      (await listEntries(kc(), TARGET)).find((e) => e.spec.hosts[0] === host);

    beforeAll(async () => {
      await install((m) => process.stderr.write(`[registry-clients] ${m}\n`));
      dir = await mkdtemp(join(tmpdir(), 'rb-rcas-'));
      await withZk((c) => new Promise<void>((resolve) => c.create(`/${ROOT}`, null, 0, () => resolve())));
      await kc()
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: TARGET } } });
      const watch = await new Watch(kc()).watch(
        `/apis/networking.istio.io/v1/namespaces/${TARGET}/serviceentries`,
        {},
        (phase, obj: { metadata?: { name?: string } }) => events.push(`${phase} ${obj.metadata?.name ?? '?'}`),
        () => {},
      );
      stopWatch = () => watch.abort();
      const zk = peer('zookeeper');
      proxy = new ZkSplitProxy({ host: zk.host, port: Number(zk.port) });
      await proxy.listen();
      const cfg = join(dir, 'bridge.yaml');
      await writeFile(
        cfg,
        zkBridgeYaml(TARGET, ROOT, {
          zookeeper: ['      dubbo: {applicationLevel: merge}'],
          // Far longer than the provider needs to register its interface level again.
          more: ['controller: {applicationSettle: 2m}'],
        }),
      );
      bridge = new BridgeProcess(cfg, join(dir, 'bridge.log'));
      await bridge.start();
    }, 15 * 60_000);

    afterAll(async () => {
      stopWatch();
      await Promise.all(running.map((c) => c.kill()));
      await bridge?.stop();
      await proxy?.close();
      await removeNamespaces(kc(), [TARGET]);
      await zkRemoveTree(`/${ROOT}`);
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('the interface-level session expires, the application-level one lives: the application is held back, never written as its own entry; Dubbo registers again and the interface entry comes back', async () => {
      const [dubboPort, triPort] = (await freePorts(2)) as [number, number];
      const provider = await startClient([
        'dubbo',
        '--registry',
        // timeout: Dubbo's wait for its first ZooKeeper connection (5 s by default).
        `zookeeper://127.0.0.1:${proxy.port}?group=${ROOT}&session=4000&timeout=30000`,
        '--app',
        APP,
        '--version',
        '1.0.0',
        '--group',
        GROUP,
        '--dubbo-port',
        String(dubboPort),
        '--tri-port',
        String(triPort),
        '--metadata-center',
        'false',
      ]);
      running.push(provider);
      const providers = () => zkChildren(`/${ROOT}/${IFACE}/providers`);
      const instances = () => zkChildren(`/${ROOT}/${APP}`);
      await waitUntil(
        async () => (await providers()).length === 2 && (await instances()).length === 1,
        'both levels in ZooKeeper',
        120_000,
      );
      // No metadata center: nothing names the application's interfaces but the interface level.
      expect(await zkChildren(`/${ROOT}`)).not.toContain('mapping');
      expect(await zkChildren(`/${ROOT}`)).not.toContain('metadata');
      await waitUntil(async () => (await entryOf(IFACE_HOST)) !== undefined, 'the interface entry', 120_000);
      expect(await entryOf(APP_HOST)).toBeUndefined();
      // Two sessions, two connections; one of them carried the interface level.
      expect(proxy.open()).toEqual({ all: 2, providers: 1 });

      const t0 = Date.now();
      const figures: Record<string, number> = {};
      const logFrom = bridge.logText().length;
      proxy.cutInterfaceLevel();
      await waitUntil(async () => (await providers()).length === 0, 'the interface-level session expired', 120_000);
      figures.interfaceGoneMs = Date.now() - t0;
      expect(await instances()).toHaveLength(1);
      // The bridge has decided about the application on its own: on the old code a create.
      const decided = (): string | undefined =>
        bridge
          .logText()
          .slice(logFrom)
          .split('\n')
          .find((l) => l.includes(`"name":"${APP_HOST}"`) && /"action":"(create|keep)"/.test(l));
      await waitUntil(async () => decided() !== undefined, `a decision about ${APP_HOST}`, 120_000);
      figures.decidedMs = Date.now() - t0;
      expect(decided()).toMatch(/"action":"keep"/);
      expect(decided()).toMatch(/registered at application level only/);
      // The application level stayed throughout: this was the window, not a provider gone.
      expect(await instances()).toHaveLength(1);

      // The registry client reconnects: a new session, the interface level registered again.
      const t1 = Date.now();
      proxy.refuse = false;
      await waitUntil(
        async () => (await providers()).length === 2,
        'Dubbo registering its interface level again',
        120_000,
      );
      figures.reRegisteredMs = Date.now() - t1;
      await waitUntil(
        async () => (await entryOf(IFACE_HOST))?.spec.endpoints?.length === 1,
        'the interface entry back with its endpoint',
        120_000,
      );
      figures.entryBackMs = Date.now() - t1;
      report('dubbo 3 interface-level session expired, application level alive', figures);
      expect(events.filter((e) => e.endsWith(` ${APP_HOST}`))).toEqual([]);
      expect(await entryOf(APP_HOST)).toBeUndefined();
      await provider.stop();
    }, 300_000);
  },
);
