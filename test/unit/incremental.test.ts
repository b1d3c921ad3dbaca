import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/controller.js';
import type { ConfiguredSource, ReconcileReport } from '../../src/controller/reconcile.js';
import { silentLogger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { serviceKeyString, type RegistryService, type ServiceKey } from '../../src/model/service.js';
import { filesSink } from '../../src/sinks/files.js';
import type { Sink } from '../../src/sinks/types.js';
import type { ChangeListener, SourceAdapter } from '../../src/sources/adapter.js';
import { inst, options } from './helpers.js';

/** An adapter over a Map the test edits: our own interface, no registry behind it. */
class MemorySource implements SourceAdapter {
  readonly services = new Map<string, RegistryService>();
  listCalls = 0;
  listener: ChangeListener | undefined;
  put(name: string, addresses: string[]): ServiceKey {
    const key = { source: 'mem', namespace: 'public', group: 'DEFAULT_GROUP', name };
    this.services.set(serviceKeyString(key), { key, protocol: 'http', instances: addresses.map((a) => inst(a, 80)) });
    return key;
  }
  async list() {
    this.listCalls += 1;
    return { source: 'mem', services: [...this.services.values()], rejected: [] };
  }
  async readServices(keys: readonly ServiceKey[]) {
    const wanted = new Set(keys.map(serviceKeyString));
    return { source: 'mem', services: [...this.services.values()].filter((s) => wanted.has(serviceKeyString(s.key))), rejected: [] };
  }
  async watch(onChange: ChangeListener) {
    this.listener = onChange;
  }
  async close() {}
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rb-inc-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('controller fast path for change hints', () => {
  it('reconciles only the hinted services from the adapter view and its cache, and falls back to a full run when unsure', async () => {
    const mem = new MemorySource();
    const a = mem.put('a', ['10.0.0.1']);
    const b = mem.put('b', ['10.0.0.2']);
    const c = mem.put('c', ['10.0.0.3']);
    const files = filesSink(join(dir, 'out'));
    let observeCalls = 0;
    const sink: Sink = { ...files, observe: (s) => ((observeCalls += 1), files.observe(s)) };
    const source: ConfiguredSource = { name: 'mem', kind: 'memory', adapter: mem, synth: { ...options, namespace: 'ns' } };
    const reports: ReconcileReport[] = [];
    const abort = new AbortController();
    const controller = new Controller([source], sink, { policy: 'sync', maxDeletes: 10, dryRun: false, resyncMs: 60_000, debounceMs: 5 }, { logger: silentLogger(), metrics: new BridgeMetrics(), onReport: (r) => reports.push(r) }, abort.signal);
    const next = async (n: number) => {
      for (let i = 0; i < 500 && reports.length < n; i++) await new Promise((r) => setTimeout(r, 5));
      expect(reports.length).toBe(n);
      return reports[n - 1]!;
    };
    try {
      controller.start();
      const first = await next(1);
      expect(first.scope).toBe('full');
      expect(first.plan.counts.create).toBe(3);

      // An instance added to b: only b is read, planned and written; no registry walk, no list of the sink.
      mem.put('b', ['10.0.0.2', '10.0.0.9']);
      mem.listener!([b]);
      const keyed = await next(2);
      expect(keyed.scope).toBe('keys');
      expect(keyed.plan.changes.map((ch) => `${ch.action} ${ch.name}`)).toEqual(['update b.default-group.public.nacos']);
      expect(mem.listCalls).toBe(1);
      expect(observeCalls).toBe(1);
      expect(await readFile(join(dir, 'out', 'ns', 'b.default-group.public.nacos.yaml'), 'utf8')).toContain('10.0.0.9');

      // c leaves the registry: deleted on the fast path.
      mem.services.delete(serviceKeyString(c));
      mem.listener!([c]);
      expect((await next(3)).plan.changes.map((ch) => `${ch.action} ${ch.name}`)).toEqual(['delete c.default-group.public.nacos']);
      expect((await readdir(join(dir, 'out', 'ns'))).sort()).toEqual(['a.default-group.public.nacos.yaml', 'b.default-group.public.nacos.yaml']);

      // A new service that would take a's host: the fast path steps aside and the full run decides.
      const clash = mem.put('A', ['10.0.0.5']);
      mem.listener!([clash]);
      const decided = await next(4);
      expect(decided.scope).toBe('full');
      // The service that already owns the host keeps it; the newcomer is reported.
      expect(decided.synth.invalid.map((r) => r.key.name)).toEqual(['A']);
      expect(decided.synth.invalid[0]!.reason).toMatch(new RegExp(`already produced by service ${serviceKeyString(a)}`));
      expect(decided.plan.counts).toMatchObject({ create: 0, update: 0, delete: 0 });
      expect(mem.listCalls).toBe(2);
    } finally {
      abort.abort();
      await controller.stop();
    }
  });
});
