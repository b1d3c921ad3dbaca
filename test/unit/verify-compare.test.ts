import { readFileSync } from 'node:fs';
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { synthServiceEntry } from '../../src/synth/index.js';
import {
  checkHost,
  checkKube,
  checkProxy,
  checkRegistry,
  checkSync,
  expectationOfDesired,
  type KubeServiceEntry,
  type ProxyObservation,
} from '../../src/verify/compare.js';
import { parseConfigDump } from '../../src/verify/proxy-config.js';
import { parseRegistryz, type RegistryEntry } from '../../src/verify/registryz.js';
import { HopReadError, type Expectation } from '../../src/verify/types.js';
import { verifyHosts } from '../../src/verify/verify.js';
import { renderReport, verifyExitCode } from '../../src/verify/report.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { options, svc } from './helpers.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'istiod');
const NOW = Date.parse('2024-11-05T10:01:00Z');

function desired(host: string, ports = [{ number: 80, name: 'http', protocol: 'http' }], exportTo?: string[]) {
  const r = synthServiceEntry(svc(host, [], { host, ports }), {
    ...options,
    namespace: 'default',
    ...(exportTo ? { exportTo } : {}),
  });
  if (r.kind !== 'ok') throw new Error(`synth: ${r.kind}`);
  return r.entry;
}

const www = desired('www.example.com', [
  { number: 80, name: 'http', protocol: 'http' },
  { number: 443, name: 'tls', protocol: 'tls' },
]);
const wwwExpect = expectationOfDesired(www);
const asKube = (
  o: typeof www.object,
  patch: Partial<KubeServiceEntry['spec']> = {},
  meta: Record<string, unknown> = {},
): KubeServiceEntry => ({
  ...o,
  metadata: { ...o.metadata, creationTimestamp: '2024-11-05T10:00:00Z', ...meta },
  spec: { ...o.spec, ...patch },
});
const kubeOk = (objects: KubeServiceEntry[]) => ({ ok: true as const, source: 'kube', value: objects });

describe('checkKube', () => {
  it.each<[string, KubeServiceEntry[], string, RegExp | undefined]>([
    ['the object the bridge wrote', [asKube(www.object)], 'ok', undefined],
    ['no object', [], 'missing', /no ServiceEntry default\/www\.example\.com/],
    [
      'hand-edited port (hash annotation unchanged)',
      [asKube(www.object, { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }, www.object.spec.ports[1]!] })],
      'differs',
      /edited outside the bridge.*|ports differ: kube has 443\/TLS, 8080\/HTTP/,
    ],
    [
      'older version (other hash)',
      [asKube(desired('www.example.com').object)],
      'differs',
      /content hash is \w+, the bridge wants/,
    ],
    ['not owned', [asKube(www.object, {}, { labels: {} })], 'differs', /not managed by registry-bridge/],
  ])('%s', (_name, objects, status, detail) => {
    const c = checkKube(wwwExpect, kubeOk(objects), NOW);
    expect(c.status).toBe(status);
    if (detail) expect(c.detail.join('\n')).toMatch(detail);
    else expect(c.detail).toEqual([]);
    if (status === 'ok') expect(c).toMatchObject({ since: '2024-11-05T10:00:00.000Z', ageMs: 60_000 });
  });

  it('a read failure with 403 is reported as forbidden, not missing', () => {
    const c = checkKube(
      wwwExpect,
      { ok: false, source: 'kube', error: new HopReadError('kube: forbidden', { status: 403 }) },
      NOW,
    );
    expect(c.status).toBe('forbidden');
  });
});

describe('checkRegistry', () => {
  const entry = (over: Partial<RegistryEntry> = {}): RegistryEntry => ({
    hostname: 'www.example.com',
    registry: 'External',
    namespace: 'default',
    objectName: 'www.example.com',
    ports: [
      { name: 'http', port: 80, protocol: 'HTTP' },
      { name: 'tls', port: 443, protocol: 'TLS' },
    ],
    resolution: 'DNS',
    meshExternal: false,
    addresses: [],
    creationTime: '2024-11-05T10:00:00Z',
    ...over,
  });
  it.each<[string, RegistryEntry[], string, RegExp | undefined]>([
    ['as written', [entry()], 'ok', undefined],
    ['absent', [], 'missing', /not in istiod's registry/],
    [
      'only a Kubernetes service with that name',
      [entry({ registry: 'Kubernetes', namespace: 'other' })],
      'missing',
      /only from Kubernetes other/,
    ],
    [
      'port mismatch',
      [
        entry({
          ports: [
            { name: 'http', port: 8080, protocol: 'HTTP' },
            { name: 'tls', port: 443, protocol: 'TLS' },
          ],
        }),
      ],
      'differs',
      /ports differ: istiod has 443\/TLS, 8080\/HTTP, the bridge wrote 80\/HTTP, 443\/TLS/,
    ],
    [
      'resolution',
      [entry({ resolution: 'STATIC' })],
      'differs',
      /resolution differs: istiod has STATIC, the bridge wrote DNS/,
    ],
    ['location', [entry({ meshExternal: true })], 'differs', /location differs: istiod has MESH_EXTERNAL/],
    [
      'another object owns the host',
      [entry({ objectName: 'hand-made' })],
      'differs',
      /ServiceEntry default\/hand-made/,
    ],
    [
      'duplicate host in another namespace',
      [entry(), entry({ namespace: 'team-b' })],
      'differs',
      /also defined in namespace team-b/,
    ],
  ])('%s', (_n, entries, status, detail) => {
    const c = checkRegistry(wwwExpect, { ok: true, source: 'registryz', value: entries }, NOW);
    expect(c.status).toBe(status);
    if (detail) expect(c.detail.join('\n')).toMatch(detail);
  });

  it('1.10 payload (no ObjectName) matches the same expectation', () => {
    const e = expectationOfDesired(
      desired('orders.default-group.public.nacos', [{ number: 8080, name: 'http-8080', protocol: 'http' }]),
    );
    const entries = parseRegistryz(readFileSync(join(fixtures, '1.10', 'registryz.json'), 'utf8')).entries;
    const c = checkRegistry({ ...e, namespace: 'mesh' }, { ok: true, source: 'file', value: entries }, NOW);
    // synth writes DNS for a service with an explicit host and no instances; the 1.10 payload says STATIC
    expect(c.detail).toEqual(['resolution differs: istiod has STATIC, the bridge wrote DNS']);
  });
});

describe('checkProxy on an Envoy admin dump', () => {
  const view = parseConfigDump(readFileSync(join(fixtures, 'envoy-admin-1.24', 'config_dump.json'), 'utf8'));
  const obs = (namespace = 'default'): { ok: true; source: string; value: ProxyObservation } => ({
    ok: true,
    source: 'dump',
    value: { view, namespace, kinds: new Set(['cluster', 'listener', 'route']) },
  });
  const dnsExpect: Expectation = { ...wwwExpect, resolution: 'DNS' };

  it('HTTP port: cluster + virtual host; TLS port: SNI filter chain with tcp_proxy', () => {
    const c = checkProxy(dnsExpect, obs(), NOW);
    expect(c).toMatchObject({ status: 'ok', detail: [], since: '2024-11-05T10:00:01.300Z' });
  });

  it('cluster type follows resolution (STATIC → EDS)', () => {
    const c = checkProxy({ ...wwwExpect, resolution: 'STATIC' }, obs(), NOW);
    expect(c.status).toBe('differs');
    expect(c.detail).toContain('cluster outbound|80||www.example.com is STRICT_DNS, resolution STATIC gives EDS');
  });

  it('port mismatch: names the cluster that exists instead', () => {
    const e: Expectation = {
      ...dnsExpect,
      ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }, dnsExpect.ports[1]!],
    };
    const c = checkProxy(e, obs(), NOW);
    expect(c.status).toBe('missing');
    expect(c.detail).toEqual([
      'no cluster outbound|8080||www.example.com (has outbound|80||www.example.com: port differs)',
      'no route configuration "8080"',
    ]);
  });

  it('exported to another namespace only: the reason is given', () => {
    const e: Expectation = {
      ...expectationOfDesired(desired('hidden.example.com', undefined, ['other-ns'])),
      resolution: 'DNS',
    };
    const c = checkProxy(e, obs('default'), NOW);
    expect(c.status).toBe('missing');
    expect(c.detail.at(-1)).toBe(
      'the ServiceEntry is exported to [other-ns] only: a proxy in namespace default does not receive it',
    );
  });
});

describe('checkSync', () => {
  const syncObs = (acked: string, sent = acked) => ({
    ok: true as const,
    source: 'syncz',
    value: {
      proxyId: 'probe.default',
      proxies: [
        {
          proxy: 'probe.default',
          sent: { cluster: sent, route: sent, listener: sent },
          acked: { cluster: acked, route: acked, listener: acked },
        },
      ],
    },
  });
  const v12 = '2026-04-23T12:00:05Z/12';
  const n12 = `${v12}0f3c2a1b-0e5f-4a6b-8c7d-9e0f1a2b3c4d`;
  const n11 = `2026-04-23T12:00:05Z/110f3c2a1b-0e5f-4a6b-8c7d-9e0f1a2b3c4d`;
  it('ACK of the push that carried the change (or later) is ok', () => {
    expect(checkSync(wwwExpect, syncObs(n12), NOW, { cluster: v12, route: v12, listener: v12 }).status).toBe('ok');
  });
  it('ACK of an earlier push is not', () => {
    const c = checkSync(wwwExpect, syncObs(n11), NOW, { cluster: v12 });
    expect(c.status).toBe('missing');
    expect(c.detail[0]).toMatch(/^cluster: ACKed .*\/11.*, the change came in push 2026-04-23T12:00:05Z\/12$/);
  });
  it('without push knowledge (a real pod): sent = ACKed', () => {
    expect(checkSync(wwwExpect, syncObs(n12), NOW).status).toBe('ok');
    expect(checkSync(wwwExpect, syncObs(n11, n12), NOW).status).toBe('missing');
  });
  it('proxy not connected', () => {
    const c = checkSync(wwwExpect, { ok: true, source: 's', value: { proxyId: 'gone.default', proxies: [] } }, NOW);
    expect(c.detail).toEqual(['proxy gone.default is not connected to this istiod']);
  });
});

describe('checkHost, verifyHosts, report', () => {
  it('skipped hops do not fail a host; a failing hop does', () => {
    const r = checkHost(wwwExpect, { now: NOW, kube: kubeOk([asKube(www.object)]) });
    expect(r.ok).toBe(true);
    expect(r.hops.map((h) => h.status)).toEqual(['ok', 'skipped', 'skipped', 'skipped']);
    expect(checkHost(wwwExpect, { now: NOW, kube: kubeOk([]) }).ok).toBe(false);
  });

  it('polls until every hop is ok, measuring latency from the write and observing the histogram', async () => {
    let t = 1_000;
    let reads = 0;
    const metrics = new BridgeMetrics();
    const report = await verifyHosts(
      [{ expectation: wwwExpect, writtenAt: 1_000 }],
      {
        clock: () => t,
        sleep: async (ms) => void (t += ms),
        metrics,
        kube: {
          source: 'kube test',
          // the object appears on the third read
          listOwned: async () => (++reads >= 3 ? [asKube(www.object)] : []),
        },
      },
      { timeoutMs: 5_000, intervalMs: 100 },
    );
    expect(report.ok).toBe(true);
    expect(report.hosts[0]!.hops[0]).toMatchObject({ status: 'ok', latencyMs: 200 });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/registry_bridge_propagation_seconds_count\{hop="kube"\} 1/);
    expect(verifyExitCode(report)).toBe(0);
  });

  it("leaves nothing on the caller's long-lived signal (it runs after every apply)", async () => {
    const parent = new AbortController().signal;
    let t = 0;
    for (let i = 0; i < 50; i++) {
      // the real sleep, as the propagation checker uses it
      await verifyHosts(
        [{ expectation: wwwExpect }],
        { clock: () => (t += 50), kube: { source: 'kube test', listOwned: async () => [] } },
        { timeoutMs: 100, intervalMs: 1, signal: parent },
      );
    }
    expect(getEventListeners(parent, 'abort')).toHaveLength(0);
  });

  it('gives up at the deadline, counts the failure, exit code 5, table says why', async () => {
    let t = 0;
    const metrics = new BridgeMetrics();
    const report = await verifyHosts(
      [{ expectation: wwwExpect, writtenAt: 0 }],
      {
        clock: () => t,
        sleep: async (ms) => void (t += ms),
        metrics,
        kube: { source: 'kube test', listOwned: async () => [] },
      },
      { timeoutMs: 1_000, intervalMs: 250 },
    );
    expect(report.ok).toBe(false);
    expect(verifyExitCode(report)).toBe(5);
    expect(await metrics.registry.metrics()).toMatch(/registry_bridge_propagation_failures_total\{hop="kube"\} 1/);
    const table = renderReport(report);
    expect(table).toContain('✗ www.example.com  (ServiceEntry default/www.example.com)');
    expect(table).toMatch(/kube\s+✗ missing\s+-\s+-\s+no ServiceEntry default\/www\.example\.com/);
    expect(table).toContain('0/1 hosts propagated');
  });

  it('401 from istiod: exit code 6 (not checked), status unauthorized', async () => {
    const report = await verifyHosts([{ expectation: wwwExpect }], {
      clock: () => NOW,
      istiod: {
        baseUrl: 'http://istiod:15014',
        get: async () => {
          throw new HopReadError('GET http://istiod:15014/debug/registryz: 401 Unauthorized', { status: 401 });
        },
      },
    });
    expect(report.hosts[0]!.hops[1]!.status).toBe('unauthorized');
    expect(verifyExitCode(report)).toBe(6);
  });
});

describe('verifyHosts: many hosts, failures for good', () => {
  it('15 hosts are checked from one read per source and round, not one per host', async () => {
    const hosts = Array.from({ length: 15 }, (_, i) => desired(`h${i}.example.com`));
    let reads = 0;
    let t = 0;
    const report = await verifyHosts(
      hosts.map((h) => ({ expectation: expectationOfDesired(h) })),
      {
        clock: () => t,
        sleep: async (ms) => void (t += ms),
        kube: {
          source: 'kube test',
          listOwned: async () => (++reads, hosts.map((h) => asKube(h.object))),
        },
      },
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    expect(report.ok).toBe(true);
    expect(report.hosts).toHaveLength(15);
    expect(reads).toBe(1);
  });

  it('a failure waiting cannot repair (exportTo hides the host) ends the polling at once', async () => {
    const hidden = desired('hidden.example.com', [{ number: 80, name: 'http', protocol: 'http' }], ['other']);
    let rounds = 0;
    let t = 0;
    const dump = parseConfigDump(readFileSync(join(fixtures, 'envoy-admin-1.24', 'config_dump.json'), 'utf8'));
    const report = await verifyHosts(
      [{ expectation: expectationOfDesired(hidden) }],
      {
        clock: () => t,
        sleep: async (ms) => void (t += ms),
        proxy: async () => (
          rounds++,
          { namespace: 'default', view: dump, kinds: new Set(['cluster', 'route', 'listener'] as const) }
        ),
      },
      { timeoutMs: 3_600_000, intervalMs: 250 },
    );
    expect(rounds).toBe(1);
    const proxy = report.hosts[0]!.hops.find((h) => h.hop === 'proxy')!;
    expect(proxy).toMatchObject({ status: 'missing', final: true });
    expect(proxy.detail.at(-1)).toMatch(/exported to \[other\] only: a proxy in namespace default does not receive it/);
  });

  it('a plain "missing" keeps polling until the deadline', async () => {
    let rounds = 0;
    let t = 0;
    await verifyHosts(
      [{ expectation: wwwExpect }],
      {
        clock: () => t,
        sleep: async (ms) => void (t += ms),
        kube: { source: 'kube test', listOwned: async () => (rounds++, []) },
      },
      { timeoutMs: 1_000, intervalMs: 250 },
    );
    expect(rounds).toBe(5); // t = 0, 250, 500, 750, 1000
  });
});

describe('fail closed on an empty proxy source and unreadable registryz elements', () => {
  it('a proxy source holding nothing the host needs is an error, never ok', () => {
    const empty = parseConfigDump('{"configs": []}');
    const c = checkProxy(wwwExpect, { ok: true, source: 'dump', value: { view: empty, kinds: new Set() } }, NOW);
    expect(c.status).toBe('error');
    expect(c.detail).toEqual([
      'nothing to check: the proxy source holds nothing, the host needs clusters, routes or listeners',
    ]);
  });

  it('a registryz element of the host with wrong types makes the istiod hop an error naming it', () => {
    const parsed = parseRegistryz(
      JSON.stringify([
        { hostname: 'www.example.com', ports: [{ port: '80' }] },
        { hostname: 'other.example.com', ports: [] },
      ]),
    );
    expect(parsed.entries.map((e) => e.hostname)).toEqual(['other.example.com']);
    const c = checkRegistry(
      wwwExpect,
      { ok: true, source: 'registryz', value: parsed.entries },
      NOW,
      parsed.droppedElements,
    );
    expect(c.status).toBe('error');
    expect(c.detail[0]).toMatch(/^registryz element 0 \(host www\.example\.com\) skipped: ports\.0\.port: /);
  });
});
