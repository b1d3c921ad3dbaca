/**
 * The ZooKeeper adapter against the real ZooKeeper of the harness (test/peers): both layouts,
 * watches (with the measured delay from a znode write to the change hint), digest auth,
 * chroot, an outage mid-watch (no deletions, source unavailable, convergence after restart)
 * and a session expiry. Everything runs under a fresh chroot per run.
 */
import { createRequire } from 'node:module';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'node-zookeeper-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ZooKeeperSource } from '../../adapters/zookeeper/index.js';
import { servicesOfRoots } from '../../adapters/zookeeper/layouts.js';
import { zookeeperConfigSchema } from '../../adapters/zookeeper/schema.js';
import { runCli } from '../unit/cli-harness.js';
import { reconcileOnce } from '../../src/controller/reconcile.js';
import { SourceUnavailableError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { serviceKeyString, type RegistryService, type ServiceKey } from '../../src/model/service.js';
import { secretResolver } from '../../src/config/secret.js';
import { filesSink } from '../../src/sinks/files.js';
import { defaultSynthOptions } from '../../src/synth/index.js';
import { control, hasPeer, peers } from '../peers/endpoints.js';
import { dataOf, javaUrlEncode, loadTree, rootReadOf } from '../unit/zookeeper-helpers.js';

const zk = createRequire(import.meta.url)('node-zookeeper-client') as typeof import('node-zookeeper-client');
const logger = createLogger({ level: process.env.RB_TEST_LOG ?? 'silent' });
const chroot = `/rb-zk-it-${process.pid}-${Date.now()}`;
const IFACE = 'org.apache.dubbo.demo.WatchService';

const cb = <T>(fn: (done: (err: Error | null, v?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

async function connectRaw(connect: string, auth?: string): Promise<Client> {
  const c = zk.createClient(connect, { sessionTimeout: 30_000, spinDelay: 200 });
  if (auth) c.addAuthInfo('digest', Buffer.from(auth));
  const up = new Promise<void>((r) => c.once('connected', () => r()));
  c.connect();
  await up;
  return c;
}

async function put(
  c: Client,
  path: string,
  data: Buffer | null,
  mode: number = zk.CreateMode.PERSISTENT,
  acls = zk.ACL.OPEN_ACL_UNSAFE,
): Promise<void> {
  const parent = path.slice(0, path.lastIndexOf('/'));
  if (parent) await cb((d) => c.mkdirp(parent, null, acls, zk.CreateMode.PERSISTENT, d));
  await cb((d) => c.create(path, data, acls, mode, d));
}

function source(over: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  const config = zookeeperConfigSchema.parse({
    connect: `${peers().zookeeper.connect}${chroot}`,
    requestTimeout: '1500ms',
    relistInterval: '2s',
    ...over,
  });
  const metrics = new BridgeMetrics();
  const adapter = new ZooKeeperSource(config, {
    source: 'zk',
    logger,
    baseDir: process.cwd(),
    resolveSecret: secretResolver(env, process.cwd()),
    metrics,
  });
  return { adapter, metrics };
}

/**
 * Resolves with the first onChange whose keys satisfy `match` (or any call without keys, unless
 * `keyed`: then only a hint naming the service counts — proof that a watch fired for it).
 */
function nextChange(
  hints: { keys: readonly ServiceKey[] | undefined; at: number }[],
  match: (k: ServiceKey) => boolean,
  timeoutMs = 10_000,
  keyed = false,
) {
  const start = hints.length;
  return new Promise<number>((resolve, reject) => {
    const t0 = Date.now();
    const tick = setInterval(() => {
      const hit = hints.slice(start).find((h) => (h.keys === undefined ? !keyed : h.keys.some(match)));
      if (hit) {
        clearInterval(tick);
        resolve(hit.at);
      } else if (Date.now() - t0 > timeoutMs) {
        clearInterval(tick);
        reject(new Error('no change hint'));
      }
    }, 1);
  });
}

function providerUrl(host: string, port: number) {
  return `dubbo://${host}:${port}/${IFACE}?anyhost=true&application=watch-app&dubbo=2.0.2&interface=${IFACE}&methods=ping&pid=${process.pid}&release=3.2.10&side=provider&timestamp=${Date.now()}&version=1.0.0`;
}

describe.skipIf(!hasPeer('zookeeper'))('ZooKeeper adapter against a real ZooKeeper', () => {
  let writer: Client;
  const tree = loadTree();
  const opened: ZooKeeperSource[] = [];
  const open = (...args: Parameters<typeof source>) => {
    const s = source(...args);
    opened.push(s.adapter);
    return s;
  };

  beforeAll(async () => {
    writer = await connectRaw(peers().zookeeper.connect);
    for (const z of tree) await put(writer, `${chroot}${z.path}`, dataOf(z) ?? null);
  });

  afterAll(async () => {
    await Promise.allSettled(opened.map((a) => a.close()));
    if (writer) {
      await cb((d) => writer.removeRecursive(chroot, -1, d)).catch(() => undefined);
      writer.close();
    }
  });

  it('reads the Dubbo and Curator layouts under a chroot exactly as the pure parser does', async () => {
    const { adapter, metrics } = open();
    const snap = await adapter.list(AbortSignal.timeout(10_000));
    const ns = (root: string) => `${chroot.slice(1)}${root}`;
    const expected = servicesOfRoots(
      [rootReadOf(tree, '/dubbo', ns('/dubbo')), rootReadOf(tree, '/services', ns('/services'))],
      'zk',
      { maxDataBytes: 256 * 1024 },
    );
    expect(snap.services).toEqual(expected.services);
    expect(snap.rejected.map((r) => r.reason)).toEqual(expected.rejected.map((r) => r.reason));
    expect(snap.rejected.every((r) => r.ref.startsWith('/dubbo/') || r.ref.startsWith('/services/'))).toBe(true);
    expect(snap.rejected).toHaveLength(3);
    // The controller counts rejected entries, once per run; the adapter does not count them again.
    expect((await metrics.rejectedEntries.get()).values.find((v) => v.labels.source === 'zk')?.value ?? 0).toBe(0);
  });

  it('hands each service on as its directory is read: the same objects the snapshot then holds, and the same snapshot', async () => {
    const { adapter } = open();
    const streamed: RegistryService[] = [];
    const snap = await adapter.list(AbortSignal.timeout(10_000), (s) => streamed.push(s));
    expect(streamed.length).toBe(snap.services.length);
    expect(streamed.length).toBeGreaterThan(3);
    const inSnapshot = new Set(snap.services);
    expect(streamed.every((s) => inSnapshot.has(s))).toBe(true);
    const plain = await open().adapter.list(AbortSignal.timeout(10_000));
    expect(snap.services).toEqual(plain.services);
    expect(snap.rejected).toEqual(plain.rejected);
  });

  it('a list while the watches are being armed answers from that walk: later lists return the same service objects', async () => {
    const { adapter } = open();
    const ac = new AbortController();
    try {
      const watching = adapter.watch(() => undefined, ac.signal);
      const first = await adapter.list(AbortSignal.timeout(10_000)); // the controller's first run does this
      await watching;
      const second = await adapter.list(AbortSignal.timeout(10_000));
      expect(first.services.length).toBeGreaterThan(3);
      expect(second.services).toEqual(first.services);
      // The same objects, not equal copies: the synthesis memo (keyed by object) holds from the first run.
      second.services.forEach((svc, i) => expect(svc).toBe(first.services[i]));
    } finally {
      ac.abort();
    }
  });

  it('renders the tree end to end through sync --once -o yaml', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rb-zk-cli-'));
    try {
      const cfg = join(dir, 'cfg.yaml');
      await writeFile(
        cfg,
        `sources:\n  - name: zk\n    kind: zookeeper\n    targetNamespace: mesh\n    zookeeper:\n      connect: "${peers().zookeeper.connect}${chroot}"\n`,
      );
      const { code, out, err } = await runCli(['sync', '--once', '-c', cfg, '-o', 'yaml']);
      expect(code).toBe(4); // converged, but malformed znodes were dropped (degraded)
      const yaml = out();
      for (const host of [
        'org.apache.dubbo.demo.greeterservice.v-1-0-0.g-blue.dubbo',
        'orders-api.zk',
        'com.example.order.orderfacade.dubbo',
      ])
        expect(yaml).toContain(`name: ${host}`);
      // The Dubbo 3 application greeter-app is registered in mode all: its interface entries
      // already hold its provider, so it is not published a second time.
      expect(yaml).not.toContain('name: greeter-app.dubbo');
      expect(err()).toContain(
        '"ref":"/services/orders-api/garbage-1","reason":"data is not UTF-8 text","msg":"registry entry rejected"',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('turns an added and a removed provider into a change hint within milliseconds', async () => {
    const { adapter } = open({ layout: 'dubbo', root: '/dubbo' });
    const hints: { keys: readonly ServiceKey[] | undefined; at: number }[] = [];
    const ac = new AbortController();
    await adapter.watch((keys) => hints.push({ keys, at: performance.now() }), ac.signal);
    const isWatch = (k: ServiceKey) => k.name === IFACE;
    const delays: number[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const path = `${chroot}/dubbo/${IFACE}/providers/${javaUrlEncode(providerUrl(`10.20.0.${i + 1}`, 20880))}`;
        const seen = nextChange(hints, isWatch);
        const t0 = performance.now();
        await put(writer, path, Buffer.from(`10.20.0.${i + 1}`), zk.CreateMode.EPHEMERAL);
        delays.push((await seen) - t0);
        const snap = await adapter.list(AbortSignal.timeout(5000));
        const svc = snap.services.find((s) => s.key.name === IFACE);
        expect(svc?.instances.map((x) => x.address)).toContain(`10.20.0.${i + 1}`);
      }
      const gone = `${chroot}/dubbo/${IFACE}/providers/${(await cb<string[]>((d) => writer.getChildren(`${chroot}/dubbo/${IFACE}/providers`, d)))[0]!}`;
      const seen = nextChange(hints, isWatch);
      const t0 = performance.now();
      await cb((d) => writer.remove(gone, -1, d));
      delays.push((await seen) - t0);
      const after = await adapter.list(AbortSignal.timeout(5000));
      expect(after.services.find((s) => s.key.name === IFACE)?.instances).toHaveLength(4);
      const key = hints.at(-1)!.keys![0]!;
      expect(serviceKeyString(key)).toBe(`zk/${encodeURIComponent(`${chroot.slice(1)}/dubbo`)}//${IFACE}`);
      delays.sort((a, b) => a - b);
      console.log(
        `[zookeeper] znode write → onChange: median ${delays[Math.floor(delays.length / 2)]!.toFixed(1)} ms, max ${delays.at(-1)!.toFixed(1)} ms (n=${delays.length})`,
      );

      // While watching, list() answers from the watched view without reading ZooKeeper, and
      // the answer is what a fresh walk by a second adapter sees.
      const session = (
        adapter as unknown as {
          session: { getChildren: (...a: unknown[]) => unknown; getData: (...a: unknown[]) => unknown };
        }
      ).session;
      const reads = [vi.spyOn(session, 'getChildren'), vi.spyOn(session, 'getData')];
      const fromView = await adapter.list(AbortSignal.timeout(5000));
      expect(reads.map((r) => r.mock.calls.length)).toEqual([0, 0]);
      for (const r of reads) r.mockRestore();
      const walker = open({ layout: 'dubbo', root: '/dubbo' }).adapter;
      const walked = await walker.list(AbortSignal.timeout(5000));
      expect(fromView).toEqual(walked);
    } finally {
      ac.abort();
    }
  });

  it('reads digest-protected znodes only with the credentials (from a secret reference)', async () => {
    const owner = await connectRaw(peers().zookeeper.connect, 'bridge:s3cret');
    try {
      const acl = [new zk.ACL(zk.Permission.ALL, new zk.Id('auth', ''))];
      await put(
        owner,
        `${chroot}/secure/dubbo/${IFACE}/providers/${javaUrlEncode(providerUrl('10.30.0.1', 20880))}`,
        null,
        zk.CreateMode.PERSISTENT,
        acl,
      );
    } finally {
      owner.close();
    }
    const denied = open({ layout: 'dubbo', root: '/secure/dubbo' }).adapter;
    await expect(denied.list(AbortSignal.timeout(5000))).rejects.toThrow(SourceUnavailableError);
    const allowed = open(
      { layout: 'dubbo', root: '/secure/dubbo', auth: { scheme: 'digest', credentials: { env: 'ZK_AUTH' } } },
      { ZK_AUTH: 'bridge:s3cret' },
    ).adapter;
    const snap = await allowed.list(AbortSignal.timeout(5000));
    expect(snap.services.map((s) => s.instances[0]?.address)).toEqual(['10.30.0.1']);
  });

  it('treats a root that does not exist (wrong chroot) as unavailable, never as an empty registry', async () => {
    const { adapter } = source({ roots: ['/no-such-root'] });
    try {
      await expect(adapter.list(new AbortController().signal)).rejects.toThrow(SourceUnavailableError);
      await expect(adapter.list(new AbortController().signal)).rejects.toThrow(/root \/no-such-root does not exist/);
    } finally {
      await adapter.close();
    }
  });

  it('kill ZooKeeper mid-watch: unavailable, nothing deleted; restart: converges', async () => {
    const ctl = control('zookeeper');
    const { adapter } = open();
    const hints: { keys: readonly ServiceKey[] | undefined; at: number }[] = [];
    const ac = new AbortController();
    await adapter.watch((keys) => hints.push({ keys, at: performance.now() }), ac.signal);
    const dir = await mkdtemp(join(tmpdir(), 'rb-zk-files-'));
    const sink = filesSink(dir);
    const configured = [
      {
        name: 'zk',
        kind: 'zookeeper',
        adapter,
        synth: {
          ...defaultSynthOptions,
          hostTemplate: '{service}.{versionLabel}.{groupLabel}.{kind}',
          namespace: 'mesh',
        },
      },
    ];
    const reconcile = () =>
      reconcileOnce(
        configured,
        sink,
        { policy: 'sync', maxDeletes: 100, dryRun: false },
        { logger, signal: AbortSignal.timeout(20_000) },
      );
    try {
      const first = await reconcile();
      expect(first.sourceErrors).toEqual([]);
      const files = (await readdir(dir, { recursive: true })).sort();
      expect(files.length).toBeGreaterThan(5);

      await ctl.stop();
      const t0 = Date.now();
      await expect(adapter.list(AbortSignal.timeout(10_000))).rejects.toThrow(SourceUnavailableError);
      expect(Date.now() - t0).toBeLessThan(5000);
      const during = await reconcile();
      expect(during.sourceErrors).toHaveLength(1);
      expect(during.plan.counts.delete).toBe(0);
      expect((await readdir(dir, { recursive: true })).sort()).toEqual(files);

      await ctl.start();
      // Back: the adapter reconnects on its own (a hint may or may not mark the moment).
      const deadline = Date.now() + 60_000;
      while (
        !(await adapter.list(AbortSignal.timeout(5000)).then(
          () => true,
          () => false,
        ))
      ) {
        if (Date.now() > deadline)
          throw new Error('the adapter did not read ZooKeeper again within 60 s of its restart');
        await new Promise((r) => setTimeout(r, 200));
      }
      // A provider that appeared right after the restart is seen too. A fresh writer for this and the later tests: node-zookeeper-client does not always
      // reconnect after a server restart (the adapter's session replaces such a client; the
      // test's own one would just hang). Closing the old one drops its ephemeral providers.
      writer.close();
      writer = await connectRaw(peers().zookeeper.connect);
      await put(
        writer,
        `${chroot}/dubbo/${IFACE}/providers/${javaUrlEncode(providerUrl('10.40.0.1', 20880))}`,
        null,
        zk.CreateMode.EPHEMERAL,
      );
      // Converges: the watched view (and so the full read) reaches the new provider.
      let after = await reconcile();
      for (const until = Date.now() + 20_000; Date.now() < until; after = await reconcile()) {
        if (
          after.snapshots[0]?.services
            .find((s) => s.key.name === IFACE)
            ?.instances.some((i) => i.address === '10.40.0.1')
        )
          break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(after.sourceErrors).toEqual([]);
      expect(after.snapshots[0]!.services.find((s) => s.key.name === IFACE)?.instances.map((i) => i.address)).toContain(
        '10.40.0.1',
      );
      expect(after.plan.counts.delete).toBe(0);
    } finally {
      ac.abort();
      await ctl.start();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a frozen server (SIGSTOP) reads as unavailable, not as a quiet registry; after SIGCONT it converges', async () => {
    const ctl = control('zookeeper');
    const { adapter } = open({ layout: 'dubbo', root: '/dubbo', sessionTimeout: '6s' });
    const hints: { keys: readonly ServiceKey[] | undefined; at: number }[] = [];
    const ac = new AbortController();
    await adapter.watch((keys) => hints.push({ keys, at: performance.now() }), ac.signal);
    const thaw = () => ctl.thaw();
    try {
      await adapter.list(AbortSignal.timeout(5000)); // answered from the watched view
      // Every thread stopped, not just signalled: kill() returns before the JVM's threads stop,
      // and its I/O thread could still answer the next request.
      await ctl.freeze();
      try {
        // The view is complete, but nothing proves it current: the adapter must say so.
        await expect(adapter.list(AbortSignal.timeout(10_000))).rejects.toThrow(SourceUnavailableError);
      } finally {
        thaw();
      }
      const deadline = Date.now() + 30_000;
      while (
        !(await adapter.list(AbortSignal.timeout(5000)).then(
          () => true,
          () => false,
        ))
      ) {
        if (Date.now() > deadline) throw new Error('the adapter did not read ZooKeeper again within 30 s of SIGCONT');
        await new Promise((r) => setTimeout(r, 200));
      }
      const seen = nextChange(hints, (k) => k.name === IFACE, 20_000, true);
      await put(
        writer,
        `${chroot}/dubbo/${IFACE}/providers/${javaUrlEncode(providerUrl('10.60.0.1', 20880))}`,
        null,
        zk.CreateMode.EPHEMERAL,
      );
      await seen;
      const snap = await adapter.list(AbortSignal.timeout(5000));
      expect(snap.services.find((s) => s.key.name === IFACE)?.instances.map((i) => i.address)).toContain('10.60.0.1');
    } finally {
      thaw();
      ac.abort();
    }
  });

  it('survives a session expiry: new session, watches re-armed, changes still seen', async () => {
    const { adapter } = open({ sessionTimeout: '4s', layout: 'dubbo', root: '/dubbo' });
    const hints: { keys: readonly ServiceKey[] | undefined; at: number }[] = [];
    const ac = new AbortController();
    await adapter.watch((keys) => hints.push({ keys, at: performance.now() }), ac.signal);
    try {
      await adapter.list(AbortSignal.timeout(5000));
      const victim = adapter.sessionIdentity()!;
      expect(victim).toBeDefined();
      // The classic way to expire a session: connect with its id and password, then close.
      const thief = zk.createClient(`${peers().zookeeper.connect}${chroot}`, { sessionTimeout: 4000, spinDelay: 200 });
      const cm = (thief as unknown as { connectionManager: { sessionId: Buffer; sessionPassword: Buffer } })
        .connectionManager;
      cm.sessionId = victim.id;
      cm.sessionPassword = victim.password;
      const up = new Promise<void>((r) => thief.once('connected', () => r()));
      const resynced = nextChange(hints, () => true, 30_000);
      thief.connect();
      await up;
      thief.close();
      await resynced;
      // A new session (not just "no session" while reconnecting): a read brings it up.
      const deadline = Date.now() + 15_000;
      // Reads during the reconnect may time out (unavailable): that is the adapter doing its job.
      while (
        !(await adapter.list(new AbortController().signal).then(
          () => true,
          () => false,
        )) &&
        Date.now() < deadline
      )
        await new Promise((r) => setTimeout(r, 100));
      let now = adapter.sessionIdentity()?.id.toString('hex');
      while ((now === undefined || now === victim.id.toString('hex')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        now = adapter.sessionIdentity()?.id.toString('hex');
      }
      // Taking a session over and closing it expires it on the server, but the adapter's client
      // sometimes re-attaches to the same session first and then stalls (connected, nothing
      // answered): the session replaces such a client. Either way, a change is hinted again.
      expect(now).toBeDefined();
      console.log(`after the takeover: ${now === victim.id.toString('hex') ? 'same session' : 'new session'}`);
      // A hint naming the service (a reconnect's re-walk also hints, without keys: not enough).
      const seen = nextChange(hints, (k) => k.name === IFACE, 20_000, true);
      await put(
        writer,
        `${chroot}/dubbo/${IFACE}/providers/${javaUrlEncode(providerUrl('10.50.0.1', 20880))}`,
        null,
        zk.CreateMode.EPHEMERAL,
      );
      await seen;
      // The full read is the truth; right after a takeover a read may still time out once.
      let snap: Awaited<ReturnType<typeof adapter.list>> | undefined;
      for (const until = Date.now() + 20_000; !snap && Date.now() < until;) {
        snap = await adapter.list(AbortSignal.timeout(5000)).catch(() => undefined);
        if (!snap) await new Promise((r) => setTimeout(r, 200));
      }
      expect(snap?.services.find((s) => s.key.name === IFACE)?.instances.map((i) => i.address)).toContain('10.50.0.1');
    } finally {
      ac.abort();
    }
  });
});
