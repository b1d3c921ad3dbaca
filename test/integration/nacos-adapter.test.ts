/**
 * The Nacos adapter against the real Java Nacos server and r-nacos (both from test/peers).
 * Instances are registered through the plain v1 HTTP API (persistent instances: no heartbeats
 * needed, health and weight as registered). The same golden ServiceEntries are expected from
 * both servers.
 */
import { getEventListeners } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { nacosAdapter } from '../../adapters/nacos/index.js';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { main } from '../../src/cli/main.js';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';
import { secretResolver } from '../../src/config/secret.js';
import { BridgeMetrics } from '../../src/metrics.js';
import type { SourceAdapter } from '../../src/sources/adapter.js';
import { serviceKeyString, type ServiceKey } from '../../src/model/service.js';
import { control, hasPeer, peer } from '../peers/endpoints.js';
import { capture } from '../unit/cli-harness.js';
import { eventually } from './eventually.js';
import { GOLDEN_YAML, GROUPS, NS_A, NS_B, registrations, type Reg } from './nacos-golden-registry.js';
import { mapLimit } from '../../src/util/concurrency.js';

type Server = 'nacos' | 'rnacos';
const servers: Server[] = ['nacos', 'rnacos'];
/** A group of many services in NS_B, for subscriptions that take a while (see its test). */
const MANY = 'MANY';

async function call(
  base: string,
  method: string,
  path: string,
  params: Record<string, string>,
  token?: string,
): Promise<{ status: number; body: string }> {
  const q = new URLSearchParams({ ...params, ...(token ? { accessToken: token } : {}) });
  const res = await fetch(`${base}${path}?${q}`, { method, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** The v1 form of a persistent instance as the test means it. */
function instanceForm(r: Reg): Record<string, string> {
  return {
    namespaceId: r.ns,
    groupName: r.group,
    serviceName: r.service,
    ip: r.ip,
    port: String(r.port),
    ephemeral: 'false',
    healthy: String(r.healthy ?? true),
    enabled: String(r.enabled ?? true),
    weight: String(r.weight ?? 1),
    metadata: JSON.stringify(r.metadata ?? {}),
  };
}

/** Registers `r`; false when the server cannot represent it (then it is not registered). */
async function register(base: string, r: Reg, token?: string): Promise<boolean> {
  const res = await call(base, 'POST', '/v1/ns/instance', instanceForm(r), token);
  expect(res.status, `register ${r.service} ${r.ip}: ${res.body}`).toBe(200);
  // Nacos health-checks persistent instances itself (TCP to ip:port, within seconds). These
  // addresses are made up (loopback only): switch the cluster's checker off, then register
  // again so the health we mean is the health the server reports.
  if (await disableClusterHealthCheck(base, r, token)) {
    const again = await call(base, 'POST', '/v1/ns/instance', instanceForm(r), token);
    expect(again.status, `re-register ${r.service} ${r.ip}: ${again.body}`).toBe(200);
  }
  if (r.healthy === false && !(await markUnhealthy(base, r, token))) {
    // No health API (r-nacos): an instance the server would report healthy must not stand in
    // for an unhealthy one. Unhealthy instances never reach a ServiceEntry, so leaving it out
    // expects the same golden output.
    await deregister(base, r);
    return false;
  }
  return true;
}

/** Health of a persistent instance is the server's to set: use its health API (v3, else v1). */
async function markUnhealthy(base: string, r: Reg, token?: string): Promise<boolean> {
  const params = {
    namespaceId: r.ns,
    groupName: r.group,
    serviceName: r.service,
    clusterName: 'DEFAULT',
    ip: r.ip,
    port: String(r.port),
    healthy: 'false',
    ephemeral: 'false',
  };
  for (const path of ['/v3/admin/ns/health/instance', '/v1/ns/health/instance']) {
    const res = await call(
      base,
      'PUT',
      path,
      path.startsWith('/v1') ? { ...params, serviceName: `${r.group}@@${r.service}` } : params,
      token,
    );
    if (res.status === 200 && !/"code":\s*[1-9]/.test(res.body)) return true;
  }
  return false;
}

/** Nacos 3's admin API; answers 404/410/501 where the server has none (r-nacos, 2.x v1 only). */
async function disableClusterHealthCheck(base: string, r: Reg, token?: string): Promise<boolean> {
  const res = await call(
    base,
    'PUT',
    '/v3/admin/ns/cluster',
    {
      namespaceId: r.ns,
      groupName: r.group,
      serviceName: r.service,
      clusterName: 'DEFAULT',
      checkPort: '80',
      useInstancePort4Check: 'true',
      healthChecker: JSON.stringify({ type: 'NONE' }),
    },
    token,
  );
  return res.status === 200;
}

async function deregister(base: string, r: Pick<Reg, 'ns' | 'group' | 'service' | 'ip' | 'port'>): Promise<void> {
  const res = await call(base, 'DELETE', '/v1/ns/instance', {
    namespaceId: r.ns,
    groupName: r.group,
    serviceName: r.service,
    ip: r.ip,
    port: String(r.port),
    ephemeral: 'false',
  });
  expect(res.status, `deregister ${r.service} ${r.ip}: ${res.body}`).toBe(200);
}

/** Removes every instance left in our namespaces by an earlier run. */
async function wipe(base: string): Promise<void> {
  for (const ns of [NS_A, NS_B]) {
    for (const group of [...GROUPS, 'LATE', MANY]) {
      const list = JSON.parse(
        (
          await call(base, 'GET', '/v1/ns/service/list', {
            pageNo: '1',
            pageSize: '500',
            namespaceId: ns,
            groupName: group,
          })
        ).body,
      ) as { doms?: string[] };
      for (const service of list.doms ?? []) {
        const inst = JSON.parse(
          (
            await call(base, 'GET', '/v1/ns/instance/list', {
              serviceName: `${group}@@${service.replace(/^.*@@/, '')}`,
              namespaceId: ns,
              healthyOnly: 'false',
            })
          ).body,
        ) as { hosts?: { ip: string; port: number; ephemeral?: boolean }[] };
        for (const h of inst.hosts ?? [])
          await deregister(base, { ns, group, service: service.replace(/^.*@@/, ''), ip: h.ip, port: h.port });
      }
    }
  }
}

async function hostsOf(
  base: string,
  ns: string,
  group: string,
  service: string,
): Promise<{ ip: string; healthy?: boolean }[]> {
  const raw = JSON.parse(
    (
      await call(base, 'GET', '/v1/ns/instance/list', {
        serviceName: `${group}@@${service}`,
        namespaceId: ns,
        healthyOnly: 'false',
      })
    ).body,
  ) as { hosts?: { ip: string; healthy?: boolean }[] };
  return raw.hosts ?? [];
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rb-nacos-it-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

function configYaml(serverUrl: string, extra = '', sink = ''): string {
  return [
    'sources:',
    '  - name: nacos',
    '    kind: nacos',
    '    targetNamespace: mesh',
    '    nacos:',
    `      servers: [${serverUrl}]`,
    `      namespaces: [${NS_A}, ${NS_B}]`,
    `      groups: [${GROUPS.join(', ')}]`,
    ...(extra ? [extra] : []),
    ...(sink ? [sink] : []),
  ].join('\n');
}

function makeAdapter(serverUrl: string, over: Record<string, unknown>, logs: string[] = []): SourceAdapter {
  const config = nacosAdapter.configSchema.parse({
    servers: [serverUrl],
    namespaces: [NS_A, NS_B],
    groups: [...GROUPS, 'LATE'],
    ...over,
  });
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(s) });
  return nacosAdapter.create(config, {
    source: 'nacos',
    logger,
    baseDir: dir,
    resolveSecret: secretResolver({}, dir),
    metrics: new BridgeMetrics(new Registry()),
  });
}

/** Watches `adapter`: `hint` resolves with the ms from `arm()` to the first hint naming `service` after it. */
async function hintAfterArm(
  adapter: SourceAdapter,
  service: string,
  signal: AbortSignal,
): Promise<{ arm: () => void; hint: Promise<number> }> {
  let armedAt = 0;
  let hinted: (ms: number) => void = () => {};
  const hint = new Promise<number>((r) => (hinted = r));
  await adapter.watch!((keys) => {
    if (armedAt > 0 && keys?.some((k) => k.name === service)) hinted(Date.now() - armedAt);
  }, signal);
  return { arm: () => void (armedAt = Date.now()), hint };
}

/** Resolves with ms until the listener fires for `match` (or any hint when match is undefined). */
function waitForHint(
  adapter: SourceAdapter,
  match: ((keys?: readonly { name: string }[]) => boolean) | undefined,
  timeoutMs: number,
  start: () => Promise<void>,
): Promise<number> {
  const ac = new AbortController();
  return new Promise<number>((resolve, reject) => {
    let t0 = 0;
    const timer = setTimeout(() => (ac.abort(), reject(new Error(`no change hint within ${timeoutMs} ms`))), timeoutMs);
    void adapter.watch!((keys) => {
      if (t0 === 0 || (match && !match(keys))) return;
      clearTimeout(timer);
      ac.abort();
      resolve(Date.now() - t0);
    }, ac.signal)
      .then(async () => {
        await new Promise((r) => setTimeout(r, 300)); // let the SDK subscribe
        t0 = Date.now();
        await start();
      })
      .catch(reject);
  });
}

for (const server of servers) {
  describe.skipIf(!hasPeer(server))(`nacos adapter against ${server}`, () => {
    let base: string;
    let url: string;
    /** The golden registrations the server took. */
    const kept: Reg[] = [];
    /** Waits until the server shows what was registered (disabled instances may be hidden). */
    async function shown(regs: readonly Reg[]): Promise<void> {
      for (const r of regs) {
        if (r.enabled === false) continue;
        await eventually(
          async () =>
            (await hostsOf(base, r.ns, r.group, r.service)).some(
              (h) => h.ip === r.ip && h.healthy === (r.healthy ?? true),
            ),
          `${r.service} ${r.ip} registered`,
        );
      }
    }
    beforeAll(async () => {
      base = peer(server).http;
      url = base.replace(/\/nacos$/, '');
      await wipe(base);
      for (const r of registrations)
        await eventually(
          async () => (await hostsOf(base, r.ns, r.group, r.service)).length === 0,
          `${r.service} wiped`,
        );
      for (const r of registrations) if (await register(base, r)) kept.push(r);
      await shown(kept);
    });

    it('turns two namespaces and three groups into the golden ServiceEntries (sync --once)', async () => {
      const cfg = join(dir, `${server}-golden.yaml`);
      await writeFile(cfg, configYaml(url));
      const c = capture();
      const code = await main(['sync', '--once', '-c', cfg, '-o', 'yaml'], c.io);
      expect(c.err()).not.toMatch(/"level":50/);
      expect(code).toBe(0);
      await expect(c.out()).toMatchFileSnapshot(GOLDEN_YAML);
    });

    it('pages through the service names: pages of one name read the same services as one page', async () => {
      const keysOf = async (pageSize: number) => {
        const adapter = makeAdapter(url, { pageSize, push: false });
        try {
          return (await adapter.list(new AbortController().signal)).services.map((x) => serviceKeyString(x.key)).sort();
        } finally {
          await adapter.close();
        }
      };
      const whole = await keysOf(1000);
      // A group with several services, so that pages of one take several requests.
      const perGroup = new Map<string, number>();
      for (const r of registrations) perGroup.set(`${r.ns}/${r.group}`, (perGroup.get(`${r.ns}/${r.group}`) ?? 0) + 1);
      expect(Math.max(...perGroup.values())).toBeGreaterThan(1);
      expect(whole.length).toBeGreaterThan(2);
      expect(await keysOf(1)).toEqual(whole);
    });

    it('sees a service registered after it started: relist only, and a new instance with push', async () => {
      const late: Reg = { ns: NS_A, group: 'LATE', service: `late-${server}`, ip: '127.3.0.1', port: 8080 };
      const relistOnly = makeAdapter(url, { push: false, relistInterval: 1000 });
      await relistOnly.list(new AbortController().signal);
      const relistMs = await waitForHint(relistOnly, undefined, 15_000, async () => void (await register(base, late)));
      const snap = await relistOnly.list(new AbortController().signal);
      expect(snap.services.map((s) => s.key.name)).toContain(late.service);
      await relistOnly.close();

      // Push (gRPC): a subscribed service gets a new instance; the relist is slow on purpose (60 s).
      const logs: string[] = [];
      const pushed = makeAdapter(url, { push: 'grpc', relistInterval: 60_000 }, logs);
      const ac = new AbortController();
      const { arm, hint } = await hintAfterArm(pushed, late.service, ac.signal);
      await pushed.list(ac.signal); // subscribes to every service read
      // One gRPC connection per namespace (pushes do not name theirs): both subscribed.
      // (A connection is up before the list when it fuzzy-watches: it reports 0 subscribed then.)
      const upToDate = () =>
        new Set(
          logs
            .filter((l) => l.includes('nacos gRPC subscriptions up to date'))
            .map((l) => JSON.parse(l) as { namespace: string; subscribed: number })
            .filter((l) => l.subscribed > 0)
            .map((l) => l.namespace),
        );
      await eventually(
        async () => upToDate().has(NS_A) && upToDate().has(NS_B),
        'gRPC subscriptions in both namespaces',
      );
      arm();
      await register(base, { ...late, ip: '127.3.0.2' });
      // Well inside the 60 s relist: only a push can bring it.
      const pushMs = await Promise.race([
        hint,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no gRPC push hint within 20 s')), 20_000)),
      ]);
      // The controller's read after the hint sees the pushed instance, and what the push carried
      // fingerprints like the HTTP read (else every push would cost re-reads).
      let read: string[] = [];
      for (let i = 0; i < 20 && read.length < 2; i++) {
        const snap = await pushed.readServices!(
          [{ source: 'nacos', namespace: NS_A, group: 'LATE', name: late.service }],
          ac.signal,
        );
        read = (snap.services[0]?.instances.map((x) => x.address) ?? []).sort();
        if (read.length < 2) await new Promise((r) => setTimeout(r, 250));
      }
      expect(read).toEqual(['127.3.0.1', '127.3.0.2']);
      ac.abort();
      await pushed.close();
      const text = logs.join('');
      expect(text).toContain('nacos gRPC push connected');
      expect(text).toMatch(new RegExp(`"service":"${late.service}","via":"push"`));
      expect(text).not.toMatch(/"level":(40|50)/);
      console.log(
        `[${server}] registration → change hint: relist-only (1 s interval) ${relistMs} ms; new instance with gRPC push ${pushMs} ms`,
      );

      // A deregistered instance disappears (the Java server applies it asynchronously: poll).
      await deregister(base, { ...late, ip: '127.3.0.2' });
      const after = makeAdapter(url, { push: false });
      const tGone = Date.now();
      let addresses: string[] = [];
      for (let i = 0; i < 40; i++) {
        const s2 = await after.list(new AbortController().signal);
        addresses = s2.services.find((s) => s.key.name === late.service)?.instances.map((x) => x.address) ?? [];
        if (addresses.length === 1) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(addresses).toEqual(['127.3.0.1']);
      console.log(`[${server}] deregistration → instance gone from the list: ${Date.now() - tGone} ms`);
      await after.close();
      await deregister(base, late);
    });

    it('with live gRPC subscriptions a full list answers from the pushes; a re-list that disagrees twice wins (a lost push)', async () => {
      const logs: string[] = [];
      const adapter = makeAdapter(url, { push: 'grpc', relistInterval: 1000 }, logs);
      const ac = new AbortController();
      const hints: (readonly ServiceKey[] | undefined)[] = [];
      try {
        await adapter.watch!((keys) => void hints.push(keys), ac.signal);
        // What the watch itself keeps on its signal (its timers' and the push's cleanup).
        const ownListeners = getEventListeners(ac.signal, 'abort').length;
        const first = await adapter.list(ac.signal); // read over HTTP, then subscribed
        const upToDate = () =>
          new Set(
            logs
              .filter((l) => l.includes('nacos gRPC subscriptions up to date'))
              .map((l) => (JSON.parse(l) as { namespace: string }).namespace),
          );
        await eventually(
          async () => upToDate().has(NS_A) && upToDate().has(NS_B),
          'gRPC subscriptions in both namespaces',
        );
        const orders = (s: typeof first) => s.services.find((x) => x.key.namespace === NS_A && x.key.name === 'orders');
        // The subscriptions answered with what the HTTP read saw: no change is hinted for it.
        expect(hints.flat().some((k) => k?.name === 'orders')).toBe(false);
        // From the pushes: the very objects of the previous list, not a new HTTP parse.
        const a = await adapter.list(ac.signal);
        const b = await adapter.list(ac.signal);
        expect(orders(a)).toBeDefined();
        expect(orders(b)).toBe(orders(a));
        expect(
          orders(a)!
            .instances.map((i) => i.address)
            .sort(),
        ).toEqual(
          orders(first)!
            .instances.map((i) => i.address)
            .sort(),
        );

        // A lost push, as if the server had never sent the last one: what the adapter holds for
        // `orders` goes stale. The next full list still answers from it…
        const internals = adapter as unknown as {
          pushed: Map<string, { read: { service?: unknown; rejected: unknown[]; fingerprint?: string }; at: number }>;
        };
        const key = `${NS_A}\u0000DEFAULT_GROUP\u0000orders`;
        expect(internals.pushed.has(key)).toBe(true);
        // (After the pushes that the registrations of beforeAll still cause: a real push would
        // rightly replace what is injected here.)
        await eventually(
          async () => Date.now() - (internals.pushed.get(key)?.at ?? 0) > 3000,
          'no push for orders for 3 s',
          30_000,
        );
        // (Stale, not empty: a push that leaves a service nothing usable — no instance healthy,
        // enabled and weighted — is read over HTTP before a full list believes it. So one usable
        // instance: the servers list them in no fixed order, and the first may be the weight-0 one.)
        const stale = orders(a)!
          .instances.filter((i) => i.healthy && i.enabled && i.weight > 0)
          .slice(0, 1);
        expect(stale).toHaveLength(1);
        internals.pushed.set(key, {
          read: { service: { ...orders(a)!, instances: stale }, rejected: [], fingerprint: 'lost' },
          at: 0,
        });
        expect(orders(await adapter.list(ac.signal))!.instances).toEqual(stale);
        // …until two re-lists (1 s apart) read the same thing over HTTP: that wins, is hinted,
        // and is said in a warning.
        const since = hints.length;
        await eventually(
          async () => logs.some((l) => l.includes('a push was lost') && l.includes('"service":"orders"')),
          'the warning after two disagreeing re-lists',
          15_000,
        );
        await eventually(
          async () => hints.slice(since).some((k) => k?.some((x) => x.name === 'orders')),
          'a hint for orders',
          5_000,
        );
        expect(
          orders(await adapter.list(ac.signal))!
            .instances.map((i) => i.address)
            .sort(),
        ).toEqual(
          orders(first)!
            .instances.map((i) => i.address)
            .sort(),
        );
        // Dozens of re-lists and lists later, every request has let go of the long-lived signal
        // (between two paced re-lists nothing is in flight).
        await eventually(
          async () => getEventListeners(ac.signal, 'abort').length === ownListeners,
          'no abort listener left by requests',
          5_000,
        );
      } finally {
        ac.abort();
        await adapter.close();
      }
    });

    it('while gRPC subscriptions are still pending, a full list answers from the last read instead of reading those services again', async () => {
      const many = Array.from({ length: 120 }, (_, i): Reg => ({
        ns: NS_B,
        group: MANY,
        service: `many-${String(i).padStart(3, '0')}`,
        ip: `127.3.${Math.floor(i / 200)}.${(i % 200) + 1}`,
        port: 8080,
      }));
      await mapLimit(many, 8, (r) => register(base, r));
      await eventually(
        async () => (await hostsOf(base, NS_B, MANY, 'many-119')).length === 1,
        'the last of the many services registered',
      );
      const logs: string[] = [];
      const adapter = makeAdapter(url, { push: 'grpc', namespaces: [NS_B], groups: [MANY] }, logs);
      const ac = new AbortController();
      const hints: (readonly ServiceKey[] | undefined)[] = [];
      let releaseSubscriptions: () => void = () => {};
      const subscriptionsReleased = new Promise<void>((r) => (releaseSubscriptions = r));
      type Internals = {
        push: {
          o: { concurrency?: number };
          status(): Record<string, { state: string; subscribed: number; followed: number }>;
        };
        pushed: Map<string, { read: { service?: unknown } }>;
      };
      try {
        await adapter.watch!((keys) => void hints.push(keys), ac.signal);
        const internals = adapter as unknown as Internals;
        // One subscription at a time, and every one after the first held until the second list
        // is done: pending subscriptions whatever the server's speed (10,000 services take Java
        // Nacos a minute; r-nacos answers 120 in milliseconds, before a second list could start).
        internals.push.o.concurrency = 1;
        type Conn = { unary: (type: string, ...rest: unknown[]) => Promise<unknown> };
        const gated = new WeakSet<Conn>();
        let passed = 0;
        const pushInternals = internals.push as unknown as { connection: (ns: string) => Conn };
        const connection = pushInternals.connection.bind(pushInternals);
        pushInternals.connection = (ns) => {
          const c = connection(ns);
          if (!gated.has(c)) {
            gated.add(c);
            const unary = c.unary.bind(c);
            c.unary = async (type, ...rest) => {
              if (type === 'SubscribeServiceRequest' && passed++ > 0) await subscriptionsReleased;
              return unary(type, ...rest);
            };
          }
          return c;
        };
        const first = await adapter.list(ac.signal); // read over HTTP, then subscribed
        expect(first.services).toHaveLength(many.length);
        const status = () => internals.push.status()[NS_B];
        await eventually(
          async () => status()?.state === 'ready' && status()!.subscribed > 0,
          'the gRPC connection up and subscribing',
          10_000,
        );
        const second = await adapter.list(ac.signal);
        const pendingAfter = many.length - status()!.subscribed;
        releaseSubscriptions();
        expect(pendingAfter, 'subscriptions were all done before the second list: nothing was pending').toBeGreaterThan(
          0,
        );
        const before = new Map(first.services.map((x) => [serviceKeyString(x.key), x]));
        let fromFirstRead = 0;
        for (const x of second.services) {
          const pushed = internals.pushed.get(`${NS_B}\u0000${MANY}\u0000${x.key.name}`)?.read.service;
          // Pending: the very object of the first read. Subscribed: the object its answer
          // made. Anything else was read over HTTP again.
          if (x === before.get(serviceKeyString(x.key))) fromFirstRead++;
          else expect(x, `${x.key.name} was read again`).toBe(pushed);
        }
        expect(second.services).toHaveLength(many.length);
        expect(fromFirstRead).toBeGreaterThanOrEqual(pendingAfter);
        // The subscriptions answer with what the first read saw: no change is hinted.
        await eventually(async () => status()!.subscribed === many.length, 'every subscription answered', 30_000);
        expect(hints.flat().filter((k) => k?.group === MANY)).toEqual([]);
      } finally {
        releaseSubscriptions();
        ac.abort();
        await adapter.close();
        await mapLimit(many, 8, (r) => deregister(base, r));
      }
    });

    it('a service registered after start-up is hinted by the service-name poll, long before the re-list', async () => {
      // A name never used before (an emptied service stays on Java Nacos: a rerun would not be new).
      const fresh: Reg = {
        ns: NS_B,
        group: 'LATE',
        service: `fresh-${server}-${Date.now()}`,
        ip: '127.3.1.1',
        port: 8080,
      };
      const adapter = makeAdapter(url, { push: false, relistInterval: 120_000, serviceListInterval: 300 });
      const ac = new AbortController();
      let t0 = 0;
      let hinted: (keys: readonly ServiceKey[]) => void = () => {};
      const hint = new Promise<readonly ServiceKey[]>((r) => (hinted = r));
      await adapter.watch!((keys) => {
        if (t0 > 0 && keys?.some((k) => k.name === fresh.service)) hinted(keys);
      }, ac.signal);
      try {
        await adapter.list(ac.signal); // the baseline of names
        t0 = Date.now();
        await register(base, fresh);
        const keys = await Promise.race([
          hint,
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error('no hint for the new service within 20 s')), 20_000),
          ),
        ]);
        console.log(`[${server}] new service → hint by the name poll: ${Date.now() - t0} ms`);
        // The hint names the service; reading just it finds its instance (as the controller does).
        let addresses: string[] = [];
        for (let i = 0; i < 40 && addresses.length === 0; i++) {
          const snap = await adapter.readServices!(
            keys.filter((k) => k.name === fresh.service),
            ac.signal,
          );
          addresses = snap.services.flatMap((s) => s.instances.map((x) => x.address));
          if (addresses.length === 0) await new Promise((r) => setTimeout(r, 250));
        }
        expect(addresses).toEqual([fresh.ip]);
      } finally {
        ac.abort();
        await adapter.close();
        await deregister(base, fresh);
      }
    });

    it('a service registered just before a re-list lists the names is still hinted by the next names poll', async () => {
      // The re-list (every 6 s here) lists the names, then reads each service paced by relistRate
      // (1 a second: ≥ 8 s for the services below) and hints what changed when it ends. The
      // names poll (every 4.5 s) hints new names at once. A service registered between a poll
      // (4.5 s) and the re-list's names (6 s) must not wait for the re-list's end: the re-list
      // used to move the poll's baseline, so the poll at 9 s saw nothing new.
      const slow = Array.from({ length: 8 }, (_, i): Reg => ({
        ns: NS_B,
        group: 'LATE',
        service: `paced-${i}-${server}`,
        ip: `127.3.2.${i + 1}`,
        port: 8080,
      }));
      // A name never used before: an emptied service stays on the server, subscribed by the list
      // below, and its push would hint the registration.
      const fresh: Reg = {
        ns: NS_B,
        group: 'LATE',
        service: `between-${server}-${Date.now()}`,
        ip: '127.3.3.1',
        port: 8080,
      };
      await mapLimit(slow, 4, (r) => register(base, r));
      // The names poll is what this checks: no fuzzy watch (it would hint before arm()).
      const adapter = makeAdapter(url, {
        relistInterval: 6_000,
        relistRate: 1,
        serviceListInterval: 4_500,
        fuzzyWatch: false,
      });
      const ac = new AbortController();
      const { arm, hint } = await hintAfterArm(adapter, fresh.service, ac.signal);
      const watchedAt = Date.now();
      try {
        await adapter.list(ac.signal); // the baseline of names; subscribes every service
        // The timers started as watch() returned: the registration must fall between 4.5 and 6 s.
        expect(Date.now() - watchedAt, 'the first list took too long for the timing below').toBeLessThan(4_000);
        await new Promise((r) => setTimeout(r, watchedAt + 5_250 - Date.now()));
        await register(base, fresh);
        arm();
        const ms = await Promise.race([hint, new Promise<number>((r) => setTimeout(() => r(-1), 6_000))]);
        console.log(`[${server}] service registered between a names poll and a re-list → hint in ${ms} ms`);
        expect(
          ms,
          'no hint within 6 s (the next names poll is 3.75 s away; the re-list ends ≥ 8 s after its names)',
        ).toBeGreaterThanOrEqual(0);
      } finally {
        ac.abort();
        await adapter.close();
        await deregister(base, fresh);
        await mapLimit(slow, 4, (r) => deregister(base, r));
      }
    });

    it("a new service found by the names poll is pushed from then on: its next instances don't wait for a re-list", async () => {
      // A deployment's first instance registers the service; the names poll finds it and the
      // controller reads it (readServices). Its other instances come seconds later: they must be
      // pushed, not wait for the re-list (120 s here) to subscribe the service.
      const name = `rollout-${server}-${Date.now()}`;
      const first: Reg = { ns: NS_B, group: 'LATE', service: name, ip: '127.3.4.1', port: 8080 };
      const second: Reg = { ...first, ip: '127.3.4.2' };
      const adapter = makeAdapter(url, { relistInterval: 120_000, serviceListInterval: 300, fuzzyWatch: false });
      const ac = new AbortController();
      const hints: { at: number; keys: readonly ServiceKey[] | undefined }[] = [];
      await adapter.watch!((keys) => hints.push({ at: Date.now(), keys }), ac.signal);
      const hintFor = async (since: number, what: string) => {
        await eventually(
          async () => hints.some((h) => h.at >= since && h.keys?.some((k) => k.name === name)),
          what,
          5_000,
        );
        return hints
          .find((h) => h.at >= since && h.keys?.some((k) => k.name === name))!
          .keys!.filter((k) => k.name === name);
      };
      const addresses = async (keys: readonly ServiceKey[]) =>
        (await adapter.readServices!(keys, ac.signal)).services
          .flatMap((x) => x.instances.map((i) => i.address))
          .sort();
      try {
        await adapter.list(ac.signal); // the baseline of names
        let t = Date.now();
        await register(base, first);
        const keys = await hintFor(t, 'a hint for the new service (names poll)');
        await eventually(
          async () => (await addresses(keys)).length === 1,
          'the new service read with its first instance',
          10_000,
        );
        // Its subscription is made in the background; the second instance comes after it.
        await new Promise((r) => setTimeout(r, 1_500));
        t = Date.now();
        await register(base, second);
        await hintFor(t, "a hint for the new service's second instance within 5 s (a push; the re-list is 120 s away)");
        console.log(`[${server}] new service's second instance → hint: ${hints.find((h) => h.at >= t)!.at - t} ms`);
        expect(await addresses(keys)).toEqual([first.ip, second.ip]);
      } finally {
        ac.abort();
        await adapter.close();
        await deregister(base, first);
        await deregister(base, second);
      }
    });

    it('keeps everything while the server is stopped, reports it unavailable, converges after restart', async () => {
      const out = join(dir, `${server}-files`);
      const cfg = join(dir, `${server}-files.yaml`);
      await writeFile(cfg, configYaml(url, '', `sink: {kind: files, dir: ${out}}`));
      const first = capture();
      expect(await main(['sync', '--once', '-c', cfg], first.io)).toBe(0);
      const files = async () => (await readdir(join(out, 'mesh'))).sort();
      const before = await files();
      expect(before.length).toBeGreaterThanOrEqual(4);

      const ctl = control(server);
      await ctl.stop();
      try {
        const down = capture();
        expect(await main(['sync', '--once', '-c', cfg], down.io)).toBe(1);
        expect(down.err()).toMatch(/source unavailable; its deletions are fenced/);
        expect(down.err()).toContain(url);
        expect(await files()).toEqual(before);
      } finally {
        await ctl.start();
      }
      // What a server keeps across a restart is its business (r-nacos answered once with no
      // service at all right after it, and lost instances registered shortly before it was
      // stopped): a registry restarted empty is the "restarted empty" row of docs/lifecycle.md.
      // The clients register again, as real ones do; the convergence under test starts once the
      // server shows its registrations again.
      for (const r of kept) await register(base, r);
      await shown(kept);
      const up = capture();
      let code = -1;
      // Java Nacos may answer before its naming data is loaded: give it a few tries.
      for (let i = 0; i < 20 && code !== 0; i++) {
        code = await main(['sync', '--once', '-c', cfg], up.io);
        if (code !== 0) await new Promise((r) => setTimeout(r, 1000));
      }
      expect(code).toBe(0);
      expect(await files()).toEqual(before);
    });

    it('sync --once into kube-apiserver: creates while it reads, and a host clash ends as the key order says', async () => {
      // EARLY_B is read first, EARLY_A sorts first: its "clash" must own the host in the end,
      // whichever of the two the early creates saw first.
      const regs: Reg[] = [
        { ns: NS_B, group: 'EARLY_B', service: 'clash', ip: '127.5.0.2', port: 80 },
        ...Array.from({ length: 6 }, (_, i): Reg => ({
          ns: NS_B,
          group: 'EARLY_B',
          service: `plain-${i}`,
          ip: `127.5.1.${i + 1}`,
          port: 80,
        })),
        { ns: NS_B, group: 'EARLY_A', service: 'clash', ip: '127.5.0.1', port: 80 },
      ];
      const kc = loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });
      const core = kc.makeApiClient(CoreV1Api);
      const target = `rb-early-${server}-${Date.now().toString(36)}`;
      const host = (service: string) => `${service}.${NS_B}.${target}.nacos`;
      await core.createNamespace({ body: { metadata: { name: target } } });
      try {
        for (const r of regs) await register(base, r);
        for (const r of regs)
          await eventually(
            async () => (await hostsOf(base, r.ns, r.group, r.service)).some((h) => h.ip === r.ip),
            `${r.group} ${r.service} registered`,
          );
        const cfg = join(dir, `${server}-kube.yaml`);
        await writeFile(
          cfg,
          [
            'sources:',
            '  - name: nacos',
            '    kind: nacos',
            `    targetNamespace: ${target}`,
            // Hosts unique to this run: the shared apiserver keeps every run's entries, and a
            // host that an entry in another namespace declares is not written.
            `    hostTemplate: '{service}.{namespace}.${target}.nacos'`,
            '    nacos:',
            `      servers: [${url}]`,
            `      namespaces: [${NS_B}]`,
            '      groups: [EARLY_B, EARLY_A]',
            '      push: false',
            `sink: {kind: kube, kubeconfig: ${peer('kube').kubeconfig}}`,
          ].join('\n'),
        );
        for (let pass = 0; pass < 2; pass++) {
          const c = capture();
          // Degraded (4): the losing "clash" is reported, everything else converged.
          expect(await main(['sync', '--once', '-c', cfg], c.io), c.err()).toBe(4);
          expect(c.err()).toContain(`host ${host('clash')} is already produced by service`);
          expect(c.err()).toMatch(/is already produced by service [^"]*EARLY_A/);
          const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
            group: 'networking.istio.io',
            version: 'v1',
            namespace: target,
            plural: 'serviceentries',
          })) as {
            items: { metadata: { name: string }; spec: { endpoints?: { address: string }[] } }[];
          };
          const byName = new Map(
            list.items.map((o) => [o.metadata.name, (o.spec.endpoints ?? []).map((e) => e.address)]),
          );
          expect([...byName.keys()].sort()).toEqual([
            host('clash'),
            ...Array.from({ length: 6 }, (_, i) => host(`plain-${i}`)),
          ]);
          expect(byName.get(host('clash'))).toEqual(['127.5.0.1']);
          expect(byName.get(host('plain-3'))).toEqual(['127.5.1.4']);
        }
      } finally {
        for (const r of regs) await deregister(base, r);
        await core.deleteNamespace({ name: target });
      }
    });

    it('keeps last known instances of a service that suddenly reads empty (empty protection)', async () => {
      const reg: Reg = { ns: NS_B, group: 'DEFAULT_GROUP', service: `flaky-${server}`, ip: '127.4.0.1', port: 80 };
      await register(base, reg);
      await eventually(
        async () => (await hostsOf(base, NS_B, 'DEFAULT_GROUP', reg.service)).length === 1,
        'flaky registered',
      );
      const metrics = new BridgeMetrics(new Registry());
      const config = nacosAdapter.configSchema.parse({
        servers: [url],
        namespaces: [NS_B],
        groups: ['DEFAULT_GROUP'],
        push: false,
        emptyProtection: { keepFor: '2s' },
      });
      const adapter = nacosAdapter.create(config, {
        source: 'nacos',
        logger: pino({ level: 'silent' }),
        baseDir: dir,
        resolveSecret: secretResolver({}, dir),
        metrics,
      });
      const signal = new AbortController().signal;
      const find = async () => (await adapter.list(signal)).services.find((s) => s.key.name === reg.service);
      expect((await find())?.instances).toHaveLength(1);
      await deregister(base, reg);
      // Wait until the server itself answers empty, then the adapter must still serve the last known.
      for (let i = 0; i < 40; i++) {
        const raw = JSON.parse(
          (
            await call(base, 'GET', '/v1/ns/instance/list', {
              serviceName: `DEFAULT_GROUP@@${reg.service}`,
              namespaceId: NS_B,
              healthyOnly: 'false',
            })
          ).body,
        ) as { hosts?: unknown[] };
        if ((raw.hosts ?? []).length === 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect((await find())?.instances).toHaveLength(1);
      const stale = (await metrics.registry.getSingleMetric('registry_bridge_source_stale_seconds')!.get()).values[0]
        ?.value;
      expect(stale).toBeGreaterThanOrEqual(0);
      expect(stale).toBeLessThan(2);
      await new Promise((r) => setTimeout(r, 2100));
      expect((await find())?.instances ?? []).toHaveLength(0);
      await adapter.close();
    });
  });
}

describe('unsupported or unreachable servers', () => {
  it('reports an unreachable server as unavailable, never as empty', async () => {
    const cfg = join(dir, 'unreachable.yaml');
    await writeFile(cfg, configYaml('http://127.0.0.1:1'));
    const c = capture();
    expect(await main(['sync', '--once', '-c', cfg, '-o', 'yaml'], c.io)).toBe(1);
    expect(c.err()).toMatch(
      /no Nacos server answered GET \/v1\/ns\/service\/list: http:\/\/127\.0\.0\.1:1\/nacos: ECONNREFUSED/,
    );
    expect(c.out()).toBe('');
  });

  it.skipIf(!hasPeer('nacos'))('names the missing v1 API when the server does not serve it (api: v1)', async () => {
    // A wrong context path is what a Nacos >= 3.2 looks like to a v1 client: the API is absent.
    const cfg = join(dir, 'nov1.yaml');
    await writeFile(cfg, configYaml(`${peer('nacos').http}/missing`, '      api: v1'));
    const c = capture();
    expect(await main(['sync', '--once', '-c', cfg, '-o', 'yaml'], c.io)).toBe(1);
    expect(c.err()).toMatch(/does not serve the Nacos v1 naming OpenAPI.*Nacos >= 3\.2 removed it/);
  });

  it.skipIf(!hasPeer('nacos'))('without v1 (api: auto) reads over gRPC and says so once', async () => {
    const cfg = join(dir, 'nov1-auto.yaml');
    await writeFile(cfg, configYaml(`${peer('nacos').http}/missing`));
    const c = capture();
    expect(await main(['sync', '--once', '-c', cfg, '-o', 'yaml'], c.io)).toBe(0);
    expect(c.err().match(/nacos read path: gRPC/g)).toHaveLength(1);
    // Chosen because the v1 API is not there.
    expect(c.err()).toMatch(/"why":"[^"]*GET \/v1\/ns\/service\/list answered HTTP 404"/);
  });
});

// ---- auth: separate servers with auth on ----

const USER = 'nacos';
const PASSWORD = 'Rb-secret-pw-9f3a1c';
const WRONG = 'Wrong-pw-77e2b0';

for (const server of servers) {
  describe.skipIf(!hasPeer(server) || process.env.RB_NACOS_AUTH_TESTS === '0')(`auth against ${server}`, () => {
    let handle: { stop(): Promise<void>; endpoints: Record<string, string> } | undefined;
    let url: string;
    beforeAll(async () => {
      const dataDir = await mkdtemp(join(tmpdir(), `rb-${server}-auth-`));
      // The built-in admin: the harness cannot grant ROLE_ADMIN to another user on Nacos 3.1.
      const auth = { username: USER, password: PASSWORD };
      handle =
        server === 'nacos'
          ? await (await import('../peers/nacos.js')).start({ dataDir, port: 8868, consolePort: 18090, auth })
          : await (await import('../peers/rnacos.js')).start({ dataDir, port: 18868, auth });
      url = handle.endpoints.http!.replace(/\/nacos$/, '');
      // Register one instance with a token of our own.
      const login = await fetch(`${handle.endpoints.http}/v1/auth/login`, {
        method: 'POST',
        body: new URLSearchParams({ username: USER, password: PASSWORD }),
      });
      const token = ((await login.json()) as { accessToken: string }).accessToken;
      await register(
        handle.endpoints.http!,
        { ns: NS_A, group: 'DEFAULT_GROUP', service: 'secured', ip: '127.9.0.1', port: 80 },
        token,
      );
    }, 300_000);
    afterAll(async () => handle?.stop());

    const authConfig = (pwFile = false) =>
      [
        'sources:',
        '  - name: nacos',
        '    kind: nacos',
        '    nacos:',
        `      servers: [${url}]`,
        `      namespaces: [${NS_A}]`,
        `      auth: {username: ${USER}, password: ${pwFile ? '{file: pw.txt}' : '{env: NACOS_PW}'}}`,
      ].join('\n');

    it('wrong password: a clear error naming the server, never the password', async () => {
      const cfg = join(dir, `${server}-auth-wrong.yaml`);
      await writeFile(cfg, authConfig());
      const c = capture({ NACOS_PW: WRONG });
      expect(await main(['sync', '--once', '-c', cfg, '-o', 'yaml', '--log-level', 'debug'], c.io)).toBe(1);
      expect(c.err()).toMatch(
        new RegExp(`login to Nacos server ${url}/nacos as user \\\\?"${USER}\\\\?" (was refused|failed with HTTP 500)`),
      );
      expect(c.err() + c.out()).not.toContain(WRONG);
    });

    it('right password (from a file): works, and the password is in no log line', async () => {
      const cfg = join(dir, `${server}-auth-right.yaml`);
      await writeFile(join(dir, 'pw.txt'), `${PASSWORD}\n`);
      await writeFile(cfg, authConfig(true));
      const c = capture();
      expect(await main(['sync', '--once', '-c', cfg, '-o', 'yaml', '--log-level', 'debug'], c.io)).toBe(0);
      expect(c.out()).toContain('secured.default-group.rb-it-a.nacos');
      expect(c.err() + c.out()).not.toContain(PASSWORD);
    });

    for (const push of ['sdk', 'grpc'] as const) {
      it(`push (${push}) works with a token, and the password reaches no log line`, async () => {
        const logs: string[] = [];
        const config = nacosAdapter.configSchema.parse({
          servers: [url],
          namespaces: [NS_A],
          auth: { username: USER, password: { env: 'NACOS_PW' } },
          relistInterval: 60_000,
          push,
        });
        const adapter = nacosAdapter.create(config, {
          source: 'nacos',
          logger: pino({ level: 'debug' }, { write: (s: string) => void logs.push(s) }),
          baseDir: dir,
          resolveSecret: secretResolver({ NACOS_PW: PASSWORD }, dir),
          metrics: new BridgeMetrics(new Registry()),
        });
        const ac = new AbortController();
        await adapter.watch!(() => {}, ac.signal);
        const snap = await adapter.list(ac.signal);
        expect(snap.services.map((s) => s.key.name)).toContain('secured');
        if (push === 'sdk')
          await new Promise((r) => setTimeout(r, 2500)); // SDK subscription polls once
        else
          await eventually(
            async () =>
              logs.some((l) => l.includes('nacos gRPC subscriptions up to date') && l.includes('"subscribed":1')),
            'gRPC subscription with the token',
          );
        ac.abort();
        await adapter.close();
        expect(logs.join('')).not.toContain(PASSWORD);
        expect(logs.join('')).not.toMatch(/"level":(40|50)/);
      });
    }
  });
}

// Unused import guard for readFile when debugging golden output by hand.
void readFile;
