import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  parseInstanceList,
  parseServiceListPage,
  protocolOfMetadata,
  stripGroupPrefix,
} from '../../adapters/nacos/parse.js';
import { dubboShape } from '../../adapters/nacos/dubbo.js';
import { synthAll } from '../../src/synth/index.js';
import { renderYaml } from '../../src/sinks/render.js';
import type { Instance, RegistryService } from '../../src/model/service.js';
import { options } from './helpers.js';

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/nacos/${name}`, import.meta.url), 'utf8'));

function parsed(name: string) {
  const r = parseInstanceList(fixture(name), name);
  if (r instanceof Error) throw r;
  return r;
}

const brief = (i: Instance) => ({
  address: i.address,
  port: i.port,
  protocol: i.protocol,
  weight: i.weight,
  healthy: i.healthy,
  enabled: i.enabled,
  cluster: i.cluster,
});

describe('parseInstanceList: real-shaped payloads of each Nacos version', () => {
  const cases: { name: string; file: string; want: ReturnType<typeof brief>[]; rejected?: number }[] = [
    {
      name: '1.1.x: dom/valid/marked, legacy instanceId, no healthy/enabled/clusterName',
      file: 'instance-list-1.1.json',
      want: [
        {
          address: '10.10.10.10',
          port: 8888,
          protocol: undefined,
          weight: 1,
          healthy: true,
          enabled: true,
          cluster: undefined,
        },
        {
          address: '10.10.10.11',
          port: 8888,
          protocol: undefined,
          weight: 2,
          healthy: false,
          enabled: true,
          cluster: undefined,
        },
      ],
    },
    {
      name: '1.4.x: instanceId ip#port#cluster#group@@svc, Spring Cloud metadata (secure → https)',
      file: 'instance-list-1.4.json',
      want: [
        {
          address: '10.0.1.10',
          port: 8080,
          protocol: 'http',
          weight: 1,
          healthy: true,
          enabled: true,
          cluster: 'DEFAULT',
        },
        {
          address: '10.0.1.11',
          port: 8080,
          protocol: 'https',
          weight: 1,
          healthy: false,
          enabled: true,
          cluster: 'DEFAULT',
        },
      ],
    },
    {
      name: '2.x: no instanceId; Dubbo metadata; weight 0 and disabled kept for synth to judge',
      file: 'instance-list-2.x.json',
      want: [
        {
          address: '10.0.2.20',
          port: 20880,
          protocol: 'dubbo',
          weight: 100,
          healthy: true,
          enabled: true,
          cluster: 'DEFAULT',
        },
        {
          address: '10.0.2.21',
          port: 20880,
          protocol: 'dubbo',
          weight: 0,
          healthy: true,
          enabled: true,
          cluster: 'DEFAULT',
        },
        {
          address: '10.0.2.22',
          port: 20880,
          protocol: 'dubbo',
          weight: 100,
          healthy: true,
          enabled: false,
          cluster: 'hz',
        },
      ],
    },
    {
      name: '3.1 (captured from the real server): gRPC_port adds a grpc port',
      file: 'instance-list-3.1.json',
      want: [
        {
          address: '10.0.0.1',
          port: 8080,
          protocol: 'http',
          weight: 1,
          healthy: true,
          enabled: true,
          cluster: 'DEFAULT',
        },
        {
          address: '10.0.0.1',
          port: 9090,
          protocol: 'grpc',
          weight: 1,
          healthy: true,
          enabled: true,
          cluster: 'DEFAULT',
        },
      ],
    },
    {
      name: 'bad hosts are dropped and reported; string ports and odd metadata values are accepted',
      file: 'instance-list-bad-hosts.json',
      want: [
        {
          address: '10.0.3.1',
          port: 8080,
          protocol: undefined,
          weight: 1,
          healthy: true,
          enabled: true,
          cluster: undefined,
        },
        {
          address: '10.0.3.5',
          port: 8082,
          protocol: undefined,
          weight: 1,
          healthy: true,
          enabled: true,
          cluster: undefined,
        },
      ],
      rejected: 3,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = parsed(c.file);
      expect(r.instances.map(brief)).toEqual(c.want);
      expect(r.rejected).toHaveLength(c.rejected ?? 0);
    });
  }

  it('names each rejected host by position and address, with the reason', () => {
    const r = parsed('instance-list-bad-hosts.json');
    expect(r.rejected.map((x) => x.ref)).toEqual([
      'instance-list-bad-hosts.json hosts[1] (10.0.3.2:0)',
      'instance-list-bad-hosts.json hosts[2]',
      'instance-list-bad-hosts.json hosts[3] (10.0.3.4:8081)',
    ]);
    expect(r.rejected[0]!.reason).toMatch(/^port: port must be in 1\.\.65535/);
    expect(r.rejected[1]!.reason).toMatch(/^ip: /);
    expect(r.rejected[2]!.reason).toMatch(/^weight: /);
    expect(r.instances[0]!.metadata).toEqual({ zone: 'a', retries: '3', flag: 'true', none: '' });
  });

  const broken: { name: string; raw: unknown }[] = [
    { name: 'not JSON (undefined)', raw: undefined },
    { name: 'an array', raw: [] },
    { name: 'hosts is not a list', raw: { hosts: 'x' } },
  ];
  for (const b of broken) {
    it(`refuses a payload that is ${b.name}`, () => {
      expect(parseInstanceList(b.raw, 'x')).toBeInstanceOf(Error);
    });
  }

  it("honours the server's protect threshold: reachProtectionThreshold makes every instance usable", () => {
    const hosts = [
      { ip: '10.0.0.1', port: 8080, healthy: false, enabled: true, weight: 1 },
      { ip: '10.0.0.2', port: 8080, healthy: false, enabled: true, weight: 1 },
    ];
    const below = parseInstanceList({ hosts, reachProtectionThreshold: false }, 'ns/g/s');
    const reached = parseInstanceList({ hosts, reachProtectionThreshold: true }, 'ns/g/s');
    if (below instanceof Error || reached instanceof Error) throw new Error('must parse');
    expect(below.protectionThresholdReached).toBe(false);
    expect(below.instances.map((i) => i.healthy)).toEqual([false, false]);
    expect(reached.protectionThresholdReached).toBe(true);
    expect(reached.instances.map((i) => i.healthy)).toEqual([true, true]);
  });

  it('treats a missing or null hosts list as no instances', () => {
    expect(parseInstanceList({ name: 'x' }, 'x')).toMatchObject({ instances: [], hostCount: 0 });
    expect(parseInstanceList({ hosts: null }, 'x')).toMatchObject({ instances: [], hostCount: 0 });
  });
});

describe('protocolOfMetadata', () => {
  const rows: { name: string; md: Record<string, string>; want: string | undefined }[] = [
    { name: 'explicit protocol', md: { protocol: 'tri' }, want: 'tri' },
    { name: 'blank protocol is none', md: { protocol: ' ' }, want: undefined },
    { name: 'Spring Cloud plain', md: { 'preserved.register.source': 'SPRING_CLOUD' }, want: 'http' },
    { name: 'Spring Cloud secure', md: { 'preserved.register.source': 'SPRING_CLOUD', secure: 'true' }, want: 'https' },
    { name: 'nothing known', md: { version: 'v1' }, want: undefined },
  ];
  for (const r of rows) it(r.name, () => expect(protocolOfMetadata(r.md)).toBe(r.want));
});

describe('service list', () => {
  it('reads count as the total and strips group prefixes', () => {
    const page = parseServiceListPage(fixture('service-list-page.json'));
    expect(page).toEqual({ count: 3, names: ['orders', 'DEFAULT_GROUP@@payments'] });
    expect(['orders', 'DEFAULT_GROUP@@payments'].map(stripGroupPrefix)).toEqual(['orders', 'payments']);
    expect(parseServiceListPage({ doms: [] })).toBeInstanceOf(Error);
    expect(parseServiceListPage({ count: 0, doms: null })).toEqual({ count: 0, names: [] });
  });
});

describe('Nacos payloads through synth (golden YAML)', () => {
  it('renders every fixture as the ServiceEntries it becomes', async () => {
    const files = [
      'instance-list-1.1.json',
      'instance-list-1.4.json',
      'instance-list-2.x.json',
      'instance-list-3.1.json',
      'instance-list-bad-hosts.json',
    ];
    const services: RegistryService[] = files.map((file) => {
      const raw = fixture(file) as { name?: string; dom?: string };
      const [group, name] = (raw.name ?? raw.dom ?? '').split('@@') as [string, string];
      const p = parsed(file);
      const dubbo = dubboShape(name, p.instances[0]?.metadata ?? {});
      if (dubbo === undefined)
        return { key: { source: 'nacos', namespace: 'public', group, name }, instances: p.instances };
      if (dubbo === 'not-a-service' || dubbo instanceof Error) throw new Error(`unexpected ${String(dubbo)}`);
      return {
        key: { source: 'nacos', namespace: 'public', group: dubbo.group, name: dubbo.name },
        host: dubbo.host,
        attributes: dubbo.attributes,
        instances: p.instances,
      };
    });
    const out = synthAll([{ services, options: { ...options, namespace: 'default' } }]);
    expect(out.invalid).toEqual([]);
    await expect(renderYaml(out.desired.map((d) => d.object))).toMatchFileSnapshot(
      '../fixtures/nacos/golden/fixtures.yaml',
    );
  });
});

describe('instance list memory', () => {
  it('hosts with equal metadata share one object; metadata values are kept as read', () => {
    const host = (ip: string, version: string) => ({
      ip,
      port: 8080,
      weight: 1,
      healthy: true,
      enabled: true,
      metadata: { version, 'preserved.register.source': 'SPRING_CLOUD', n: 1 },
    });
    const r = parseInstanceList(
      { hosts: [host('10.0.0.1', 'v1'), host('10.0.0.2', 'v1'), host('10.0.0.3', 'v2')] },
      'public/DEFAULT_GROUP/orders',
    );
    if (r instanceof Error) throw r;
    const [a, b, c] = r.instances.map((i) => i.metadata);
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(a).toEqual({ version: 'v1', 'preserved.register.source': 'SPRING_CLOUD', n: '1' });
    expect(c).toEqual({ version: 'v2', 'preserved.register.source': 'SPRING_CLOUD', n: '1' });
  });
});
