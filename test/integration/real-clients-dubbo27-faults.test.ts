/**
 * A real Apache Dubbo 2.7.23 provider (ZooKeeper 3.6 client, harness variant `dubbo27`) in the
 * faults a deployment goes through, beside a Dubbo 3.3 provider of the same interface, version
 * and group, against the shared ZooKeeper, kube-apiserver and istiod, with the built bridge in
 * continuous mode:
 *
 * - the Dubbo 2.7 provider is SIGKILLed: its ephemeral provider znode goes when ZooKeeper expires
 *   its session, and its endpoint leaves the entry, which the Dubbo 3 provider keeps alive (in
 *   kube and in istiod's registry);
 * - the Dubbo 2.7 provider's session expires while the process lives (the JVM is stopped with
 *   SIGSTOP past its session timeout, then continued with SIGCONT): the znode goes, the endpoint
 *   leaves the entry; once continued, Dubbo 2.7 gets a new session and registers again (its
 *   ZookeeperRegistry recovers on NEW_SESSION_CREATED), and the endpoint comes back.
 *
 * Dubbo 2.7 asks ZooKeeper for the session timeout in the registry URL parameter
 * `zk.session.expire` (milliseconds, default 60000; Dubbo 3 reads `session`); the shared
 * ZooKeeper bounds it to 2-20 ticks (4-40 s). Nothing restarts the shared ZooKeeper: only the
 * provider's own process is signalled. Each scenario prints a `[fault]` line with its figures.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';
import { install, startClient, type ClientHandle, type Variant } from '../peers/clients.js';
import { hasPeer, peer } from '../peers/endpoints.js';
import { BridgeProcess, report, waitUntil } from './faults-harness.js';
import {
  freePort,
  listEntries,
  removeNamespaces,
  until,
  dubboArgs,
  withZk,
  zkChildren,
  zkRemoveTree,
  zkBridgeYaml,
  type Entry,
} from './real-clients-kit.js';

const id = randomBytes(3).toString('hex');
const ROOT = `rc27-${id}`; // the Dubbo registry group = its ZooKeeper root
const TARGET = `rb-rc27-${id}`;
const IFACE = 'registrybridge.demo.GreetService';
/** The session timeout the Dubbo 2.7 provider asks for (ms). */
const SESSION_27_MS = 6000;

/** `address TCP:port` of each endpoint, sorted. */
const endpointsOf = (e: Entry | undefined) =>
  (e?.spec.endpoints ?? [])
    .map((ep) => `${ep.address} TCP:${ep.ports?.[e!.spec.ports[0]!.name] ?? e!.spec.ports[0]!.number}`)
    .sort();

describe.skipIf(!hasPeer('zookeeper') || !hasPeer('kube'))(
  'real Dubbo 2.7 provider faults: SIGKILL and session expiry, beside a Dubbo 3 provider of the same service',
  () => {
    let dir: string;
    let bridge: BridgeProcess;
    const running: ClientHandle[] = [];
    const stopped = new Set<number>(); // pids stopped with SIGSTOP and not yet continued
    const kc = () => loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });
    const entryOf = async (host: string) => (await listEntries(kc(), TARGET)).find((e) => e.spec.hosts[0] === host);

    async function start(args: string[], variant: Variant): Promise<ClientHandle> {
      const h = await startClient(args, { variant });
      running.push(h);
      return h;
    }

    /** A provider of GreetService (dubbo port only) in the test's root, as Dubbo 2.7 or 3.3. */
    function provider(kind: '2.7' | '3', o: { app: string; group: string; port: number }): Promise<ClientHandle> {
      const zk = peer('zookeeper').connect;
      // timeout: how long Dubbo waits for its first ZooKeeper connection before giving up
      // ("zookeeper not connected"; 5 s by default, too short on a loaded machine).
      const registry =
        kind === '2.7'
          ? `zookeeper://${zk}?group=${ROOT}&zk.session.expire=${SESSION_27_MS}&timeout=30000`
          : `zookeeper://${zk}?group=${ROOT}&session=10000&timeout=30000`;
      return start(
        ['dubbo', ...dubboArgs(registry, { app: o.app, version: '1.0.0', group: o.group, dubbo: o.port })],
        kind === '2.7' ? 'dubbo27' : 'default',
      );
    }

    /** The provider URLs of the interface with this port, decoded. */
    async function providerUrls(port: number): Promise<string[]> {
      return (await zkChildren(`/${ROOT}/${IFACE}/providers`))
        .map((c) => decodeURIComponent(c))
        .filter((u) => new RegExp(`^dubbo://[^/]+:${port}/`).test(u));
    }

    /** The ephemeral owner (session id, hex) of the provider znode with this port (undefined when none). */
    async function ownerOf(port: number): Promise<string | undefined> {
      const [child] = (await zkChildren(`/${ROOT}/${IFACE}/providers`)).filter((c) =>
        new RegExp(`^dubbo://[^/]+:${port}/`).test(decodeURIComponent(c)),
      );
      if (child === undefined) return undefined;
      return withZk(
        (c) =>
          new Promise((resolve) =>
            c.exists(`/${ROOT}/${IFACE}/providers/${child}`, (err, stat) =>
              resolve(err || !stat ? undefined : stat.ephemeralOwner.toString('hex')),
            ),
          ),
      );
    }

    type Registryz = { hostname: string; ports?: { port: number; protocol: string }[] }[];
    /** Whether istiod's registry lists the host (with a TCP port). */
    async function inIstiod(host: string): Promise<boolean> {
      const res = await fetch(`${peer('istiod').debug}/debug/registryz`);
      const found = ((await res.json()) as Registryz).find((s) => s.hostname === host);
      return (found?.ports ?? []).some((p) => p.protocol === 'TCP');
    }

    /** The endpoint addresses:ports istiod holds for the host, from its endpoint shards (sorted). */
    async function istiodEndpoints(host: string): Promise<string[]> {
      const res = await fetch(`${peer('istiod').debug}/debug/endpointShardz`);
      const all = (await res.json()) as Record<
        string,
        Record<string, { Shards?: Record<string, { Addresses?: string[]; Address?: string; EndpointPort?: number }[]> }>
      >;
      const out: string[] = [];
      for (const shards of Object.values(all[host] ?? {}))
        for (const eps of Object.values(shards.Shards ?? {}))
          for (const ep of eps) out.push(`${ep.Addresses?.[0] ?? ep.Address}:${ep.EndpointPort}`);
      return [...new Set(out)].sort();
    }

    /**
     * A Dubbo 2.7 and a Dubbo 3 provider of GreetService in `group`, each on a free port: the
     * 2.7 handle, the ports, the provider URLs and the endpoints (`address TCP:port`).
     */
    async function providerPair(group: string, apps: { app27: string; app3: string }) {
      const [p27, p3] = [await freePort('0.0.0.0'), await freePort('0.0.0.0')];
      const [d27] = await Promise.all([
        provider('2.7', { app: apps.app27, group, port: p27 }),
        provider('3', { app: apps.app3, group, port: p3 }),
      ]);
      const [url27] = await providerUrls(p27);
      const [url3] = await providerUrls(p3);
      return { d27: d27!, p27, p3, url27, url3 };
    }

    /** Waits for the entry of `host` with both endpoints, and checks they are `ep27` and `ep3`; the entry. */
    async function entryWithBoth(host: string, ep27: string, ep3: string): Promise<Entry> {
      await waitUntil(
        async () => endpointsOf(await entryOf(host)).length === 2,
        'the entry with both providers',
        120_000,
      );
      const before = (await entryOf(host))!;
      expect(endpointsOf(before)).toEqual([ep27, ep3].sort());
      return before;
    }

    /**
     * Waits, from `t0`, for ZooKeeper to drop the provider znode with port `p27` and for the entry
     * of `host` to keep one endpoint: the entries read (`seen`) and the times (`figures`, under
     * `znodeGoneMs` and `entryKey`).
     */
    async function droppedBoth(o: {
      p27: number;
      host: string;
      t0: number;
      znodeWhat: string;
      entryWhat: string;
      entryKey: string;
    }): Promise<{ seen: (Entry | undefined)[]; figures: Record<string, number> }> {
      const figures: Record<string, number> = {};
      const seen: (Entry | undefined)[] = [];
      await Promise.all([
        waitUntil(async () => (await providerUrls(o.p27)).length === 0, o.znodeWhat, 120_000).then(
          () => (figures.znodeGoneMs = Date.now() - o.t0),
        ),
        waitUntil(
          async () => {
            const e = await entryOf(o.host);
            seen.push(e);
            return endpointsOf(e).length === 1;
          },
          o.entryWhat,
          120_000,
        ).then(() => (figures[o.entryKey] = Date.now() - o.t0)),
      ]);
      return { seen, figures };
    }

    /** Every entry `seen` was there, the one `before` (never re-created), with the endpoint `ep3`. */
    function expectNeverMissing(seen: (Entry | undefined)[], before: Entry, ep3: string): void {
      for (const e of seen) {
        expect(e, 'the entry was never missing').toBeDefined();
        expect(e!.metadata.uid).toBe(before.metadata.uid);
        expect(endpointsOf(e)).toContain(ep3);
      }
    }

    beforeAll(async () => {
      const log = (m: string) => process.stderr.write(`[registry-clients] ${m}\n`);
      for (const v of ['dubbo27', 'default'] as const) await install(log, v);
      dir = await mkdtemp(join(tmpdir(), 'rb-rc27-'));
      // The root exists before the bridge reads it (a missing root is an unavailable source).
      await withZk((c) => new Promise<void>((resolve) => c.create(`/${ROOT}`, null, 0, () => resolve())));
      await kc()
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: TARGET } } });
      const cfg = join(dir, 'bridge.yaml');
      await writeFile(cfg, zkBridgeYaml(TARGET, ROOT));
      bridge = new BridgeProcess(cfg, join(dir, 'bridge.log'));
      await bridge.start();
    }, 15 * 60_000);

    afterAll(async () => {
      for (const pid of stopped) process.kill(pid, 'SIGCONT');
      await Promise.all(running.map((c) => c.kill()));
      await bridge?.stop();
      await removeNamespaces(kc(), [TARGET]);
      await zkRemoveTree(`/${ROOT}`);
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('SIGKILL of the Dubbo 2.7 provider: its znode goes at session expiry, its endpoint leaves the entry; the Dubbo 3 provider keeps the entry (kube and istiod)', async () => {
      const group = `k-${id}`;
      const host = `registrybridge.demo.greetservice.v-1-0-0.g-${group}.dubbo`;
      const { d27, p27, p3, url27, url3 } = await providerPair(group, { app27: `kill27-${id}`, app3: `kill3-${id}` });
      expect(url27).toContain('release=2.7.23');
      expect(url3).toContain('release=3.');
      const addr27 = /^dubbo:\/\/([^/:]+):/.exec(url27!)![1]!;
      const addr3 = /^dubbo:\/\/([^/:]+):/.exec(url3!)![1]!;
      const ep27 = `${addr27} TCP:${p27}`;
      const ep3 = `${addr3} TCP:${p3}`;
      const before = await entryWithBoth(host, ep27, ep3);
      if (hasPeer('istiod'))
        await until('istiod has both endpoints', async () => (await istiodEndpoints(host)).length === 2, 120_000);

      const t0 = Date.now();
      await d27.kill();
      const { seen, figures } = await droppedBoth({
        p27,
        host,
        t0,
        znodeWhat: 'ZooKeeper expired the killed provider',
        entryWhat: 'the entry dropping the killed Dubbo 2.7 provider',
        entryKey: 'entryMs',
      });
      if (hasPeer('istiod')) {
        await until(
          'istiod dropping the killed endpoint',
          async () => (await istiodEndpoints(host)).length === 1,
          120_000,
        );
        figures.istiodMs = Date.now() - t0;
        expect(await istiodEndpoints(host)).toEqual([`${addr3}:${p3}`]);
        expect(await inIstiod(host)).toBe(true);
      }
      report('dubbo 2.7 provider SIGKILL', { sessionTimeoutMs: SESSION_27_MS, ...figures });
      // The entry was there at every look, with the Dubbo 3 endpoint, and never re-created.
      expectNeverMissing(seen, before, ep3);
      expect(endpointsOf(await entryOf(host))).toEqual([ep3]);
    }, 300_000);

    it('the Dubbo 2.7 provider session expires while the process lives (SIGSTOP past the timeout, SIGCONT): the endpoint leaves the entry, Dubbo 2.7 registers again with a new session, the endpoint comes back', async () => {
      const group = `s-${id}`;
      const host = `registrybridge.demo.greetservice.v-1-0-0.g-${group}.dubbo`;
      const { d27, p27, p3, url27, url3 } = await providerPair(group, { app27: `stop27-${id}`, app3: `stop3-${id}` });
      const ep27 = `${/^dubbo:\/\/([^/:]+):/.exec(url27!)![1]!} TCP:${p27}`;
      const ep3 = `${/^dubbo:\/\/([^/:]+):/.exec(url3!)![1]!} TCP:${p3}`;
      const before = await entryWithBoth(host, ep27, ep3);
      const session1 = await ownerOf(p27);
      expect(session1).toBeDefined();

      const t0 = Date.now();
      process.kill(d27.pid, 'SIGSTOP');
      stopped.add(d27.pid);
      const { seen, figures } = await droppedBoth({
        p27,
        host,
        t0,
        znodeWhat: 'ZooKeeper expired the stopped provider',
        entryWhat: 'the entry dropping the stopped provider',
        entryKey: 'entryDroppedMs',
      });
      expect(endpointsOf(await entryOf(host))).toEqual([ep3]);

      // Continued: its Curator client finds the session expired, opens a new one, and Dubbo 2.7
      // registers its URL again (the same URL, owned by the new session).
      const t1 = Date.now();
      process.kill(d27.pid, 'SIGCONT');
      stopped.delete(d27.pid);
      await Promise.all([
        waitUntil(async () => (await providerUrls(p27)).length === 1, 'Dubbo 2.7 registering again', 120_000).then(
          () => (figures.reRegisteredMs = Date.now() - t1),
        ),
        waitUntil(
          async () => {
            const e = await entryOf(host);
            seen.push(e);
            return endpointsOf(e).length === 2;
          },
          'the endpoint back in the entry',
          120_000,
        ).then(() => (figures.entryBackMs = Date.now() - t1)),
      ]);
      const session2 = await ownerOf(p27);
      expect(session2).toBeDefined();
      expect(session2).not.toBe(session1);
      expect(await providerUrls(p27)).toEqual([url27]);
      expect(endpointsOf(await entryOf(host))).toEqual([ep27, ep3].sort());
      if (hasPeer('istiod')) {
        await until(
          'istiod with both endpoints again',
          async () => (await istiodEndpoints(host)).length === 2,
          120_000,
        );
        figures.istiodBackMs = Date.now() - t1;
      }
      report('dubbo 2.7 provider session expiry (SIGSTOP, SIGCONT)', { sessionTimeoutMs: SESSION_27_MS, ...figures });
      expectNeverMissing(seen, before, ep3);
      expect(d27.output()).not.toMatch(/Exception in thread "main"/);
    }, 300_000);
  },
);
