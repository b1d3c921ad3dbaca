/**
 * Elements of istiod's /debug/syncz and of config dumps that cannot be read are dropped, counted
 * and named (index, and the proxy id, type URL, cluster / listener / route name they carry), as
 * registryz elements are; a dropped element of the checked proxy or host makes its hop an error
 * naming it, never a pass. Payloads derive from the captured 1.31 istiod fixtures.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { checkProxy, checkSync, type ProxyObservation } from '../../src/verify/compare.js';
import { lookupProxy, renderLookup } from '../../src/verify/lookup.js';
import { droppedProxyText, parseConfigDump, proxyViewOf } from '../../src/verify/proxy-config.js';
import { droppedSynczText, parseSyncz } from '../../src/verify/syncz.js';
import type { Expectation } from '../../src/verify/types.js';
import { configDumpSource, verifyHosts } from '../../src/verify/verify.js';

const captured = join(import.meta.dirname, '..', 'fixtures', 'istiod', '1.31-alpha.b01690e6db7d');
const synczFixture = JSON.parse(readFileSync(join(captured, 'syncz.json'), 'utf8')) as Record<string, unknown>[];
const dumpText = readFileSync(join(captured, 'config_dump.json'), 'utf8');
const probe = JSON.parse(readFileSync(join(captured, 'probe-host.json'), 'utf8')) as { host: string; ports: number[] };
const proxyId = synczFixture[0]!.proxy as string;
const host = probe.host;
const NOW = Date.parse('2026-11-25T12:45:00Z');

type Json = Record<string, unknown>;
/** The captured istiod config dump (protojson camelCase), changed by `edit`. */
function dumpWith(edit: (configs: Json[]) => void): string {
  const doc = JSON.parse(dumpText) as { configs: Json[] };
  edit(doc.configs);
  return JSON.stringify(doc);
}
const section = (configs: Json[], type: string) => configs.find((c) => String(c['@type']).endsWith(type))!;
const dynamicClusters = (configs: Json[]) =>
  section(configs, '.ClustersConfigDump').dynamicActiveClusters as { cluster: Json }[];

const expectation: Expectation = {
  host,
  namespace: 'default',
  name: host,
  location: 'MESH_INTERNAL',
  resolution: 'DNS',
  ports: [
    { number: probe.ports[0]!, name: 'http', protocol: 'HTTP' },
    { number: probe.ports[1]!, name: 'tls', protocol: 'TLS' },
  ],
  endpoints: 0,
};
const proxyObs = (view: ProxyObservation['view']) => ({
  ok: true as const,
  source: 'dump.json',
  value: { view, kinds: new Set(['cluster', 'listener', 'route'] as const) },
});

describe('syncz: a dropped element is named by its index and proxy id', () => {
  const body = JSON.stringify([
    synczFixture[0],
    { ...synczFixture[0], proxy: 'sleep-7d9.shop', cluster_acked: 42 },
    'not a proxy',
    { cluster_sent: 'x' },
  ]);

  /** The sync hop for `proxyId`, checked against that syncz. */
  const syncOf = (proxyId: string) => {
    const r = parseSyncz(body);
    const value = { proxyId, proxies: r.proxies, dropped: r.droppedElements };
    return checkSync(expectation, { ok: true, source: 'syncz.json', value }, NOW);
  };

  it('index, proxy id when it has one, and the field that is wrong', () => {
    const r = parseSyncz(body);
    expect(r.proxies.map((p) => p.proxy)).toEqual([proxyId]);
    expect(r.dropped).toBe(3);
    expect(r.droppedElements.map((d) => [d.index, d.proxy])).toEqual([
      [1, 'sleep-7d9.shop'],
      [2, undefined],
      [3, undefined],
    ]);
    expect(droppedSynczText(r.droppedElements[0]!)).toMatch(
      /^syncz element 1 \(proxy sleep-7d9\.shop\) skipped: cluster_acked: .*expected string/,
    );
    expect(droppedSynczText(r.droppedElements[2]!)).toMatch(/^syncz element 3 skipped: proxy: /);
  });

  it("the checked proxy's element unreadable: the sync hop is an error naming it, for good (never ok or missing)", () => {
    const c = syncOf('sleep-7d9.shop');
    expect(c.status).toBe('error');
    expect(c.final).toBe(true);
    expect(c.detail).toEqual([expect.stringMatching(/^syncz element 1 \(proxy sleep-7d9\.shop\) skipped: /)]);
  });

  it('a proxy not listed while elements without a proxy id were skipped: missing, and says so', () => {
    const c = syncOf('gone.default');
    expect(c.status).toBe('missing');
    expect(c.detail).toEqual([
      'proxy gone.default is not connected to this istiod',
      expect.stringMatching(/^2 syncz element\(s\) without a readable proxy id were skipped: syncz element 2 skipped/),
    ]);
  });
});

describe('config dump: a dropped element is named by its place, type URL and name', () => {
  const cluster80 = `outbound|${probe.ports[0]}||${host}`;
  const broken = dumpWith((configs) => {
    // the host's port-80 cluster with a type that is not a string
    dynamicClusters(configs)[1]!.cluster.type = 7;
    // a listener whose filter chains are not a list
    const listeners = section(configs, '.ListenersConfigDump').dynamicListeners as {
      activeState: { listener: Json };
    }[];
    listeners[3]!.activeState.listener.filterChains = 'none';
    // a route configuration without a name, and a section that is not an object
    const routes = section(configs, '.RoutesConfigDump').dynamicRouteConfigs as { routeConfig: Json }[];
    delete routes[0]!.routeConfig.name;
    configs[5] = 12 as unknown as Json;
  });

  it('each dropped element: kind, index, JSON path, @type and name', () => {
    const view = parseConfigDump(broken);
    expect(view.dropped).toBe(4);
    expect(view.droppedElements.map((d) => [d.kind, d.index, d.at, d.typeUrl, d.name])).toEqual([
      ['section', 5, 'configs[5]', undefined, undefined],
      [
        'cluster',
        1,
        'configs[1].dynamic_active_clusters[1].cluster',
        'type.googleapis.com/envoy.config.cluster.v3.Cluster',
        cluster80,
      ],
      [
        'listener',
        3,
        'configs[2].dynamic_listeners[3].active_state.listener',
        'type.googleapis.com/envoy.config.listener.v3.Listener',
        'virtualOutbound',
      ],
      [
        'route',
        0,
        'configs[4].dynamic_route_configs[0].route_config',
        'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
        undefined,
      ],
    ]);
    expect(droppedProxyText(view.droppedElements[1]!)).toMatch(
      new RegExp(
        `^config dump cluster configs\\[1\\]\\.dynamic_active_clusters\\[1\\]\\.cluster \\(outbound\\|80\\|\\|${host.replace(/\./g, '\\.')}, type\\.googleapis\\.com/envoy\\.config\\.cluster\\.v3\\.Cluster\\) skipped: type: .*expected string`,
      ),
    );
    // the rest is read
    expect(view.clusters.has(`outbound|${probe.ports[1]}||${host}`)).toBe(true);
    expect(view.clusters.has(cluster80)).toBe(false);
  });

  it('two documents: each place names its document', () => {
    const view = parseConfigDump(dumpText, broken);
    expect(view.droppedElements[0]!.at).toBe('document 2 configs[5]');
  });

  it('istioctl arrays: an element that is no resource, or not an object, is named by its index', () => {
    const doc = JSON.parse(dumpText) as { configs: Json[] };
    const clusters = dynamicClusters(doc.configs).map((c) => c.cluster);
    const view = parseConfigDump(JSON.stringify([clusters[0], 'x', { '@type': 'type.googleapis.com/Foo', foo: 1 }]));
    expect(view.clusters.size).toBe(1);
    expect(view.droppedElements.map(droppedProxyText)).toEqual([
      expect.stringMatching(/^config dump element \[1\] skipped: .*expected record/),
      'config dump element [2] (type.googleapis.com/Foo) skipped: neither a cluster, listener, route configuration nor endpoint assignment',
    ]);
  });

  it('xDS resources (the probe): named by kind, index and the response type', () => {
    const view = proxyViewOf({
      clusters: [
        {
          resource: { name: 'outbound|80||a.example', type: [] },
          typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
        },
      ],
      listeners: [],
      routes: [],
    });
    expect(view.droppedElements.map(droppedProxyText)).toEqual([
      expect.stringMatching(
        /^config dump cluster clusters\[0\] \(outbound\|80\|\|a\.example, type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster\) skipped: type: /,
      ),
    ]);
  });

  it("the host's cluster unreadable: the proxy hop is an error naming it, for good (never ok or missing)", () => {
    const c = checkProxy(expectation, proxyObs(parseConfigDump(broken)), NOW);
    expect(c.status).toBe('error');
    expect(c.final).toBe(true);
    expect(c.detail).toEqual([
      expect.stringContaining(`config dump cluster configs[1].dynamic_active_clusters[1].cluster (${cluster80}`),
    ]);
    // another host's check is not failed by it
    const other = checkProxy(
      {
        ...expectation,
        host: 'kubernetes.default.svc.cluster.local',
        resolution: 'STATIC',
        ports: [{ number: 443, name: 'https', protocol: 'HTTPS' }],
      },
      proxyObs(parseConfigDump(broken)),
      NOW,
    );
    expect(other.status).not.toBe('error');
  });

  it('a host missing while unnamed elements were skipped: missing, and says so', () => {
    const c = checkProxy({ ...expectation, host: 'absent.example.com' }, proxyObs(parseConfigDump(broken)), NOW);
    expect(c.status).toBe('missing');
    expect(c.detail).toContainEqual(
      expect.stringMatching(
        /^2 proxy config element\(s\) without a readable name were skipped: config dump section configs\[5\] skipped/,
      ),
    );
  });

  it('--host lookup: the unreadable element of the host is listed (text and JSON)', () => {
    const l = lookupProxy(host, 'dump.json', parseConfigDump(broken));
    expect(l.unreadable).toEqual([expect.stringContaining(cluster80)]);
    expect(renderLookup([{ host, found: l.found, sources: [l] }])).toMatch(
      /unreadable\s+config dump cluster configs\[1\]/,
    );
  });

  it('verifyHosts logs each dropped element of a read dump once, not once per round', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (s: string) => void lines.push(s) } as never });
    let clock = NOW;
    const report = await verifyHosts(
      [{ expectation }],
      {
        proxy: configDumpSource(() => Promise.resolve([broken])),
        clock: () => clock,
        sleep: () => Promise.resolve(void (clock += 100)),
        logger,
      },
      { timeoutMs: 250, intervalMs: 100 },
    );
    expect(report.hosts[0]!.hops.find((h) => h.hop === 'proxy')!.status).toBe('error');
    const warned = lines.map((l) => JSON.parse(l) as { msg: string; elements?: string[] }).filter((l) => l.elements);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toBe('config dump elements in an unknown shape were skipped');
    expect(warned[0]!.elements).toHaveLength(4);
    expect(warned[0]!.elements![1]).toContain(cluster80);
  });
});
