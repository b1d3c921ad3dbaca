/**
 * Dubbo 3 providers registered at application level only (`register-mode=instance`): which
 * interfaces they serve comes from Dubbo's metadata report (`<root>/mapping/<interface>` →
 * applications, `<root>/metadata/<interface>/<version>/<group>/provider/<app>` → the service
 * definition), as the real Dubbo 3.3.5 wrote them (test/fixtures/real-clients/).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nacosModelService } from '../../adapters/nacos/dubbo.js';
import { parseInstanceList } from '../../adapters/nacos/parse.js';
import { servicesOfRoots, type DubboMetadataRead, type RootRead } from '../../adapters/zookeeper/layouts.js';
import { zookeeperAdapter } from '../../adapters/zookeeper/index.js';
import { reconcileKeys } from '../../src/controller/incremental.js';
import { reconcileOnce, type ConfiguredSource } from '../../src/controller/reconcile.js';
import { silentLogger } from '../../src/log.js';
import type { RegistryService } from '../../src/model/service.js';
import type { Change } from '../../src/plan/plan.js';
import type { Sink } from '../../src/sinks/types.js';
import type { ServiceListener, SourceAdapter } from '../../src/sources/adapter.js';
import { defaultSynthOptions, SOURCES_ANNOTATION, synthAll, type SynthOptions } from '../../src/synth/index.js';
import { loadTree, rootReadOf } from './zookeeper-helpers.js';

const HOST = 'registrybridge.demo.greetservice.v-1-0-0.g-g1.dubbo';
const zkOptions: SynthOptions = {
  ...defaultSynthOptions,
  hostTemplate: zookeeperAdapter.defaultHostTemplate,
  namespace: 'mesh',
};
const nacosOptions: SynthOptions = { ...zkOptions, hostTemplate: '{service}.{group}.{namespace}.nacos' };

/** The captured register-mode=all tree without its interface level: what register-mode=instance writes. */
function instanceModeRead(metadata: DubboMetadataRead[]): RootRead {
  const read = rootReadOf(loadTree('../real-clients/dubbo-3.3.5-zk-all.json'), '/dubbo');
  return { ...read, dubbo: [], metadata };
}

const definitions: DubboMetadataRead = {
  name: 'metadata',
  path: '/dubbo/metadata',
  entries: [{ interface: 'registrybridge.demo.GreetService', application: 'greet-app', version: '1.0.0', group: 'g1' }],
};
const mapping: DubboMetadataRead = {
  name: 'mapping',
  path: '/dubbo/mapping',
  entries: [{ interface: 'registrybridge.demo.GreetService', application: 'greet-app' }],
};

function nacosApp(): RegistryService {
  const raw: unknown = JSON.parse(
    readFileSync(new URL('../fixtures/real-clients/nacos-dubbo-3.3.5-greet-app.json', import.meta.url), 'utf8'),
  );
  const parsed = parseInstanceList(raw, 'greet-app');
  if (parsed instanceof Error) throw parsed;
  const s = nacosModelService(
    { source: 'nacos', namespace: 'rc', group: 'DEFAULT_GROUP', name: 'greet-app' },
    parsed.instances,
    {
      applicationLevel: 'merge',
    },
  );
  if (s === undefined || s instanceof Error) throw new Error('no service');
  return s;
}

describe('register-mode=instance: application-level providers on their interfaces', () => {
  it('merge: published on the interface entry the ZooKeeper metadata names, with every protocol port, not as <app>.dubbo', () => {
    const read = servicesOfRoots([instanceModeRead([mapping, definitions])], 'zk', { maxDataBytes: 64 * 1024 });
    const out = synthAll([{ services: read.services, options: zkOptions }]);
    expect(out.desired.map((d) => d.host)).toEqual([HOST]);
    const spec = out.desired[0]!.object.spec;
    expect(spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual(['TCP/20884', 'GRPC/50054']);
    expect(spec.endpoints!.map((e) => e.address)).toEqual(['192.0.2.2']);
    expect(JSON.stringify(spec)).not.toMatch(/revision|timestamp/);
    expect(out.notes.map((n) => n.note.code)).not.toContain('application-level-unmapped');
  });

  it('the mapping of one registry places the same application registered in another (Nacos) too; weights agree', () => {
    const zk = servicesOfRoots([instanceModeRead([mapping, definitions])], 'zk', { maxDataBytes: 64 * 1024 });
    const nacos = nacosApp();
    const out = synthAll([
      { services: zk.services, options: zkOptions },
      { services: [nacos], options: nacosOptions },
    ]);
    expect(out.desired.map((d) => d.host)).toEqual([HOST]);
    const e = out.desired[0]!.object;
    expect(e.metadata.annotations?.[SOURCES_ANNOTATION]).toBe('zk,nacos');
    // Dubbo's default weight on both levels and registries: all equal, so no weights at all.
    expect(e.spec.endpoints!.every((ep) => ep.weight === undefined)).toBe(true);
    expect(e.spec.endpoints!.length).toBe(3);
  });

  it('without metadata, or with the mapping alone, the application stays on its own entry and the note names the interfaces', () => {
    const none = servicesOfRoots([instanceModeRead([])], 'zk', { maxDataBytes: 64 * 1024 });
    expect(synthAll([{ services: none.services, options: zkOptions }]).desired.map((d) => d.host)).toEqual([
      'greet-app.dubbo',
    ]);
    const onlyMapping = servicesOfRoots([instanceModeRead([mapping])], 'zk', { maxDataBytes: 64 * 1024 });
    const out = synthAll([{ services: onlyMapping.services, options: zkOptions }]);
    expect(out.desired.map((d) => d.host)).toEqual(['greet-app.dubbo']);
    expect(out.notes.find((n) => n.note.code === 'application-level-unmapped')?.note.detail).toContain(
      'mapping names registrybridge.demo.GreetService',
    );
  });

  it('separate and ignore do not map', () => {
    const separate = servicesOfRoots([instanceModeRead([mapping, definitions])], 'zk', {
      maxDataBytes: 64 * 1024,
      applicationLevel: 'separate',
    });
    expect(synthAll([{ services: separate.services, options: zkOptions }]).desired.map((d) => d.host)).toEqual([
      'greet-app.dubbo',
    ]);
    const ignore = servicesOfRoots([instanceModeRead([mapping, definitions])], 'zk', {
      maxDataBytes: 64 * 1024,
      applicationLevel: 'ignore',
    });
    expect(synthAll([{ services: ignore.services, options: zkOptions }]).desired).toEqual([]);
  });

  it('the same service object while the metadata is unchanged (synthesis memoizes on identity)', () => {
    const base = instanceModeRead([mapping, definitions]);
    const a = servicesOfRoots([base], 'zk', { maxDataBytes: 64 * 1024 });
    const parsed = new WeakMap();
    for (const dir of base.curator) parsed.set(dir, { services: a.services, rejected: [] });
    const b = servicesOfRoots([base], 'zk', { maxDataBytes: 64 * 1024 }, parsed);
    const c = servicesOfRoots([base], 'zk', { maxDataBytes: 64 * 1024 }, parsed);
    expect(b.services[0]).toBe(c.services[0]);
  });
});

describe('early creates, runs for a few services, and application-level services', () => {
  it('a run for a few services leaves an application-level service in merge mode to a full run', async () => {
    const zk = servicesOfRoots([rootReadOf(loadTree('../real-clients/dubbo-3.3.5-zk-all.json'), '/dubbo')], 'zk', {
      maxDataBytes: 64 * 1024,
    });
    const app = zk.services.find((s) => s.applicationLevel)!;
    const adapter: SourceAdapter = {
      list: async () => ({ source: 'zk', services: zk.services, rejected: [] }),
      readServices: async () => ({ source: 'zk', services: [app], rejected: [] }),
      close: async () => {},
    };
    const writes: Change[] = [];
    const sink: Sink = {
      kind: 'memory',
      observe: async () => [],
      apply: async (changes) => (writes.push(...changes), changes.map((change) => ({ change, ok: true as const }))),
    };
    const report = await reconcileKeys(
      [app.key],
      [{ name: 'zk', kind: 'zookeeper', adapter, synth: zkOptions }],
      sink,
      { observed: new Map(), byKey: new Map(), hostOwner: new Map() },
      { policy: 'sync', maxDeletes: 10, dryRun: false },
      { logger: silentLogger(), signal: new AbortController().signal },
    );
    // Alone, the application would look unmapped and get an entry of its own.
    expect(report).toBeUndefined();
    expect(writes).toEqual([]);
  });

  it('a full run never creates an application entry early that the whole read then deletes', async () => {
    const zk = servicesOfRoots([rootReadOf(loadTree('../real-clients/dubbo-3.3.5-zk-all.json'), '/dubbo')], 'zk', {
      maxDataBytes: 64 * 1024,
    });
    // The application directory sorts (and is read) before the interface's.
    expect(zk.services.map((s) => s.key.name)).toEqual(['greet-app', 'registrybridge.demo.GreetService']);
    const adapter: SourceAdapter = {
      async list(_signal: AbortSignal, onService?: ServiceListener) {
        for (const s of zk.services) {
          await new Promise((r) => setImmediate(r));
          onService?.(s);
        }
        return { source: 'zk', services: zk.services, rejected: [] };
      },
      async close() {},
    };
    const writes: Change[] = [];
    const sink: Sink = {
      kind: 'memory',
      earlyCreates: true,
      observe: async () => [],
      apply: async (changes) => {
        await new Promise((r) => setImmediate(r));
        writes.push(...changes);
        return changes.map((change) => ({ change, ok: true as const }));
      },
    };
    await reconcileOnce(
      [{ name: 'zk', kind: 'zookeeper', adapter, synth: zkOptions } satisfies ConfiguredSource],
      sink,
      { policy: 'sync', maxDeletes: 10, dryRun: false },
      { logger: silentLogger(), signal: new AbortController().signal },
    );
    expect(writes.map((w) => `${w.action} ${w.host}`)).toEqual([`create ${HOST}`]);
  });
});
