/**
 * Service identity and Dubbo/Nacos/Curator parity, on what the real clients wrote (captured from
 * ZooKeeper and Nacos while test/peers/clients/RegistryClients.java ran: Apache Dubbo 3.3.5 in
 * register-mode all, Curator x-discovery 5.9.0; see test/fixtures/real-clients/README.md).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nacosModelService } from '../../adapters/nacos/dubbo.js';
import { parseInstanceList } from '../../adapters/nacos/parse.js';
import { servicesOfRoots, type LayoutOptions } from '../../adapters/zookeeper/layouts.js';
import { zookeeperAdapter } from '../../adapters/zookeeper/index.js';
import type { RegistryService } from '../../src/model/service.js';
import {
  defaultSynthOptions,
  SOURCE_LABEL,
  SOURCES_ANNOTATION,
  synthAll,
  type SynthOptions,
} from '../../src/synth/index.js';
import { loadTree, rootReadOf } from './zookeeper-helpers.js';

const HOST = 'registrybridge.demo.greetservice.v-1-0-0.g-g1.dubbo';
const zkOptions: SynthOptions = {
  ...defaultSynthOptions,
  hostTemplate: zookeeperAdapter.defaultHostTemplate,
  namespace: 'mesh',
};
const nacosOptions: SynthOptions = { ...zkOptions, hostTemplate: '{service}.{group}.{namespace}.nacos' };

function zkServices(file: string, root: string, layout: Partial<LayoutOptions> = {}, source = 'zk') {
  const tree = loadTree(`../real-clients/${file}`);
  return servicesOfRoots([rootReadOf(tree, root)], source, { maxDataBytes: 64 * 1024, ...layout });
}

function nacosService(
  file: string,
  source = 'nacos',
  applicationLevel: 'merge' | 'separate' | 'ignore' = 'merge',
): RegistryService {
  const raw: unknown = JSON.parse(readFileSync(new URL(`../fixtures/real-clients/${file}`, import.meta.url), 'utf8'));
  const { name } = raw as { name: string };
  const parsed = parseInstanceList(raw, file);
  if (parsed instanceof Error) throw parsed;
  const [group, service] = name.split('@@') as [string, string];
  const s = nacosModelService({ source, namespace: 'rc', group, name: service }, parsed.instances, {
    applicationLevel,
  });
  if (s === undefined || s instanceof Error) throw new Error(`no service from ${file}`);
  return s;
}

describe('Dubbo 3.3 register-mode all in ZooKeeper (captured)', () => {
  const read = zkServices('dubbo-3.3.5-zk-all.json', '/dubbo');

  it('reads the interface level and the application level without rejecting anything', () => {
    expect(read.rejected).toEqual([]);
    expect(read.services.map((s) => s.key.name).sort()).toEqual(['greet-app', 'registrybridge.demo.GreetService']);
  });

  it('publishes ONE entry: the application level is not a duplicate of the interface on the same ports', () => {
    const out = synthAll([{ services: read.services, options: zkOptions }]);
    expect(out.desired.map((d) => d.host)).toEqual([HOST]);
    const spec = out.desired[0]!.object.spec;
    expect(spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual(['TCP/20884', 'GRPC/50054']);
    expect(spec.endpoints!.map((e) => e.address)).toEqual(['192.0.2.2']);
  });

  it('keeps the application entry with dubbo.applicationLevel: separate, both ports, no volatile labels', () => {
    const separate = zkServices('dubbo-3.3.5-zk-all.json', '/dubbo', { applicationLevel: 'separate' });
    const out = synthAll([{ services: separate.services, options: zkOptions }]);
    expect(out.desired.map((d) => d.host).sort()).toEqual(['greet-app.dubbo', HOST]);
    const app = out.desired.find((d) => d.host === 'greet-app.dubbo')!.object.spec;
    expect(app.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual(['TCP/20884', 'GRPC/50054']);
    expect(JSON.stringify(app)).not.toMatch(/revision|timestamp/);
  });
});

describe('Dubbo 3.3 register-mode all in Nacos (captured): parity with ZooKeeper', () => {
  const iface = nacosService('nacos-dubbo-3.3.5-providers.json');
  const app = nacosService('nacos-dubbo-3.3.5-greet-app.json', 'nacos', 'separate');

  it('names the interface-level service like ZooKeeper does', () => {
    const out = synthAll([{ services: [iface], options: nacosOptions }]);
    expect(out.desired.map((d) => d.host)).toEqual([HOST]);
  });

  it('turns the Dubbo URL weight (metadata "weight": "40") into the endpoint weight, not a label', () => {
    const spec = synthAll([{ services: [iface], options: nacosOptions }]).desired[0]!.object.spec;
    // Provider 1 (20885, the service port) registered weight=40; provider 2 (20886) none:
    // Dubbo's default 100.
    const weightOf = (port: number) => spec.endpoints!.find((e) => (e.ports?.['tcp-20885'] ?? 20885) === port)?.weight;
    expect(spec.ports[0]!.number).toBe(20885);
    expect(weightOf(20885)).toBe(40);
    expect(weightOf(20886)).toBe(100);
    for (const e of spec.endpoints!) expect(e.labels ?? {}).not.toHaveProperty('weight');
  });

  it('reads the application level dubbo.endpoints: the tri port too, and no revision or timestamp label', () => {
    const out = synthAll([{ services: [app], options: nacosOptions }]);
    const spec = out.desired[0]!.object.spec;
    expect(spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual(['TCP/20885', 'GRPC/50055']);
    expect(JSON.stringify(spec)).not.toMatch(/revision|timestamp/);
  });

  it('merges the application level into the interface entry by default (one entry)', () => {
    const merged = nacosService('nacos-dubbo-3.3.5-greet-app.json');
    const out = synthAll([{ services: [iface, merged], options: nacosOptions }]);
    expect(out.desired.map((d) => d.host)).toEqual([HOST]);
  });

  it('leaves the application level out with dubbo.applicationLevel: ignore', () => {
    const raw: unknown = JSON.parse(
      readFileSync(new URL('../fixtures/real-clients/nacos-dubbo-3.3.5-greet-app.json', import.meta.url), 'utf8'),
    );
    const parsed = parseInstanceList(raw, 'x');
    if (parsed instanceof Error) throw parsed;
    const key = { source: 'nacos', namespace: 'rc', group: 'DEFAULT_GROUP', name: 'greet-app' };
    expect(nacosModelService(key, parsed.instances, { applicationLevel: 'ignore' })).toBeUndefined();
  });
});

describe('one Dubbo service registered in ZooKeeper and in Nacos: one mesh service', () => {
  const zk = zkServices('dubbo-3.3.5-zk-all.json', '/dubbo').services;
  const nacos = [nacosService('nacos-dubbo-3.3.5-providers.json'), nacosService('nacos-dubbo-3.3.5-greet-app.json')];

  it('merges the endpoints of both sources into one entry, labelled with the first configured source', () => {
    const out = synthAll([
      { services: zk, options: zkOptions },
      { services: nacos, options: nacosOptions },
    ]);
    expect(out.invalid).toEqual([]);
    expect(out.desired.map((d) => d.host)).toEqual([HOST]);
    const entry = out.desired[0]!;
    expect(entry.object.metadata.labels[SOURCE_LABEL]).toBe('zk');
    expect(entry.object.metadata.annotations[SOURCES_ANNOTATION]).toBe('zk,nacos');
    // ZooKeeper's provider (20884/50054) and both Nacos providers (20885/50055, 20886/50056).
    const ports = entry.object.spec.endpoints!.map(
      (e) =>
        Object.values(e.ports ?? {})
          .sort()
          .join('+') || 'service ports',
    );
    expect(ports.sort()).toEqual(['20885+50055', '20886+50056', 'service ports']);
    expect(entry.object.spec.ports.map((p) => p.number)).toEqual([20884, 50054]);
  });

  it('labels it with Nacos when Nacos comes first in the configuration', () => {
    const out = synthAll([
      { services: nacos, options: nacosOptions },
      { services: zk, options: zkOptions },
    ]);
    expect(out.desired).toHaveLength(1);
    expect(out.desired[0]!.object.metadata.labels[SOURCE_LABEL]).toBe('nacos');
    expect(out.desired[0]!.object.metadata.annotations[SOURCES_ANNOTATION]).toBe('nacos,zk');
  });

  it('hands the entry to the source that still publishes it when the first one stops', () => {
    const out = synthAll([
      { services: zk.map((s) => ({ ...s, instances: [] })), options: zkOptions },
      { services: nacos, options: nacosOptions },
    ]);
    expect(out.desired).toHaveLength(1);
    expect(out.desired[0]!.object.metadata.labels[SOURCE_LABEL]).toBe('nacos');
    expect(out.desired[0]!.object.metadata.annotations).not.toHaveProperty(SOURCES_ANNOTATION);
    expect(out.empty).toEqual([]);
  });

  it('deduplicates one provider announced by both registries (same address and port)', () => {
    const twice = synthAll([
      { services: zk, options: zkOptions },
      { services: zk.map((s) => ({ ...s, key: { ...s.key, source: 'zk-mirror' } })), options: zkOptions },
    ]);
    expect(twice.desired).toHaveLength(1);
    expect(twice.desired[0]!.object.spec.endpoints).toHaveLength(1);
    expect(twice.desired[0]!.object.metadata.annotations[SOURCES_ANNOTATION]).toBe('zk,zk-mirror');
  });

  it('sends a change of one contributor to the full run (no single service owns a merged host)', () => {
    const out = synthAll([
      { services: zk, options: zkOptions },
      { services: nacos, options: nacosOptions },
    ]);
    const owners = out.results.flatMap((r) => (r.kind === 'ok' ? [r.entry.key.name] : []));
    expect(owners).toHaveLength(1);
    expect(owners[0]).not.toBe('registrybridge.demo.GreetService');
  });
});

describe('Curator x-discovery 5.9 (captured)', () => {
  const read = zkServices('curator-5.9.0.json', '/services');

  it('strips the zone of a scoped IPv6 address and writes it in canonical form', () => {
    const out = synthAll([{ services: read.services, options: zkOptions }]);
    const orders = out.desired.find((d) => d.host === 'orders.zk')!;
    expect(orders.object.spec.endpoints!.map((e) => e.address)).toEqual(['fd00::2']);
    expect(out.notes.map((n) => n.note.code)).toContain('address-zone-stripped');
  });

  it('plain Curator is TCP unless curatorProtocol says otherwise; the Spring Cloud shape is HTTP', () => {
    const protocols = (layout: Partial<LayoutOptions>) =>
      Object.fromEntries(
        synthAll([
          { services: zkServices('curator-5.9.0.json', '/services', layout).services, options: zkOptions },
        ]).desired.map((d) => [d.host, d.object.spec.ports.map((p) => p.protocol).join()]),
      );
    expect(protocols({})).toEqual({ 'billing.zk': 'HTTP', 'orders.zk': 'TCP' });
    expect(protocols({ curatorProtocol: 'http' })).toEqual({ 'billing.zk': 'HTTP', 'orders.zk': 'HTTP' });
  });
});
