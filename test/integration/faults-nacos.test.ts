/**
 * Fault scenarios with Nacos as the registry, on servers of the test's own (other ports, own
 * data directories, auth on: the shared servers are never killed or slowed down), the bridge's
 * built binary running in continuous mode against the harness's kube-apiserver:
 * - r-nacos killed with SIGKILL and restarted;
 * - login tokens that expire every few seconds (Java Nacos and r-nacos started with a short
 *   token lifetime), the bridge running past several expiries;
 * - a 5xx storm: a fault-injecting proxy (fault-proxy.ts) in front of the real r-nacos answers
 *   503 to every HTTP request and closes every gRPC connection for a window, then forwards again.
 * Each prints its figures (`[fault] …`) and checks the invariants of faults-harness.ts, the Nacos
 * password and the kube token among the secrets that must not reach the log.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { hasPeer, peer } from '../peers/endpoints.js';
import * as nacosPeer from '../peers/nacos.js';
import * as rnacosPeer from '../peers/rnacos.js';
import { FaultHttpProxy, FaultTcpProxy } from './fault-proxy.js';
import {
  BridgeProcess,
  KubeScope,
  bridgeYaml,
  finishScenario,
  freePort,
  kill9Peer,
  learnHosts,
  report,
  waitUntil,
} from './faults-harness.js';

const LONG = process.env.RB_FAULTS_LONG === '1';

const suffix = randomBytes(3).toString('hex');
const SERVICES = 10;
/** Service i, unique per run (the shared apiserver keeps every run's entries; a host held elsewhere is not written). */
const svc = (i: number) => `svc-${suffix}-${i}`;
const password = `pw-${randomBytes(12).toString('hex')}`;
const address = (i: number) => `10.88.0.${i + 1}`;

describe.skipIf(!hasPeer('kube'))('faults: Nacos (own r-nacos), the bridge as a process', () => {
  let dir: string;
  let nacos: rnacosPeer.RnacosHandle;
  let base: string;
  let scope: KubeScope;
  let bridge: BridgeProcess;
  const foreign: { name: string; fingerprint: string }[] = [];
  let hostOf: (i: number) => string;

  async function token(): Promise<string> {
    const res = await fetch(`${base}/v1/auth/login`, {
      method: 'POST',
      body: new URLSearchParams({ username: 'nacos', password }),
    });
    return ((await res.json()) as { accessToken: string }).accessToken;
  }

  /** A persistent instance (no heartbeat needed; kept across a restart of the server). */
  async function register(service: string, ip: string, port: number): Promise<void> {
    const q = new URLSearchParams({
      serviceName: service,
      ip,
      port: String(port),
      ephemeral: 'false',
      healthy: 'true',
      accessToken: await token(),
    });
    const res = await fetch(`${base}/v1/ns/instance?${q}`, { method: 'POST' });
    const text = await res.text();
    if (!res.ok || text.trim() !== 'ok') throw new Error(`register ${service} ${ip}:${port}: ${res.status} ${text}`);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-faults-nacos-'));
    nacos = await rnacosPeer.start({
      dataDir: join(dir, 'rnacos'),
      port: await freePort(),
      grpcPort: await freePort(),
      consolePort: await freePort(),
      auth: { username: 'nacos', password },
    });
    base = nacos.endpoints.http!;
    for (let i = 0; i < SERVICES; i++) await register(svc(i), address(i), 8080);
    scope = new KubeScope(peer('kube').kubeconfig, `rb-faults-nacos-${suffix}`);
    await scope.create();
    foreign.push({ name: 'foreign', fingerprint: await scope.createForeign('foreign', 'foreign.example.com') });
    const config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      bridgeYaml({
        source: {
          name: 'nacos',
          kind: 'nacos',
          settings: [
            'nacos:',
            `  servers: ["http://${nacos.endpoints.serverAddr}"]`,
            '  auth: { username: nacos, password: { env: NACOS_PASSWORD } }',
            '  relistInterval: 5s',
          ],
        },
        namespace: scope.namespace,
        kubeconfig: peer('kube').kubeconfig,
      }),
    );
    bridge = new BridgeProcess(config, join(dir, 'bridge.log'), { NACOS_PASSWORD: password });
    const t0 = Date.now();
    await bridge.start();
    await waitUntil(async () => (await scope.owned()).size === SERVICES, `${SERVICES} entries`, 90_000);
    hostOf = await learnHosts(scope, SERVICES, address, svc);
    report('nacos initial sync', { services: SERVICES, convergedMs: Date.now() - t0 });
  }, 180_000);

  afterAll(async () => {
    await bridge?.stop();
    await nacos?.stop();
    await scope?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('r-nacos kill -9 and restart: nothing deleted meanwhile, changes flow again', async () => {
    const expected = new Map(
      Array.from({ length: SERVICES }, (_, i) => [hostOf(i), [address(i)]] as [string, string[]]),
    );
    expect(await bridge.metric('registry_bridge_source_up', 'source="nacos"')).toBe(1);
    await kill9Peer(nacos.pid);
    const killedAt = Date.now();
    const downMs = await waitUntil(
      async () => (await bridge.metric('registry_bridge_source_up', 'source="nacos"')) === 0,
      'the source reported down',
      60_000,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, 12_000 - (Date.now() - killedAt))));
    expect(await scope.owned()).toEqual(expected);
    expect(bridge.alive).toBe(true);

    await nacos.start!();
    const upAt = Date.now();
    await waitUntil(
      async () => (await bridge.metric('registry_bridge_source_up', 'source="nacos"')) === 1,
      'the source back up',
      90_000,
    );
    const sourceUpMs = Date.now() - upAt;
    await register(svc(0), '10.88.9.9', 8080);
    const changeAt = Date.now();
    await waitUntil(
      async () => (await scope.owned()).get(hostOf(0))?.includes('10.88.9.9') === true,
      'the change after the restart',
      60_000,
    );
    const changeMs = Date.now() - changeAt;
    expected.set(hostOf(0), [address(0), '10.88.9.9'].sort());
    await finishScenario(
      'nacos (r-nacos) kill -9 + restart',
      { scope, bridge, expected, foreign, secrets: [peer('kube').token, password], maxRssMiB: 400 },
      {
        sourceDownDetectedMs: downMs,
        sourceUpAfterRestartMs: sourceUpMs,
        changeAfterRestartMs: changeMs,
        deletedDuringOutage: 0,
      },
    );
  }, 240_000);
});

// ---- token expiry and the 5xx storm ----

/** Settings of the bridge in these scenarios (the request bounds below are derived from them). */
const RELIST_MS = 5_000;
const RESYNC_MS = 5_000;
/** Backoff of a failed run: 500 ms doubling up to the resync interval (src/controller). */
const RUN_RETRY_MS = 500;
/** Backoff of a gRPC connection: 500 ms doubling up to 30 s (adapters/nacos/grpc.ts). */
const GRPC_RETRY_MS = 500;
const GRPC_MAX_BACKOFF_MS = 30_000;
/**
 * TCP connections of one gRPC connection attempt: grpc-js connects again within a call when a
 * connection closes before its HTTP/2 handshake, after its own backoff of 1 s growing 1.6 times
 * (connects at 0, 1 and 2.6 s; the next would be at 5.2 s, past the 5 s `requestTimeout`).
 */
const GRPC_CONNECTS_PER_ATTEMPT = 3;
/** Parallel instance-list reads (the adapter's default `concurrency`). */
const CONCURRENCY = 8;
/** Token lifetime of these servers, and how many lifetimes a run lasts. */
const TTL_S = LONG ? 10 : 4;
const EXPIRIES = LONG ? 12 : 5;
/** How long the 5xx storm lasts. */
const STORM_MS = LONG ? 90_000 : 30_000;
const STORM_SERVICES = 10;

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

/**
 * Attempts of a retry loop within `windowMs`: the first at once, then after backoffs from
 * `firstMs` doubling up to `capMs`, each wait at least half its backoff (the jitter).
 */
function maxAttempts(windowMs: number, firstMs: number, capMs: number): number {
  let n = 1;
  let t = 0;
  for (let k = 0; ; k++) {
    t += 0.5 * Math.min(capMs, firstMs * 2 ** k);
    if (t > windowMs) return n;
    n += 1;
  }
}

/** A Nacos server as a test client sees it: v1 login as `nacos`, persistent instances. */
class NacosAdmin {
  private readonly checkerOff = new Set<string>();
  constructor(
    readonly base: string,
    private readonly password: string,
    /** Java Nacos health-checks persistent instances itself: switch its checker off per service. */
    private readonly javaNacos: boolean,
    readonly group = 'DEFAULT_GROUP',
  ) {}

  private async token(): Promise<string> {
    const res = await fetch(`${this.base}/v1/auth/login`, {
      method: 'POST',
      body: new URLSearchParams({ username: 'nacos', password: this.password }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`login: ${res.status} ${body}`);
    return (JSON.parse(body) as { accessToken: string }).accessToken;
  }

  private async call(method: string, path: string, params: Record<string, string>): Promise<string> {
    const q = new URLSearchParams({ ...params, accessToken: await this.token() });
    const res = await fetch(`${this.base}${path}?${q}`, { method, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (!res.ok)
      throw new Error(`${method} ${path} (${params.serviceName ?? ''} ${params.ip ?? ''}): ${res.status} ${text}`);
    return text;
  }

  /** A persistent instance, healthy (no heartbeat needed; kept across a restart of the server). */
  async register(service: string, ip: string, port = 8080): Promise<void> {
    const form = {
      serviceName: service,
      groupName: this.group,
      ip,
      port: String(port),
      ephemeral: 'false',
      healthy: 'true',
    };
    await this.call('POST', '/v1/ns/instance', form);
    if (this.javaNacos && !this.checkerOff.has(service)) {
      // Its addresses are made up: the server's TCP check would mark them unhealthy.
      await this.call('PUT', '/v3/admin/ns/cluster', {
        namespaceId: 'public',
        groupName: this.group,
        serviceName: service,
        clusterName: 'DEFAULT',
        checkPort: '80',
        useInstancePort4Check: 'true',
        healthChecker: JSON.stringify({ type: 'NONE' }),
      });
      this.checkerOff.add(service);
      await this.call('POST', '/v1/ns/instance', form);
    }
  }
}

/**
 * Samples the bridge's entries in kube every 250 ms and notes every expected host that is
 * missing or lacks an expected endpoint (`expected` may grow meanwhile: only what it holds at
 * a sample is checked).
 */
class KubeSampler {
  readonly losses: string[] = [];
  samples = 0;
  private running = true;
  private readonly done: Promise<void>;
  constructor(
    private readonly scope: KubeScope,
    private readonly expected: Map<string, string[]>,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const owned = await this.scope.owned().catch(() => undefined);
      if (owned) {
        this.samples += 1;
        for (const [host, addresses] of this.expected) {
          const got = owned.get(host);
          if (!got) this.losses.push(`${host} deleted`);
          else for (const a of addresses) if (!got.includes(a)) this.losses.push(`${host} lost ${a}`);
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<{ losses: string[]; samples: number }> {
    this.running = false;
    await this.done;
    return { losses: [...new Set(this.losses)], samples: this.samples };
  }
}

/** A port p with p-1000, p+1000 and p+1001 free too (Java Nacos's JRaft and gRPC ports). */
async function freeNacosPort(): Promise<number> {
  const canListen = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
    });
  for (let i = 0; i < 100; i++) {
    const p = 21_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (const q of [p, p - 1000, p + 1000, p + 1001]) if (!(await canListen(q))) ok = false;
    if (ok) return p;
  }
  throw new Error('no free port set for Java Nacos');
}

function bridgeConfig(o: {
  httpProxyPort: number;
  grpcPort: number;
  namespace: string;
  group: string;
  api?: 'grpc';
}): string {
  return bridgeYaml({
    source: {
      name: 'nacos',
      kind: 'nacos',
      settings: [
        'nacos:',
        `  servers: ["http://127.0.0.1:${o.httpProxyPort}"]`,
        `  grpcPort: ${o.grpcPort}`,
        `  groups: [${o.group}]`,
        ...(o.api ? [`  api: ${o.api}`] : []),
        '  auth: { username: nacos, password: { env: NACOS_PASSWORD } }',
        `  relistInterval: ${RELIST_MS}ms`,
      ],
    },
    namespace: o.namespace,
    kubeconfig: peer('kube').kubeconfig,
    resync: `${RESYNC_MS}ms`,
  });
}

/** What a token-expiry or storm scenario works on: one server, its proxy, one bridge. */
interface Rig {
  admin: NacosAdmin;
  proxy: FaultHttpProxy;
  bridge: BridgeProcess;
  scope: KubeScope;
  foreign: { name: string; fingerprint: string }[];
  expected: Map<string, string[]>;
  /** Service i of this rig: unique per rig and run (a host another namespace declares is a conflict). */
  name: (i: number) => string;
  hostOf: (i: number) => string;
  password: string;
}

async function startRig(o: {
  label: string;
  dir: string;
  admin: NacosAdmin;
  httpTarget: { host: string; port: number };
  grpcPort: number;
  password: string;
  services: number;
  /** `grpc`: the gRPC read path (ServiceListRequest, ServiceQueryRequest with the token). */
  api?: 'grpc';
}): Promise<Rig> {
  const name = (i: number) => `svc-${suffix}-${o.label}-${i}`;
  for (let i = 0; i < o.services; i++) await o.admin.register(name(i), address(i));
  const proxy = new FaultHttpProxy(o.httpTarget);
  await proxy.listen();
  const scope = new KubeScope(peer('kube').kubeconfig, `rb-faults-${o.label}-${suffix}`);
  await scope.create();
  const foreign = [{ name: 'foreign', fingerprint: await scope.createForeign('foreign', 'foreign.example.com') }];
  const config = join(o.dir, `bridge-${o.label}.yaml`);
  await writeFile(
    config,
    bridgeConfig({
      httpProxyPort: proxy.port,
      grpcPort: o.grpcPort,
      namespace: scope.namespace,
      group: o.admin.group,
      ...(o.api ? { api: o.api } : {}),
    }),
  );
  const bridge = new BridgeProcess(config, join(o.dir, `bridge-${o.label}.log`), { NACOS_PASSWORD: o.password });
  const t0 = Date.now();
  await bridge.start();
  await waitUntil(async () => (await scope.owned()).size === o.services, `${o.services} entries`, 120_000);
  const hostOf = await learnHosts(scope, o.services, address, name);
  const expected = new Map<string, string[]>();
  for (let i = 0; i < o.services; i++) expected.set(hostOf(i), [address(i)]);
  report(`${o.label} initial sync`, { services: o.services, convergedMs: Date.now() - t0 });
  return { admin: o.admin, proxy, bridge, scope, foreign, expected, name, hostOf, password: o.password };
}

/** A rig scenario's end: its invariants (the kube token and the Nacos password kept out of the log), its figures. */
const finishRig = (rig: Rig, scenario: string, figures: Record<string, string | number>) =>
  finishScenario(
    scenario,
    {
      scope: rig.scope,
      bridge: rig.bridge,
      expected: rig.expected,
      foreign: rig.foreign,
      secrets: [peer('kube').token, rig.password],
      maxRssMiB: 400,
    },
    figures,
  );

const sourceErrors = async (b: BridgeProcess) =>
  (await b.metric('registry_bridge_source_errors_total', 'source="nacos"')) ?? 0;
const sourceUp = (b: BridgeProcess) => b.metric('registry_bridge_source_up', 'source="nacos"');

/**
 * The bridge runs past EXPIRIES token lifetimes; after about half of them a new instance of a
 * service, after all of them a new service (its name read over HTTP) must reach kube. Meanwhile
 * no entry loses an endpoint, no read fails, and the bridge logs in at most once per half token
 * lifetime (one login at a time per server).
 */
async function tokenExpiry(rig: Rig, label: string, services: number): Promise<void> {
  const ttlMs = TTL_S * 1000;
  const { admin, proxy, bridge, scope, expected, hostOf } = rig;
  const errorsBefore = await sourceErrors(bridge);
  proxy.reset();
  const t0 = Date.now();
  const sampler = new KubeSampler(scope, expected);

  await sleepUntil(t0 + ttlMs * Math.ceil(EXPIRIES / 2));
  await admin.register(rig.name(1), '10.88.9.1');
  const instanceMs = await waitUntil(
    async () => (await scope.owned()).get(hostOf(1))?.includes('10.88.9.1') === true,
    'the new instance after token expiries',
    60_000,
  );
  expected.set(hostOf(1), [address(1), '10.88.9.1'].sort());

  await sleepUntil(t0 + ttlMs * EXPIRIES);
  const fresh = services;
  await admin.register(rig.name(fresh), address(fresh));
  const serviceMs = await waitUntil(
    async () => (await scope.owned()).get(hostOf(fresh))?.includes(address(fresh)) === true,
    'the new service after token expiries',
    60_000,
  );
  expected.set(hostOf(fresh), [address(fresh)]);

  const { losses, samples } = await sampler.stop();
  const elapsedMs = Date.now() - t0;
  const counts = proxy.reset();
  const logins = [...counts.byPath].filter(([p]) => /\/auth\/(user\/)?login$/.test(p)).reduce((n, [, c]) => n + c, 0);
  const refused = counts.upstreamStatus.get(403) ?? 0;

  expect(losses, 'entries deleted or endpoints lost while tokens expired').toEqual([]);
  expect(samples).toBeGreaterThan(0);
  expect(await sourceErrors(bridge), 'reads failed while tokens expired').toBe(errorsBefore);
  expect(await sourceUp(bridge)).toBe(1);
  expect(logins).toBeGreaterThan(0);
  // One login at a time per server, and a token kept for half its lifetime: at most one login per
  // half lifetime, plus the one under way at each end of the run.
  expect(logins, `logins in ${elapsedMs} ms with a ${TTL_S} s token`).toBeLessThanOrEqual(
    Math.floor(elapsedMs / (ttlMs / 2)) + 2,
  );
  await finishRig(rig, `${label} token expiry (${TTL_S} s tokens)`, {
    runMs: elapsedMs,
    expiries: Math.floor(elapsedMs / ttlMs),
    logins,
    refused403: refused,
    requests: counts.total,
    newInstanceMs: instanceMs,
    newServiceMs: serviceMs,
    entriesLost: 0,
    sourceErrors: 0,
  });
}

describe.skipIf(!hasPeer('kube'))('faults: Nacos (own r-nacos) behind a fault-injecting proxy', () => {
  let dir: string;
  let nacos: rnacosPeer.RnacosHandle;
  let grpcProxy: FaultTcpProxy;
  let rig: Rig;
  const rpassword = `pw-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-faults-rnacos-proxy-'));
    nacos = await rnacosPeer.start({
      dataDir: join(dir, 'rnacos'),
      port: await freePort(),
      grpcPort: await freePort(),
      consolePort: await freePort(),
      auth: { username: 'nacos', password: rpassword },
      tokenTtlSeconds: TTL_S,
    });
    const http = new URL(nacos.endpoints.http!);
    const grpc = nacos.endpoints.grpc!.split(':');
    grpcProxy = new FaultTcpProxy({ host: grpc[0]!, port: Number(grpc[1]) });
    await grpcProxy.listen();
    rig = await startRig({
      label: 'rnacos',
      dir,
      admin: new NacosAdmin(nacos.endpoints.http!, rpassword, false),
      httpTarget: { host: http.hostname, port: Number(http.port) },
      grpcPort: grpcProxy.port,
      password: rpassword,
      services: STORM_SERVICES,
    });
  }, 180_000);

  afterAll(async () => {
    await rig?.bridge.stop();
    await rig?.proxy.close();
    await grpcProxy?.close();
    await nacos?.stop();
    await rig?.scope.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`r-nacos login tokens expiring every ${TTL_S} s: re-login, changes flow, nothing deleted`, async () => {
    await tokenExpiry(rig, 'nacos (r-nacos)', STORM_SERVICES);
  }, 240_000);

  it('the login API fails (503) past the token lifetime: the token is used to its end, then reads fail fenced; nothing deleted', async () => {
    const { proxy, bridge, scope, expected, hostOf, admin } = rig;
    const ttlMs = TTL_S * 1000;
    expect(await sourceUp(bridge)).toBe(1);
    const errorsBefore = await sourceErrors(bridge);
    const sampler = new KubeSampler(scope, expected);
    proxy.reset();
    proxy.failOnly = /\/auth\/(user\/)?login$/;
    proxy.mode = 'fail';
    const outageAt = Date.now();
    // Once the token has run out, the real server refuses it (403) or the bridge stops sending it:
    // either way the reads fail, and the source must read as down, not as empty.
    const downMs = await waitUntil(async () => (await sourceUp(bridge)) === 0, 'the source reported down', 60_000);
    await admin.register(rig.name(3), '10.88.9.3');
    await sleepUntil(outageAt + 3 * ttlMs);
    const counts = proxy.reset();
    proxy.mode = 'pass';
    proxy.failOnly = undefined;
    const endAt = Date.now();
    expect(bridge.alive).toBe(true);
    expect(await sourceErrors(bridge)).toBeGreaterThan(errorsBefore);
    const upMs = await waitUntil(async () => (await sourceUp(bridge)) === 1, 'the source back up', 90_000);
    await waitUntil(
      async () => (await scope.owned()).get(hostOf(3))?.includes('10.88.9.3') === true,
      'the change made while logins failed',
      90_000,
    );
    const changeAfterMs = Date.now() - endAt;
    expected.set(hostOf(3), [address(3), '10.88.9.3'].sort());
    const { losses } = await sampler.stop();
    expect(losses, 'entries deleted or endpoints lost while the token was refused').toEqual([]);
    await finishRig(rig, `nacos (r-nacos) login API failing for ${3 * TTL_S} s (${TTL_S} s tokens)`, {
      sourceDownDetectedMs: downMs,
      failedLogins: counts.injected,
      refused403: counts.upstreamStatus.get(403) ?? 0,
      sourceUpAfterMs: upMs,
      changeAfterMs,
      entriesLost: 0,
    });
  }, 240_000);

  it('a 5xx storm (503 to every HTTP request, gRPC connections closed): fenced, backed off, converges', async () => {
    const { proxy, bridge, scope, expected, hostOf, admin } = rig;
    expect(await sourceUp(bridge)).toBe(1);
    const errorsBefore = await sourceErrors(bridge);
    const sampler = new KubeSampler(scope, expected);
    proxy.reset();
    const connectionsBefore = grpcProxy.connections;
    proxy.mode = 'fail';
    grpcProxy.mode = 'fail';
    const stormAt = Date.now();
    const downMs = await waitUntil(async () => (await sourceUp(bridge)) === 0, 'the source reported down', 60_000);
    // A change on the real server meanwhile (not through the proxy): it must arrive after the storm.
    await admin.register(rig.name(2), '10.88.9.2');
    await sleepUntil(stormAt + STORM_MS);
    const stormMs = Date.now() - stormAt;
    const counts = proxy.reset();
    const grpcConnections = grpcProxy.connections - connectionsBefore;
    proxy.mode = 'pass';
    grpcProxy.mode = 'pass';
    const endAt = Date.now();

    expect(bridge.alive).toBe(true);
    const errorsDuring = (await sourceErrors(bridge)) - errorsBefore;
    expect(errorsDuring).toBeGreaterThan(0);
    expect(counts.injected).toBe(counts.total);
    // Bounded load on the failing server: full runs retried with backoff (and the resync
    // ticker), re-lists on their interval; each tries at most a service-list page and a login
    // (v3, then v1), and a keys-scoped run under way when the storm began at most one read per
    // parallel slot. gRPC reconnects back off from 500 ms to 30 s.
    const runs = maxAttempts(stormMs, RUN_RETRY_MS, RESYNC_MS) + Math.floor(stormMs / RESYNC_MS) + 1;
    const relists = Math.floor(stormMs / RELIST_MS) + 1;
    const httpBound = 3 * (runs + relists) + CONCURRENCY;
    const grpcBound = GRPC_CONNECTS_PER_ATTEMPT * maxAttempts(stormMs, GRPC_RETRY_MS, GRPC_MAX_BACKOFF_MS);
    expect(counts.total, `HTTP requests in a ${stormMs} ms storm`).toBeLessThanOrEqual(httpBound);
    expect(grpcConnections, `gRPC connections in a ${stormMs} ms storm`).toBeLessThanOrEqual(grpcBound);

    const upMs = await waitUntil(async () => (await sourceUp(bridge)) === 1, 'the source back up', 90_000);
    await waitUntil(
      async () => (await scope.owned()).get(hostOf(2))?.includes('10.88.9.2') === true,
      'the change made during the storm',
      90_000,
    );
    const changeAfterStormMs = Date.now() - endAt;
    expected.set(hostOf(2), [address(2), '10.88.9.2'].sort());
    const { losses } = await sampler.stop();
    expect(losses, 'entries deleted or endpoints lost during the storm').toEqual([]);
    await finishRig(rig, 'nacos (r-nacos) 5xx storm', {
      stormMs,
      sourceDownDetectedMs: downMs,
      sourceErrors: errorsDuring,
      httpRequests: counts.total,
      httpBound,
      grpcConnections,
      grpcBound,
      sourceUpAfterMs: upMs,
      changeAfterStormMs,
      entriesLost: 0,
    });
  }, 300_000);
});

describe.skipIf(!hasPeer('kube') || !hasPeer('nacos'))('faults: Java Nacos (own) with short-lived tokens', () => {
  let dir: string;
  let nacos: nacosPeer.NacosHandle;
  let port: number;
  let rig: Rig;
  let grpcRig: Rig | undefined;
  const jpassword = `pw-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-faults-jnacos-'));
    port = await freeNacosPort();
    nacos = await nacosPeer.start({
      dataDir: join(dir, 'nacos'),
      port,
      consolePort: await freePort(),
      auth: { username: 'nacos', password: jpassword },
      tokenTtlSeconds: TTL_S,
    });
    rig = await startRig({
      label: 'jnacos',
      dir,
      admin: new NacosAdmin(nacos.endpoints.http!, jpassword, true),
      httpTarget: { host: '127.0.0.1', port },
      grpcPort: port + 1000,
      password: jpassword,
      services: STORM_SERVICES,
    });
  }, 420_000);

  afterAll(async () => {
    for (const r of [rig, grpcRig]) {
      await r?.bridge.stop();
      await r?.proxy.close();
    }
    await nacos?.stop();
    for (const r of [rig, grpcRig]) await r?.scope.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`Java Nacos login tokens expiring every ${TTL_S} s: re-login, changes flow, nothing deleted`, async () => {
    await tokenExpiry(rig, 'nacos (Java Nacos 3.1)', STORM_SERVICES);
  }, 240_000);

  it(`the same over the gRPC read path (api: grpc: every read a gRPC request with the token)`, async () => {
    await rig.bridge.stop(); // one bridge at a time on this server
    grpcRig = await startRig({
      label: 'jnacos-grpc',
      dir,
      admin: new NacosAdmin(nacos.endpoints.http!, jpassword, true, 'GRPC_PATH'),
      httpTarget: { host: '127.0.0.1', port },
      grpcPort: port + 1000,
      password: jpassword,
      services: STORM_SERVICES,
      api: 'grpc',
    });
    expect(grpcRig.bridge.logText()).toMatch(/nacos read path: gRPC/);
    await tokenExpiry(grpcRig, 'nacos (Java Nacos 3.1, api: grpc)', STORM_SERVICES);
  }, 360_000);
});
