import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Controller } from '../../src/controller/controller.js';
import type { ConfiguredSource, ReconcileReport } from '../../src/controller/reconcile.js';
import { silentLogger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { serviceKeyString, type RegistryService, type ServiceKey } from '../../src/model/service.js';
import { filesSink } from '../../src/sinks/files.js';
import type { Change } from '../../src/plan/plan.js';
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
    return {
      source: 'mem',
      services: [...this.services.values()].filter((s) => wanted.has(serviceKeyString(s.key))),
      rejected: [],
    };
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
    const source: ConfiguredSource = {
      name: 'mem',
      kind: 'memory',
      adapter: mem,
      synth: { ...options, namespace: 'ns' },
    };
    const reports: ReconcileReport[] = [];
    const abort = new AbortController();
    const controller = new Controller(
      [source],
      sink,
      { policy: 'sync', maxDeletes: 10, dryRun: false, resyncMs: 60_000, debounceMs: 5 },
      { logger: silentLogger(), metrics: new BridgeMetrics(), onReport: (r) => reports.push(r) },
      abort.signal,
    );
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
      expect(keyed.plan.changes.map((ch) => `${ch.action} ${ch.name}`)).toEqual([
        'update b.default-group.public.nacos',
      ]);
      expect(mem.listCalls).toBe(1);
      expect(observeCalls).toBe(1);
      expect(await readFile(join(dir, 'out', 'ns', 'b.default-group.public.nacos.yaml'), 'utf8')).toContain('10.0.0.9');

      // c leaves the registry: the fast path never deletes (a service missing from a keys-scoped
      // read may be one the adapter's view lost); it keeps c and a full run follows at once,
      // which reads every service and deletes c.
      mem.services.delete(serviceKeyString(c));
      mem.listener!([c]);
      const scoped = await next(3);
      expect(scoped.scope).toBe('keys');
      expect(scoped.plan.changes.map((ch) => `${ch.action} ${ch.name}`)).toEqual(['keep c.default-group.public.nacos']);
      expect(scoped.plan.needsFullRun).toBe(true);
      const full = await next(4);
      expect(full.scope).toBe('full');
      expect(
        full.plan.changes.filter((ch) => ch.action !== 'unchanged').map((ch) => `${ch.action} ${ch.name}`),
      ).toEqual(['delete c.default-group.public.nacos']);
      expect(mem.listCalls).toBe(2);
      expect((await readdir(join(dir, 'out', 'ns'))).sort()).toEqual([
        'a.default-group.public.nacos.yaml',
        'b.default-group.public.nacos.yaml',
      ]);

      // A new service that would take a's host: the fast path steps aside and the full run decides.
      const clash = mem.put('A', ['10.0.0.5']);
      mem.listener!([clash]);
      const decided = await next(5);
      expect(decided.scope).toBe('full');
      // The service that already owns the host keeps it; the newcomer is reported.
      expect(decided.synth.invalid.map((r) => r.key.name)).toEqual(['A']);
      expect(decided.synth.invalid[0]!.reason).toMatch(
        new RegExp(`already produced by service ${serviceKeyString(a)}`),
      );
      expect(decided.plan.counts).toMatchObject({ create: 0, update: 0, delete: 0 });
      expect(mem.listCalls).toBe(3);
    } finally {
      abort.abort();
      await controller.stop();
    }
  });
});

/** A sink that keeps nothing: records each write and answers it as `refuse` says. */
function recordingSink(refuse: () => boolean): Sink & { writes: Change[] } {
  const writes: Change[] = [];
  return {
    kind: 'memory',
    writes,
    observe: async () => [],
    apply: async (changes) =>
      changes.map(
        (change) => (
          writes.push(change),
          refuse() ? { change, ok: false as const, error: 'refused' } : { change, ok: true as const }
        ),
      ),
  };
}

describe('controller scheduling of change hints', () => {
  afterEach(() => void vi.useRealTimers());
  /** Lets the runs that are due finish (the sink and source answer without I/O). */
  const settle = async () => {
    for (let i = 0; i < 50; i++) await vi.advanceTimersByTimeAsync(0);
  };
  /** A controller over `mem` and `sink` (resync an hour away), its reports and its abort. */
  const controllerOf = (mem: MemorySource, sink: Sink, timing: { debounceMs: number; retryMs?: number }) => {
    const reports: ReconcileReport[] = [];
    const abort = new AbortController();
    const source: ConfiguredSource = {
      name: 'mem',
      kind: 'memory',
      adapter: mem,
      synth: { ...options, namespace: 'ns' },
    };
    const controller = new Controller(
      [source],
      sink,
      { policy: 'sync', maxDeletes: 10, dryRun: false, resyncMs: 3_600_000, ...timing },
      { logger: silentLogger(), metrics: new BridgeMetrics(), onReport: (r) => reports.push(r) },
      abort.signal,
    );
    return { controller, reports, abort };
  };

  it('runs a hint after a quiet window at once, and coalesces the hints inside the window into one run at its end', async () => {
    vi.useFakeTimers();
    const mem = new MemorySource();
    const a = mem.put('a', ['10.0.0.1']);
    const b = mem.put('b', ['10.0.0.2']);
    const c = mem.put('c', ['10.0.0.3']);
    const sink = recordingSink(() => false);
    const { controller, reports, abort } = controllerOf(mem, sink, { debounceMs: 1000 });
    try {
      controller.start();
      await settle();
      expect(reports.map((r) => r.scope)).toEqual(['full']);
      await vi.advanceTimersByTimeAsync(5000);

      // Quiet for longer than the window: the hint runs without waiting.
      const hintedAt = Date.now();
      mem.put('a', ['10.0.0.1', '10.0.0.7']);
      mem.listener!([a]);
      await settle();
      expect(Date.now()).toBe(hintedAt);
      expect(reports.length).toBe(2);
      expect(reports[1]!.plan.changes.map((ch) => `${ch.action} ${ch.name}`)).toEqual([
        'update a.default-group.public.nacos',
      ]);

      // Two more changes inside the window: nothing runs until it ends, then both in one run.
      await vi.advanceTimersByTimeAsync(10);
      mem.put('b', ['10.0.0.2', '10.0.0.8']);
      mem.listener!([b]);
      await vi.advanceTimersByTimeAsync(10);
      mem.put('c', ['10.0.0.3', '10.0.0.9']);
      mem.listener!([c]);
      await vi.advanceTimersByTimeAsync(1000 - 20 - 1);
      expect(reports.length).toBe(2);
      await vi.advanceTimersByTimeAsync(1);
      await settle();
      expect(reports.length).toBe(3);
      expect(reports[2]!.scope).toBe('keys');
      expect(reports[2]!.plan.changes.map((ch) => `${ch.action} ${ch.name}`).sort()).toEqual([
        'update b.default-group.public.nacos',
        'update c.default-group.public.nacos',
      ]);
      expect(sink.writes.length).toBe(3 + 1 + 2);
    } finally {
      abort.abort();
      await controller.stop();
    }
  });

  it("a hint that comes during a run starts the next run at the debounce window's end, not as soon as the run ends", async () => {
    vi.useFakeTimers();
    let release: (() => void) | undefined;
    /** Reads of hinted services wait for the test while `gated` is set: a run in progress. */
    class GatedSource extends MemorySource {
      gated = false;
      override async readServices(keys: readonly ServiceKey[]) {
        if (this.gated) await new Promise<void>((r) => (release = r));
        return super.readServices(keys);
      }
    }
    const mem = new GatedSource();
    const a = mem.put('a', ['10.0.0.1']);
    const b = mem.put('b', ['10.0.0.2']);
    const sink = recordingSink(() => false);
    const { controller, reports, abort } = controllerOf(mem, sink, { debounceMs: 1000 });
    try {
      controller.start();
      await settle();
      expect(reports.length).toBe(1);
      await vi.advanceTimersByTimeAsync(5000);

      // A quiet window: the hint runs at once, and its read is held (the run is in progress).
      mem.gated = true;
      mem.put('a', ['10.0.0.1', '10.0.0.7']);
      mem.listener!([a]);
      await settle();
      expect(release).toBeDefined();
      // A hint during that run, 10 ms into the window.
      await vi.advanceTimersByTimeAsync(10);
      mem.put('b', ['10.0.0.2', '10.0.0.8']);
      mem.listener!([b]);
      mem.gated = false;
      release!();
      await settle();
      expect(reports.length).toBe(2);
      // The next run waits for the window's end (1000 ms after the last run started).
      await vi.advanceTimersByTimeAsync(1000 - 10 - 1);
      expect(reports.length).toBe(2);
      await vi.advanceTimersByTimeAsync(1);
      await settle();
      expect(reports.length).toBe(3);
      expect(reports[2]!.scope).toBe('keys');
      expect(reports[2]!.plan.changes.map((ch) => `${ch.action} ${ch.name}`)).toEqual([
        'update b.default-group.public.nacos',
      ]);
    } finally {
      abort.abort();
      await controller.stop();
    }
  });

  it('does not let a hint cut short the backoff after a failed run', async () => {
    vi.useFakeTimers();
    const mem = new MemorySource();
    const a = mem.put('a', ['10.0.0.1']);
    let refusing = true;
    const sink = recordingSink(() => refusing);
    const { controller, reports, abort } = controllerOf(mem, sink, { debounceMs: 100, retryMs: 20_000 });
    try {
      controller.start();
      await settle();
      expect(reports.length).toBe(1);
      expect(reports[0]!.failedWrites).toBe(1);
      refusing = false;

      // The backoff is 10–20 s (20 s, jittered); hints well after the debounce window wait for it.
      await vi.advanceTimersByTimeAsync(5000);
      mem.put('a', ['10.0.0.1', '10.0.0.7']);
      mem.listener!([a]);
      await settle();
      await vi.advanceTimersByTimeAsync(4000);
      expect(reports.length).toBe(1);
      await vi.advanceTimersByTimeAsync(11_000);
      await settle();
      expect(reports.length).toBe(2);
      expect(reports[1]!.scope).toBe('full');
      expect(reports[1]!.failedWrites).toBe(0);
      expect(sink.writes.at(-1)!.desired?.object).toMatchObject({
        spec: { endpoints: [{ address: '10.0.0.1' }, { address: '10.0.0.7' }] },
      });
    } finally {
      abort.abort();
      await controller.stop();
    }
  });
});
