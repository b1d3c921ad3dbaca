import { describe, expect, it } from 'vitest';
import {
  curatorInstanceOf,
  servicesOfRoots,
  unitFingerprint,
  type RootRead,
} from '../../adapters/zookeeper/layouts.js';
import { zookeeperAdapter } from '../../adapters/zookeeper/index.js';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { renderYaml } from '../../src/sinks/render.js';
import { defaultSynthOptions, serviceEntryProblems, synthAll } from '../../src/synth/index.js';
import { loadTree, rootReadOf } from './zookeeper-helpers.js';

const options = { ...defaultSynthOptions, hostTemplate: zookeeperAdapter.defaultHostTemplate, namespace: 'mesh' };

describe('ZooKeeper tree → model → ServiceEntries', () => {
  const tree = loadTree();
  const read = servicesOfRoots([rootReadOf(tree, '/dubbo'), rootReadOf(tree, '/services')], 'zk', {
    maxDataBytes: 64 * 1024,
  });

  it('finds one service per (interface, version, group) and per Curator name', () => {
    expect(read.services.map((s) => `${s.key.namespace}|${s.key.group}|${s.key.name}`)).toEqual([
      'dubbo||com.example.order.OrderFacade',
      'dubbo||org.apache.dubbo.demo.DemoService',
      'dubbo||org.apache.dubbo.demo.GreeterService',
      'dubbo|blue|org.apache.dubbo.demo.GreeterService',
      'dubbo|gold|com.alibaba.dubbo.demo.LegacyService',
      'dubbo|silver|com.alibaba.dubbo.demo.LegacyService',
      'services||greeter-app',
      'services||orders-api',
    ]);
  });

  it('rejects each malformed znode alone, with its path and reason', () => {
    expect(read.rejected.map((r) => [r.ref.split('/').slice(0, 3).join('/'), r.reason])).toEqual([
      ['/dubbo/org.apache.dubbo.demo.DemoService', expect.stringMatching(/bad URL encoding/)],
      ['/services/orders-api', 'data is not UTF-8 text'],
      ['/services/orders-api', 'missing port (neither port, sslPort nor dubbo.endpoints)'],
    ]);
  });

  it('renders the golden ServiceEntries', async () => {
    const out = synthAll([{ services: read.services, options }]);
    expect(out.invalid).toEqual([]);
    for (const d of out.desired) expect(serviceEntryProblems(d.object.spec)).toEqual([]);
    expect(out.desired.map((d) => d.host)).toEqual([
      'com.alibaba.dubbo.demo.legacyservice.v-1-2-3.g-gold.dubbo',
      'com.alibaba.dubbo.demo.legacyservice.v-1-2-3.g-silver.dubbo',
      'com.example.order.orderfacade.dubbo',
      // greeter-app (Dubbo 3 application level, register-mode all) is merged into the
      // GreeterService entries of its application, not published a second time.
      'orders-api.zk',
      'org.apache.dubbo.demo.demoservice.dubbo',
      'org.apache.dubbo.demo.greeterservice.v-1-0-0.g-blue.dubbo',
      'org.apache.dubbo.demo.greeterservice.v-2-0-0.dubbo',
    ]);
    expect(out.empty).toEqual([]);
    await expect(renderYaml(out.desired.map((d) => d.object))).toMatchFileSnapshot('golden/zookeeper-tree.yaml');
  });

  it('publishes the application-level service on its own with dubbo.applicationLevel: separate', () => {
    const separate = servicesOfRoots([rootReadOf(tree, '/dubbo'), rootReadOf(tree, '/services')], 'zk', {
      maxDataBytes: 64 * 1024,
      applicationLevel: 'separate',
    });
    const hosts = synthAll([{ services: separate.services, options }]).desired.map((d) => d.host);
    expect(hosts).toContain('greeter-app.dubbo');
    expect(hosts).toContain('org.apache.dubbo.demo.greeterservice.v-1-0-0.g-blue.dubbo');
  });

  it('leaves the application-level service out with dubbo.applicationLevel: ignore', () => {
    const ignored = servicesOfRoots([rootReadOf(tree, '/dubbo'), rootReadOf(tree, '/services')], 'zk', {
      maxDataBytes: 64 * 1024,
      applicationLevel: 'ignore',
    });
    expect(ignored.services.map((s) => s.key.name)).not.toContain('greeter-app');
  });

  it('never lets timestamps, pids or method order into the output', async () => {
    const yaml = renderYaml(synthAll([{ services: read.services, options }]).desired.map((d) => d.object));
    expect(yaml).not.toMatch(/timestamp|pid|methods|17000000/);
  });
});

describe('Curator ServiceInstance data', () => {
  const opts = { maxDataBytes: 1024 };
  const good = {
    name: 'a',
    id: '1',
    address: '10.0.0.1',
    port: 8080,
    sslPort: null,
    payload: {
      '@class': 'org.springframework.cloud.zookeeper.discovery.ZookeeperInstance',
      metadata: { instance_status: 'UP' },
    },
  };
  const cases: [name: string, data: Buffer | undefined, reason: RegExp][] = [
    ['no data', undefined, /no data/],
    ['empty data', Buffer.alloc(0), /no data/],
    ['huge data', Buffer.alloc(4096, 0x20), /4096 bytes, more than maxDataBytes 1024/],
    ['binary garbage', Buffer.from([0xff, 0xfe, 0x00, 0x81]), /not UTF-8/],
    ['not JSON', Buffer.from('demo-provider'), /not JSON/],
    ['JSON but not an object', Buffer.from('[1,2]'), /not a Curator ServiceInstance/],
    ['missing address', Buffer.from(JSON.stringify({ ...good, address: undefined })), /address/],
    ['port not a number', Buffer.from(JSON.stringify({ ...good, port: '8080' })), /port/],
    ['missing port', Buffer.from(JSON.stringify({ ...good, port: null })), /missing port/],
    [
      'dubbo.endpoints not JSON',
      Buffer.from(JSON.stringify({ ...good, payload: { metadata: { 'dubbo.endpoints': '[{port:1' } } })),
      /dubbo.endpoints" is not JSON/,
    ],
    [
      'dubbo.endpoints wrong shape',
      Buffer.from(JSON.stringify({ ...good, payload: { metadata: { 'dubbo.endpoints': '[{"port":"x"}]' } } })),
      /not a list of \{port, protocol\}/,
    ],
  ];
  it.each(cases)('rejects %s', (_n, data, reason) => {
    const r = curatorInstanceOf(data, opts);
    expect('error' in r && r.error).toMatch(reason);
  });

  it('reads Spring Cloud (http, OUT_OF_SERVICE → disabled) and Dubbo 3 endpoints', () => {
    expect(curatorInstanceOf(Buffer.from(JSON.stringify(good)), opts)).toMatchObject({
      instances: [{ address: '10.0.0.1', port: 8080, protocol: 'http', enabled: true }],
    });
    const oos = { ...good, payload: { ...good.payload, metadata: { instance_status: 'OUT_OF_SERVICE' } } };
    expect(curatorInstanceOf(Buffer.from(JSON.stringify(oos)), opts)).toMatchObject({
      instances: [{ enabled: false }],
    });
    const d3 = {
      ...good,
      payload: {
        '@class': 'org.apache.dubbo.registry.zookeeper.ZookeeperInstance',
        metadata: { 'dubbo.endpoints': '[{"port":20880,"protocol":"dubbo"},{"port":50051,"protocol":"tri"}]' },
      },
    };
    expect(curatorInstanceOf(Buffer.from(JSON.stringify(d3)), opts)).toMatchObject({
      dubbo: true,
      instances: [
        { port: 20880, protocol: 'dubbo' },
        { port: 50051, protocol: 'tri' },
      ],
    });
  });
});

describe('sources[i].zookeeper config', () => {
  const src = (zookeeper: unknown) => ({ sources: [{ name: 'zk', kind: 'zookeeper', zookeeper }] });
  const parsed = (zookeeper: unknown) =>
    parseConfig(src(zookeeper), adapterFactories).sources[0]!.zookeeper as Record<string, unknown>;

  it('fills defaults; layout decides the default roots', () => {
    expect(parsed({ connect: '127.0.0.1:2181' })).toEqual({
      connect: '127.0.0.1:2181',
      layout: 'auto',
      roots: ['/dubbo', '/services'],
      sessionTimeout: 30_000,
      relistInterval: 300_000,
      requestTimeout: 5_000,
      maxDataBytes: 262_144,
      dubbo: { applicationLevel: 'merge' },
    });
    expect(parsed({ connect: 'zk-0:2181,zk-1:2181,zk-2:2181/prod', layout: 'dubbo' }).roots).toEqual(['/dubbo']);
    expect(parsed({ connect: 'zk:2181', layout: 'curator', root: '/sc', sessionTimeout: '10s' })).toMatchObject({
      roots: ['/sc'],
      sessionTimeout: 10_000,
    });
    expect(parsed({ connect: '[::1]:2181', auth: { scheme: 'digest', credentials: { env: 'ZK_AUTH' } } }).auth).toEqual(
      { scheme: 'digest', credentials: { env: 'ZK_AUTH' } },
    );
  });

  it.each([
    ['no port', { connect: 'zk-0' }, /sources\[0\]\.zookeeper\.connect: expected host:port/],
    ['empty', { connect: '' }, /connect: expected host:port/],
    ['port too big', { connect: 'zk:99999' }, /connect: expected host:port/],
    ['scheme', { connect: 'zookeeper://zk:2181' }, /connect: expected host:port/],
    ['bad layout', { connect: 'zk:2181', layout: 'eureka' }, /zookeeper\.layout: /],
    ['relative root', { connect: 'zk:2181', root: 'dubbo' }, /zookeeper\.root: expected an absolute znode path/],
    ['root and roots', { connect: 'zk:2181', root: '/a', roots: ['/b'] }, /zookeeper\.roots: set either root or roots/],
    [
      'inline secret',
      { connect: 'zk:2181', auth: { scheme: 'digest', credentials: 'user:pw' } },
      /zookeeper\.auth\.credentials/,
    ],
    [
      'other scheme',
      { connect: 'zk:2181', auth: { scheme: 'sasl', credentials: { env: 'X' } } },
      /zookeeper\.auth\.scheme/,
    ],
    ['unknown key', { connect: 'zk:2181', chroot: '/x' }, /Unrecognized key.*chroot/],
  ])('%s → names the field', (_n, zookeeper, pattern) => {
    try {
      parseConfig(src(zookeeper), adapterFactories);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(pattern);
      return;
    }
    throw new Error('expected a ConfigError');
  });

  it('accepts host templates built from the Dubbo attributes', () => {
    const c = parseConfig(
      {
        sources: [
          {
            name: 'zk',
            kind: 'zookeeper',
            hostTemplate: '{interface}.{version}.{dubboGroup}.{application}.svc',
            zookeeper: { connect: 'zk:2181' },
          },
        ],
      },
      adapterFactories,
    );
    expect(c.sources[0]!.hostTemplate).toBe('{interface}.{version}.{dubboGroup}.{application}.svc');
  });
});

describe('unitFingerprint (what the watching adapter compares before it parses)', () => {
  const dubbo = (providers: string[], configurators: string[] = []): RootRead => ({
    root: '/dubbo',
    namespace: 'dubbo',
    dubbo: [{ name: 'org.example.Demo', path: '/dubbo/org.example.Demo', providers, configurators }],
    curator: [],
  });
  const curator = (data: Buffer | undefined): RootRead => ({
    root: '/services',
    namespace: 'services',
    dubbo: [],
    curator: [{ name: 'orders', path: '/services/orders', instances: [{ id: 'a', path: '/services/orders/a', data }] }],
  });
  it('is equal for equal reads and differs when a provider, a configurator or data differs', () => {
    const p = 'dubbo%3A%2F%2F10.0.0.1%3A20880%2Forg.example.Demo%3Fside%3Dprovider';
    expect(unitFingerprint(dubbo([p]))).toBe(unitFingerprint(dubbo([p])));
    expect(unitFingerprint(dubbo([p]))).not.toBe(unitFingerprint(dubbo([p, `${p}2`])));
    expect(unitFingerprint(dubbo([p]))).not.toBe(unitFingerprint(dubbo([p], ['override%3A%2F%2F0.0.0.0'])));
    // A provider moved to the configurators is a different read.
    expect(unitFingerprint(dubbo([p]))).not.toBe(unitFingerprint(dubbo([], [p])));
    expect(unitFingerprint(curator(Buffer.from('{"a":1}')))).toBe(unitFingerprint(curator(Buffer.from('{"a":1}'))));
    expect(unitFingerprint(curator(Buffer.from('{"a":1}')))).not.toBe(unitFingerprint(curator(Buffer.from('{"a":2}'))));
    expect(unitFingerprint(curator(undefined))).not.toBe(unitFingerprint(curator(Buffer.alloc(0))));
  });
});
