import { describe, expect, it } from 'vitest';
import { reconcileOnce, type ConfiguredSource } from '../../src/controller/reconcile.js';
import { silentLogger } from '../../src/log.js';
import type { RegistryService } from '../../src/model/service.js';
import type { Change, ObservedEntry } from '../../src/plan/plan.js';
import type { Sink } from '../../src/sinks/types.js';
import type { ServiceListener, SourceAdapter } from '../../src/sources/adapter.js';
import { inst, options } from './helpers.js';

/**
 * A source that hands out its services one by one (as a registry read does), and can stop
 * before the last one until the test lets it go on. Our own interface, no registry behind it.
 */
class StreamingSource implements SourceAdapter {
  private release: () => void = () => {};
  readonly gate = new Promise<void>((r) => (this.release = r));
  constructor(
    private readonly services: readonly RegistryService[],
    private readonly holdBeforeLast = false,
  ) {}
  go(): void {
    this.release();
  }
  async list(_signal: AbortSignal, onService?: ServiceListener) {
    for (const [i, s] of this.services.entries()) {
      if (this.holdBeforeLast && i === this.services.length - 1) await this.gate;
      await new Promise((r) => setImmediate(r));
      onService?.(s);
    }
    return { source: 'mem', services: [...this.services], rejected: [] };
  }
  async close() {}
}

/** A kube-like sink over a Map: the objects it holds, every write in order. */
function mapSink(held: ObservedEntry[] = []) {
  const objects = new Map<string, { service: string; hash: string }>();
  for (const o of held) objects.set(`${o.namespace}/${o.name}`, { service: o.service ?? '', hash: o.hash ?? '' });
  const writes: { change: Change; dryRun: boolean }[] = [];
  const sink: Sink = {
    kind: 'memory',
    earlyCreates: true,
    observe: async () => [...held],
    apply: async (changes, { dryRun }) => {
      await new Promise((r) => setImmediate(r));
      return changes.map((change) => {
        writes.push({ change, dryRun });
        const id = `${change.namespace}/${change.name}`;
        if (!dryRun) {
          if (change.action === 'delete') objects.delete(id);
          else if (change.desired) objects.set(id, { service: change.desired.key.name, hash: change.desired.hash });
        }
        return { change, ok: true as const };
      });
    },
  };
  return { sink, objects, writes };
}

function service(name: string, addresses: string[], host?: string): RegistryService {
  return {
    key: { source: 'mem', namespace: 'public', group: 'DEFAULT_GROUP', name },
    ...(host ? { host } : {}),
    instances: addresses.map((a) => inst(a, 80)),
  };
}

const run = (adapter: SourceAdapter, sink: Sink, dryRun = false) =>
  reconcileOnce(
    [{ name: 'mem', kind: 'memory', adapter, synth: { ...options, namespace: 'ns' } } satisfies ConfiguredSource],
    sink,
    { policy: 'sync', maxDeletes: 10, dryRun },
    { logger: silentLogger(), signal: new AbortController().signal },
  );

describe('early creates during a full read', () => {
  it('creates each service as it is read, before the read ends, and writes nothing twice', async () => {
    const src = new StreamingSource(
      [service('a', ['10.0.0.1']), service('b', ['10.0.0.2']), service('c', ['10.0.0.3'])],
      true,
    );
    const { sink, objects, writes } = mapSink();
    const running = run(src, sink);
    // The read is held before its last service: the first two are written already.
    for (let i = 0; i < 20 && writes.length < 2; i++) await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => w.change.name)).toEqual(['a.default-group.public.nacos', 'b.default-group.public.nacos']);
    src.go();
    const report = await running;
    expect(writes.map((w) => `${w.change.action} ${w.change.name}`)).toEqual([
      'create a.default-group.public.nacos',
      'create b.default-group.public.nacos',
      'create c.default-group.public.nacos',
    ]);
    expect(report.plan.counts.create).toBe(3);
    expect(report.outcomes.filter((o) => o.ok).length).toBe(3);
    expect(report.failedWrites).toBe(0);
    expect([...objects.keys()].sort()).toEqual([
      'ns/a.default-group.public.nacos',
      'ns/b.default-group.public.nacos',
      'ns/c.default-group.public.nacos',
    ]);
  });

  it('ends a host clash where a run without early creates would: the key that sorts first wins, even when read last', async () => {
    // "b" is read first and created early; "a" sorts first and takes the host over in the same run.
    const src = new StreamingSource([
      service('b', ['10.0.0.2'], 'shared.example.com'),
      service('a', ['10.0.0.1'], 'shared.example.com'),
    ]);
    const { sink, objects, writes } = mapSink();
    const report = await run(src, sink);
    expect(report.synth.invalid.map((r) => r.key.name)).toEqual(['b']);
    expect(writes.map((w) => `${w.change.action} ${w.change.name} ${w.change.desired?.key.name ?? ''}`)).toEqual([
      'create shared.example.com b',
      'update shared.example.com a',
    ]);
    expect(objects.get('ns/shared.example.com')?.service).toBe('a');
  });

  it('an early object keeps its host when the service that sorts first publishes nothing', async () => {
    const src = new StreamingSource([
      service('b', ['10.0.0.2'], 'shared.example.com'),
      service('a', [], 'shared.example.com'),
    ]);
    const { sink, objects, writes } = mapSink();
    const report = await run(src, sink);
    // "a" exists but publishes nothing: it never takes the host from "b", which publishes it.
    expect(report.synth.invalid).toEqual([]);
    expect(writes.map((w) => `${w.change.action} ${w.change.name}`)).toEqual(['create shared.example.com']);
    expect(report.plan.changes.map((c) => `${c.action} ${c.name} ${c.applied ? 'applied' : ''}`)).toEqual([
      'create shared.example.com applied',
    ]);
    expect(objects.get('ns/shared.example.com')?.service).toBe('b');
  });

  it('keeps few early writes outstanding, and leaves the creates it has not sent to the plan', async () => {
    const services = Array.from({ length: 100 }, (_, i) => service(`s${String(i).padStart(3, '0')}`, [`10.0.1.${i}`]));
    let outstanding = 0;
    let most = 0;
    let open = false;
    const waiters: (() => void)[] = [];
    const applied: string[] = [];
    const sink: Sink = {
      kind: 'memory',
      earlyCreates: true,
      observe: async () => [],
      apply: async (changes) => {
        outstanding += 1;
        most = Math.max(most, outstanding);
        if (!open) await new Promise<void>((r) => waiters.push(r));
        outstanding -= 1;
        applied.push(...changes.map((c) => c.name));
        return changes.map((change) => ({ change, ok: true as const }));
      },
    };
    const running = run(new StreamingSource(services), sink);
    for (let i = 0; i < 200 && waiters.length < 16; i++) await new Promise((r) => setImmediate(r));
    expect(most).toBe(16);
    open = true;
    for (const w of waiters.splice(0)) w();
    const report = await running;
    expect(most).toBeLessThanOrEqual(17); // 16 early senders, then the plan's one call
    // Every service written exactly once, early or by the plan.
    expect(applied.length).toBe(100);
    expect(new Set(applied).size).toBe(100);
    expect(report.outcomes.filter((o) => o.ok).length).toBe(100);
  });

  it('leaves a service that has an object of ours to the plan, even when its name changed (no early create, no second synthesis)', async () => {
    // "a" is held under the name an older host template gave it.
    const held: ObservedEntry = {
      namespace: 'ns',
      name: 'a.old.example',
      hosts: ['a.old.example'],
      owned: true,
      source: 'mem',
      hash: 'old',
      service: 'mem/public/DEFAULT_GROUP/a',
    };
    const { sink, objects, writes } = mapSink([held]);
    const src = new StreamingSource([service('a', ['10.0.0.1']), service('b', ['10.0.0.2'])], true);
    const running = run(src, sink);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([]); // "a" was read; the read is held before "b"
    src.go();
    const report = await running;
    expect(report.plan.counts).toMatchObject({ create: 2, delete: 1 });
    expect([...objects.keys()].sort()).toEqual(['ns/a.default-group.public.nacos', 'ns/b.default-group.public.nacos']);
  });

  it('leaves objects the sink holds to the plan, and writes nothing early in a dry run', async () => {
    const held: ObservedEntry = {
      namespace: 'ns',
      name: 'a.default-group.public.nacos',
      hosts: ['a.default-group.public.nacos'],
      owned: true,
      source: 'mem',
      hash: 'stale',
      service: 'mem/public/DEFAULT_GROUP/a',
    };
    const { sink, writes } = mapSink([held]);
    const report = await run(new StreamingSource([service('a', ['10.0.0.1']), service('b', ['10.0.0.2'])]), sink);
    expect(writes.map((w) => `${w.change.action} ${w.change.name}`)).toEqual([
      'create b.default-group.public.nacos',
      'update a.default-group.public.nacos',
    ]);
    expect(report.plan.counts).toMatchObject({ create: 1, update: 1 });

    const dry = mapSink();
    await run(new StreamingSource([service('a', ['10.0.0.1']), service('b', ['10.0.0.2'])]), dry.sink, true);
    expect(dry.writes.map((w) => `${w.change.action} ${w.change.name} ${w.dryRun}`)).toEqual([
      'create a.default-group.public.nacos true',
      'create b.default-group.public.nacos true',
    ]);
  });
});
