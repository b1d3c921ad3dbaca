/**
 * Fault scenario with Nacos as the registry: r-nacos of the test's own (other ports, own data
 * directory, auth on: the shared servers are never killed) killed with SIGKILL and restarted,
 * the bridge's built binary running in continuous mode against the harness's kube-apiserver.
 * Prints its figures (`[fault] …`) and checks the invariants of faults-harness.ts, the Nacos
 * password and the kube token among the secrets that must not reach the log.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer, peer } from '../peers/endpoints.js';
import * as rnacosPeer from '../peers/rnacos.js';
import { BridgeProcess, KubeScope, checkInvariants, freePort, kill9Peer, report, waitUntil } from './faults-harness.js';

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
      [
        'sources:',
        '  - name: nacos',
        '    kind: nacos',
        '    nacos:',
        `      servers: ["http://${nacos.endpoints.serverAddr}"]`,
        '      auth: { username: nacos, password: { env: NACOS_PASSWORD } }',
        '      relistInterval: 5s',
        `    targetNamespace: ${scope.namespace}`,
        `sink: { kind: kube, kubeconfig: ${JSON.stringify(peer('kube').kubeconfig)} }`,
        'controller: { resyncInterval: 5s }',
        'server: { address: 127.0.0.1, port: 0 }',
        '',
      ].join('\n'),
    );
    bridge = new BridgeProcess(config, join(dir, 'bridge.log'), { NACOS_PASSWORD: password });
    const t0 = Date.now();
    await bridge.start();
    await waitUntil(async () => (await scope.owned()).size === SERVICES, `${SERVICES} entries`, 90_000);
    const byAddress = new Map([...(await scope.owned())].map(([h, a]) => [a[0]!, h]));
    const host0 = byAddress.get(address(0))!;
    expect(host0).toContain(svc(0));
    hostOf = (i) => host0.replace(svc(0), svc(i));
    for (let i = 0; i < SERVICES; i++) expect(byAddress.get(address(i))).toBe(hostOf(i));
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
    const { rssMiB } = await checkInvariants({
      scope,
      bridge,
      expected,
      foreign,
      secrets: [peer('kube').token, password],
      maxRssMiB: 400,
    });
    report('nacos (r-nacos) kill -9 + restart', {
      sourceDownDetectedMs: downMs,
      sourceUpAfterRestartMs: sourceUpMs,
      changeAfterRestartMs: changeMs,
      deletedDuringOutage: 0,
      rssMiB,
    });
  }, 240_000);
});
