import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRegistryz, resolutionName } from '../../src/verify/registryz.js';
import { parseConfigDump, toSnakeKeys } from '../../src/verify/proxy-config.js';
import { isSameOrLaterPush, parseSyncz, pushVersionOf } from '../../src/verify/syncz.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'istiod');
const fixture = (...p: string[]) => readFileSync(join(fixtures, ...p), 'utf8');

describe('parseRegistryz: every shape from 1.10 on', () => {
  it('1.10: hand-written array with a trailing {} element, address/cluster-vips, Mutex, ExportTo {"*":true}', () => {
    const { entries, dropped } = parseRegistryz(fixture('1.10', 'registryz.json'));
    expect(dropped).toBe(0);
    expect(entries).toHaveLength(2);
    const se = entries.find((e) => e.hostname === 'orders.default-group.public.nacos')!;
    expect(se).toMatchObject({
      registry: 'External',
      namespace: 'mesh',
      resolution: 'STATIC',
      meshExternal: false,
      ports: [{ name: 'http-8080', port: 8080, protocol: 'HTTP' }],
      exportTo: ['*'],
      addresses: [],
    });
    expect(se.objectName).toBeUndefined();
    expect(entries.find((e) => e.registry === 'Kubernetes')!.addresses).toEqual(['10.96.0.1']);
  });

  it('1.19: clusterVIPs {Addresses}, autoAllocatedIPv4Address, DNS_ROUND_ROBIN = 3, a malformed element dropped and counted', () => {
    const { entries, dropped } = parseRegistryz(fixture('1.19', 'registryz.json'));
    expect(dropped).toBe(1);
    expect(entries.map((e) => [e.hostname, e.resolution, e.addresses, e.exportTo])).toEqual([
      ['www.example.com', 'DNS', ['240.240.0.3'], ['*']],
      ['db.example.com', 'DNS_ROUND_ROBIN', [], ['.']],
    ]);
  });

  it('1.22: ExportTo {"*":{}} (sets.Set), null ExportTo, NONE = 2', () => {
    const { entries } = parseRegistryz(fixture('1.22', 'registryz.json'));
    expect(entries[0]).toMatchObject({
      exportTo: ['*'],
      resolution: 'STATIC',
      ports: [{ port: 50051, protocol: 'GRPC' }],
    });
    expect(entries[1]!.exportTo).toBeUndefined();
    expect(entries[1]!.resolution).toBe('NONE');
  });

  it.each([
    [0, 'STATIC'],
    [1, 'DNS'],
    [2, 'NONE'],
    [3, 'DNS_ROUND_ROBIN'],
    [4, 'ALIAS'],
    [5, 'DYNAMIC_DNS'],
    [9, 'UNKNOWN(9)'],
  ])('model.Resolution %i is %s', (code, name) => expect(resolutionName(code)).toBe(name));

  it('a 401 body (empty) or HTML is an error naming what came back', () => {
    expect(() => parseRegistryz('')).toThrow('registryz is not JSON: line 1, column 1: empty: no JSON value');
    expect(() => parseRegistryz('<html>\n<body>401</body>')).toThrow(
      'registryz is not JSON: line 1, column 1: unexpected character "<"',
    );
    expect(() => parseRegistryz('{"a":1}')).toThrow(/neither a JSON array of services nor one service object/);
  });

  // Payloads captured from the harness istiod (RB_CAPTURE_FIXTURES=1): whatever versions exist.
  const captured = existsSync(fixtures)
    ? readdirSync(fixtures).filter((d) => existsSync(join(fixtures, d, 'registryz.json')) && !/^1\.(10|19|22)$/.test(d))
    : [];
  it.each(captured.length ? captured : ['(none captured yet)'])('captured %s: every element parses', (dir) => {
    if (dir.startsWith('(')) return;
    const { entries, dropped } = parseRegistryz(fixture(dir, 'registryz.json'));
    expect(dropped).toBe(0);
    expect(entries.length).toBeGreaterThan(0);
    for (const e of entries) expect(e.resolution).toMatch(/^[A-Z_]+$/);
  });
});

describe('parseConfigDump: one parser for Envoy admin (snake_case), istiod and istioctl (camelCase)', () => {
  it('reads clusters, listeners (rds name, sni + tcp_proxy) and routes from an Envoy admin dump', () => {
    const view = parseConfigDump(fixture('envoy-admin-1.24', 'config_dump.json'));
    expect(view.dropped).toBe(0);
    expect(view.clusters.get('outbound|80||www.example.com')).toEqual({
      name: 'outbound|80||www.example.com',
      type: 'STRICT_DNS',
      versionInfo: '2024-11-05T10:00:00Z/42',
      lastUpdated: '2024-11-05T10:00:01.123Z',
    });
    expect(view.clusters.get('outbound|5432||db.example.com')!.type).toBe('EDS');
    expect(view.clusters.get('prometheus_stats')!.type).toBe('STATIC');
    const l443 = view.listeners.find((l) => l.name === '0.0.0.0_443')!;
    expect(l443.filterChains[0]).toMatchObject({
      serverNames: ['www.example.com'],
      tcpClusters: ['outbound|443||www.example.com'],
    });
    expect(view.listeners.find((l) => l.name === '0.0.0.0_80')!.filterChains[0]!.rdsName).toBe('80');
    expect(view.routes.get('80')!.virtualHosts[0]).toEqual({
      name: 'www.example.com:80',
      domains: ['www.example.com'],
      clusters: ['outbound|80||www.example.com'],
    });
  });

  it('the same dump in camelCase gives the same view', () => {
    const snake = JSON.parse(fixture('envoy-admin-1.24', 'config_dump.json')) as unknown;
    const camel = toCamel(snake);
    expect(JSON.stringify(camel)).toContain('dynamicActiveClusters');
    const a = parseConfigDump(JSON.stringify(snake));
    const b = parseConfigDump(JSON.stringify(camel));
    expect([...b.clusters.values()]).toEqual([...a.clusters.values()]);
    expect(b.listeners).toEqual(a.listeners);
    expect([...b.routes.values()]).toEqual([...a.routes.values()]);
  });

  it('istioctl proxy-config -o json arrays (clusters, routes, listeners) merge into one view', () => {
    const dump = JSON.parse(fixture('envoy-admin-1.24', 'config_dump.json')) as {
      configs: Record<string, unknown[]>[];
    };
    const clusters = (dump.configs[1]!.dynamic_active_clusters as { cluster: unknown }[]).map((c) =>
      toCamel(c.cluster),
    );
    const routes = (dump.configs[3]!.dynamic_route_configs as { route_config: unknown }[]).map((r) =>
      toCamel(r.route_config),
    );
    const view = parseConfigDump(JSON.stringify(clusters), JSON.stringify(routes));
    expect(view.clusters.size).toBe(4);
    expect(view.routes.get('80')!.virtualHosts).toHaveLength(2);
    expect(view.listeners).toEqual([]);
  });

  it('map keys (metadata filter names, labels) are not rewritten', () => {
    expect(toSnakeKeys({ filterMetadata: { 'istio.io': { fooBar: 1 } }, labels: { myLabel: 'x' } })).toEqual({
      filter_metadata: { 'istio.io': { foo_bar: 1 } },
      labels: { myLabel: 'x' },
    });
  });

  it('rejects what is no config dump', () => {
    expect(() => parseConfigDump('{"foo":1}')).toThrow(/neither "configs"/);
    expect(() => parseConfigDump('Proxy not connected to this Pilot instance.')).toThrow(/not JSON/);
  });
});

describe('parseSyncz and push versions', () => {
  const body = JSON.stringify([
    {
      cluster_id: 'Kubernetes',
      proxy: 'probe-abc.default',
      proxy_type: 'sidecar',
      istio_version: '1.31-dev',
      cluster_sent: '2026-04-23T12:00:05Z/7a1b2c3d4-0e5f-4a6b-8c7d-9e0f1a2b3c4d',
      cluster_acked: '2026-04-23T12:00:05Z/7a1b2c3d4-0e5f-4a6b-8c7d-9e0f1a2b3c4d',
      listener_sent: '2026-04-23T12:00:05Z/7b1b2c3d4-0e5f-4a6b-8c7d-9e0f1a2b3c4d',
      listener_acked: '2026-04-23T12:00:04Z/6c1b2c3d4-0e5f-4a6b-8c7d-9e0f1a2b3c4d',
      resources: {
        'type.googleapis.com/envoy.config.cluster.v3.Cluster': {
          sent: 'x',
          acked: 'x',
          sentTime: '2026-04-23T12:00:05Z',
        },
      },
    },
    { cluster_id: 'Kubernetes' },
  ]);

  it('reads sent/acked per type and drops entries without a proxy', () => {
    const { proxies, dropped } = parseSyncz(body);
    expect(dropped).toBe(1);
    expect(proxies[0]!.proxy).toBe('probe-abc.default');
    expect(proxies[0]!.acked.listener).toMatch(/^2026-04-23T12:00:04Z\/6/);
    expect(proxies[0]!.sent.route).toBeUndefined();
  });

  it('a nonce is the push version followed by a uuid with no separator', () => {
    // counter 7, uuid starting with a digit: the uuid must not be read as part of the counter
    expect(pushVersionOf('2026-04-23T12:00:05Z/71b2c3d4-0e5f-4a6b-8c7d-9e0f1a2b3c4d')).toBeUndefined();
    expect(pushVersionOf('2026-04-23T12:00:05Z/712345678-0e5f-4a6b-8c7d-9e0f1a2b3c4d')).toEqual({
      time: Date.parse('2026-04-23T12:00:05Z'),
      counter: 7,
    });
    expect(pushVersionOf('2026-04-23T12:00:05Z/12')).toEqual({ time: Date.parse('2026-04-23T12:00:05Z'), counter: 12 });
    expect(pushVersionOf('8f8a1e4c-uuid-only')).toBeUndefined();
  });

  it.each([
    ['same', '2026-04-23T12:00:05Z/12', '2026-04-23T12:00:05Z/12', true],
    ['later counter', '2026-04-23T12:00:05Z/13', '2026-04-23T12:00:05Z/12', true],
    ['earlier counter, same second', '2026-04-23T12:00:05Z/9', '2026-04-23T12:00:05Z/12', false],
    ['later second', '2026-04-23T12:00:06Z/1', '2026-04-23T12:00:05Z/12', true],
    ['unparseable', 'abc', '2026-04-23T12:00:05Z/12', undefined],
  ])('isSameOrLaterPush: %s', (_n, a, b, want) => expect(isSameOrLaterPush(a, b)).toBe(want));
});

function toCamel(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toCamel);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [
      k.startsWith('@') || k.includes('.') || k.includes('|')
        ? k
        : k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()),
      k === 'filter_metadata' ? x : toCamel(x),
    ]),
  );
}

describe('payloads captured from the harness istiod', () => {
  const dirs = existsSync(fixtures)
    ? readdirSync(fixtures).filter((d) => existsSync(join(fixtures, d, 'probe-host.json')))
    : [];
  it.each(dirs.length ? dirs : ['(none captured yet)'])(
    '%s: istiod config_dump (camelCase) and syncz of the xDS probe',
    async (dir) => {
      if (dir.startsWith('(')) return;
      const { checkProxy } = await import('../../src/verify/compare.js');
      const meta = JSON.parse(fixture(dir, 'probe-host.json')) as {
        host: string;
        ports: number[];
        resolution: 'DNS';
        probeNamespace: string;
      };
      const view = parseConfigDump(fixture(dir, 'config_dump.json'));
      expect(view.dropped).toBe(0);
      expect(view.clusters.get(`outbound|${meta.ports[0]}||${meta.host}`)?.type).toBe('STRICT_DNS');
      const expectation = {
        host: meta.host,
        namespace: 'default',
        name: meta.host,
        location: 'MESH_INTERNAL' as const,
        resolution: meta.resolution,
        ports: [
          { number: meta.ports[0]!, name: 'http', protocol: 'HTTP' },
          { number: meta.ports[1]!, name: 'tls', protocol: 'TLS' },
        ],
        endpoints: 0,
      };
      const c = checkProxy(
        expectation,
        {
          ok: true,
          source: dir,
          value: { view, namespace: meta.probeNamespace, kinds: new Set(['cluster', 'listener', 'route']) },
        },
        Date.now(),
      );
      expect(c.detail).toEqual([]);
      expect(c.status).toBe('ok');
      const { proxies, dropped } = parseSyncz(fixture(dir, 'syncz.json'));
      expect(dropped).toBe(0);
      expect(proxies.length).toBeGreaterThan(0);
      for (const p of proxies) expect(pushVersionOf(p.acked.cluster ?? '')).toBeDefined();
    },
  );
});
