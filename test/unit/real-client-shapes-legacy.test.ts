/**
 * What Apache Dubbo 2.7 and Spring Cloud Zookeeper wrote into ZooKeeper (captured while the
 * harness ran them: variants `dubbo27` and `spring-zk` of test/peers/clients.ts; see
 * test/fixtures/real-clients/README.md), and what the bridge makes of it.
 */
import { describe, expect, it } from 'vitest';
import { servicesOfRoots, type LayoutOptions } from '../../adapters/zookeeper/layouts.js';
import { zookeeperAdapter } from '../../adapters/zookeeper/index.js';
import { defaultSynthOptions, synthAll, type SynthOptions } from '../../src/synth/index.js';
import { loadTree, rootReadOf } from './zookeeper-helpers.js';

const HOST = 'registrybridge.demo.greetservice.v-1-0-0.g-g1.dubbo';
const options: SynthOptions = {
  ...defaultSynthOptions,
  hostTemplate: zookeeperAdapter.defaultHostTemplate,
  namespace: 'mesh',
};

function zkServices(file: string, root: string, layout: Partial<LayoutOptions> = {}) {
  const tree = loadTree(`../real-clients/${file}`);
  return servicesOfRoots([rootReadOf(tree, root)], 'zk', { maxDataBytes: 64 * 1024, ...layout });
}

describe('a Dubbo 2.7.23 provider and a Dubbo 3.3.5 provider of one interface in ZooKeeper (captured)', () => {
  const read = zkServices('dubbo-2.7.23-and-3.3.5-zk.json', '/dubbo');

  it('reads both providers as one interface-level service, and Dubbo 3 application level', () => {
    expect(read.rejected).toEqual([]);
    expect(read.services.map((s) => s.key.name).sort()).toEqual(['greet-app', 'registrybridge.demo.GreetService']);
    const iface = read.services.find((s) => s.key.name === 'registrybridge.demo.GreetService')!;
    expect(iface.instances.map((i) => `${i.address}:${i.port} ${i.metadata.application}`)).toEqual([
      '192.0.2.2:20887 greet-27',
      '192.0.2.2:20888 greet-app',
    ]);
  });

  it('publishes ONE entry with both providers: the Dubbo 3 application level is covered by its own interface-level provider, whichever application names the service', () => {
    const out = synthAll([{ services: read.services, options }]);
    expect(out.desired.map((d) => d.host)).toEqual([HOST]);
    const spec = out.desired[0]!.object.spec;
    expect(spec.ports.map((p) => p.protocol)).toEqual(['TCP']);
    const ports = spec.endpoints!.map((e) => `${e.address}:${e.ports?.[spec.ports[0]!.name] ?? spec.ports[0]!.number}`);
    expect(ports.sort()).toEqual(['192.0.2.2:20887', '192.0.2.2:20888']);
    expect(out.notes.map((n) => n.note.code)).not.toContain('application-level-unmapped');
  });

  it("keeps Dubbo 2.7's bookkeeping keys out of the labels and drops service.name, which is no label value", () => {
    const out = synthAll([{ services: read.services, options }]);
    const legacy = out.desired[0]!.object.spec.endpoints!.find((e) => e.labels?.application === 'greet-27')!;
    expect(legacy.labels).toEqual({
      application: 'greet-27',
      dynamic: 'true',
      group: 'g1',
      interface: 'registrybridge.demo.GreetService',
      'metadata-type': 'remote',
      version: '1.0.0',
    });
    expect(out.notes.map((n) => n.note.detail)).toContain(
      '192.0.2.2: metadata "service.name" is not a valid Kubernetes label',
    );
  });
});

describe('Spring Cloud Zookeeper 5.0.2 on Spring Boot 4.0.7 (captured)', () => {
  const read = zkServices('spring-cloud-zookeeper-5.0.2.json', '/services');

  it('is HTTP on its port, with the configured metadata as labels, whatever curatorProtocol says', () => {
    for (const layout of [{}, { curatorProtocol: 'grpc' }]) {
      const out = synthAll([
        { services: zkServices('spring-cloud-zookeeper-5.0.2.json', '/services', layout).services, options },
      ]);
      expect(out.desired.map((d) => d.host)).toEqual(['orders.zk']);
      const spec = out.desired[0]!.object.spec;
      expect(spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual(['HTTP/18082']);
      expect(spec.endpoints).toEqual([{ address: '192.0.2.2', labels: { instance_status: 'UP', zone: 'z1' } }]);
    }
    expect(read.rejected).toEqual([]);
  });
});
