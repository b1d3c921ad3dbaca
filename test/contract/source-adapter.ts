/**
 * The SourceAdapter contract (src/sources/adapter.ts), as one suite every adapter's tests call
 * with a harness for its real registry. A new adapter's author writes the harness (how to publish
 * and remove a service, how to point the adapter at nothing) and gets the contract checked:
 *
 * - an unreachable registry is a SourceUnavailableError, never an empty snapshot;
 * - `list` shows what the registry holds, and two lists of an unchanged registry are equal;
 * - `readServices` (where the adapter has it) agrees with `list`, and publishes nothing for a
 *   service that does not exist;
 * - a change is hinted to `watch`'s listener (with its key, or with no keys);
 * - an entry the adapter cannot use is reported in `rejected`, once;
 * - `close` (with the watch's signal aborted) releases the sockets, file watches and timers it held.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SourceUnavailableError } from '../../src/errors.js';
import type { RegistryService, ServiceKey, SourceSnapshot } from '../../src/model/service.js';
import type { SourceAdapter } from '../../src/sources/adapter.js';

export interface ContractInstance {
  readonly address: string;
  readonly port: number;
}

export interface ContractHarness {
  /** Shown in the suite's title. */
  readonly name: string;
  /** A new adapter on the real registry, scoped to this suite's own corner of it. */
  adapter(): SourceAdapter;
  /** A new adapter whose registry cannot be reached (a closed port, a missing file). */
  unreachable(): SourceAdapter;
  /** Publishes service `name` with exactly these instances. */
  publish(name: string, instances: readonly ContractInstance[]): Promise<void>;
  /** Removes service `name` and its instances. */
  remove(name: string): Promise<void>;
  /** Whether `service` is the one published as `name`. */
  matches(service: RegistryService, name: string): boolean;
  /**
   * Publishes an entry the adapter must reject, alongside valid ones; resolves to a substring of
   * the RejectedEntry's `ref`. Absent where the registry itself refuses anything the adapter
   * would reject.
   */
  publishInvalid?(): Promise<string>;
  /** Longest wait for a registry write to show in `list` or reach `watch` (ms). */
  readonly settleMs: number;
  /**
   * Resolves once the newest adapter's watch is armed for the services its last list read,
   * where arming goes on after `watch` and `list` resolve (Nacos subscriptions are answered
   * later). Absent: armed when they resolve.
   */
  armed?(): Promise<void>;
}

/**
 * What an adapter may hold that `close` must give back, counted from the kernel's view of this
 * process (Linux /proc), so that unreferenced handles count too: open sockets, inotify watches
 * (fs.watch), and referenced timers.
 */
function heldResources(): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (kind: string, n = 1) => counts.set(kind, (counts.get(kind) ?? 0) + n);
  for (const fd of readdirSync('/proc/self/fd')) {
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (the listing's own fd, among others)
    }
    if (link.startsWith('socket:')) add('socket');
    else if (link === 'anon_inode:inotify') {
      const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
      add('inotify watch', info.split('\n').filter((l) => l.startsWith('inotify ')).length);
    }
  }
  for (const r of process.getActiveResourcesInfo()) if (r === 'Timeout') add('timer');
  return counts;
}

/** Kinds held now beyond `baseline`, as `kind +n` strings (empty: nothing more held). */
function beyond(baseline: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [kind, n] of heldResources())
    if (n > (baseline.get(kind) ?? 0)) extra.push(`${kind} +${n - (baseline.get(kind) ?? 0)}`);
  return extra;
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${ms} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const endpoints = (s: RegistryService | undefined) =>
  (s?.instances ?? []).map((i) => `${i.address}:${i.port}`).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

const comparable = (value: SourceSnapshot | readonly RegistryService[]) => JSON.parse(JSON.stringify(value)) as unknown;

export function adapterContract(h: ContractHarness): void {
  const name = `contract-${process.pid}-${Date.now().toString(36)}`;
  const timeout = () => AbortSignal.timeout(h.settleMs + 30_000);

  const listed = async (a: SourceAdapter, want: readonly string[]): Promise<SourceSnapshot> =>
    waitFor(`${h.name}: ${name} listed with ${want.join(', ')}`, h.settleMs, async () => {
      const snap = await a.list(timeout());
      const got = endpoints(snap.services.find((s) => h.matches(s, name)));
      return JSON.stringify(got) === JSON.stringify(want) ? snap : undefined;
    });

  describe(`SourceAdapter contract: ${h.name}`, () => {
    // First: an adapter that leaks a watch on a path shared with a later test would hide its own leak there.
    it('close, with the watch stopped, releases the sockets, file watches and timers the adapter held', async () => {
      await h.publish(name, [{ address: '127.9.3.1', port: 8080 }]);
      const baseline = heldResources();
      const a = h.adapter();
      const watching = new AbortController();
      try {
        await listed(a, ['127.9.3.1:8080']);
        if (a.watch) await a.watch(() => undefined, watching.signal);
      } finally {
        watching.abort();
        await a.close();
      }
      // Sockets close a tick or two after close() resolves: give them a moment, then require it.
      const left = await waitFor('resources released', 5_000, async () =>
        beyond(baseline).length ? undefined : [],
      ).catch(() => beyond(baseline));
      expect(left, `still held after close: ${left.join(', ')}`).toEqual([]);
      await h.remove(name);
    });
    it('an unreachable registry is a SourceUnavailableError, never an empty snapshot', async () => {
      const a = h.unreachable();
      try {
        await expect(a.list(AbortSignal.timeout(60_000))).rejects.toBeInstanceOf(SourceUnavailableError);
      } finally {
        await a.close();
      }
    });

    it('lists what the registry holds; two lists of an unchanged registry are equal; readServices agrees', async () => {
      await h.publish(name, [
        { address: '127.9.0.1', port: 8080 },
        { address: '127.9.0.2', port: 8080 },
      ]);
      const a = h.adapter();
      const watching = new AbortController();
      try {
        const first = await listed(a, ['127.9.0.1:8080', '127.9.0.2:8080']);
        const second = await a.list(timeout());
        expect(comparable(second)).toEqual(comparable(first));
        if (a.readServices) {
          // readServices answers from the adapter's own view, which a watch keeps (the controller
          // calls it only while watching; without one it may refuse, and a full run follows).
          if (a.watch) await a.watch(() => undefined, watching.signal);
          const mine = (await listed(a, ['127.9.0.1:8080', '127.9.0.2:8080'])).services.find((s) =>
            h.matches(s, name),
          )!;
          const missing: ServiceKey = { ...mine.key, name: `${mine.key.name}-absent` };
          const read = await a.readServices([mine.key, missing], timeout());
          expect(comparable(read.services.filter((s) => h.matches(s, name)))).toEqual(comparable([mine]));
          // A service that does not exist publishes nothing: absent, or present without instances
          // (a Nacos instance list cannot tell a missing service from an empty one).
          expect(read.services.filter((s) => s.key.name === missing.name).flatMap((s) => s.instances)).toEqual([]);
        }
      } finally {
        watching.abort();
        await a.close();
        await h.remove(name);
      }
    });

    it('a change reaches the watch as a hint, and the next list shows it', async () => {
      await h.publish(name, [{ address: '127.9.1.1', port: 8080 }]);
      const a = h.adapter();
      const watching = new AbortController();
      try {
        if (!a.watch) return; // an adapter without watch is read by the periodic resync: nothing to hint
        const hints: (readonly ServiceKey[] | undefined)[] = [];
        // As the controller does: watch, then list (what a list reads is what the watch follows).
        await a.watch((keys) => hints.push(keys), watching.signal);
        await listed(a, ['127.9.1.1:8080']);
        await h.armed?.();
        hints.length = 0;
        await h.publish(name, [
          { address: '127.9.1.1', port: 8080 },
          { address: '127.9.1.2', port: 8080 },
        ]);
        await waitFor(`${h.name}: a hint for ${name}`, h.settleMs, async () =>
          hints.some((keys) => keys === undefined || keys.some((k) => h.matches({ key: k, instances: [] }, name)))
            ? true
            : undefined,
        );
        await listed(a, ['127.9.1.1:8080', '127.9.1.2:8080']);
      } finally {
        watching.abort();
        await a.close();
        await h.remove(name);
      }
    });

    it.skipIf(!h.publishInvalid)(
      'an entry it cannot use is reported in rejected, once, and the rest still lists',
      async () => {
        await h.publish(name, [{ address: '127.9.2.1', port: 8080 }]);
        const ref = await h.publishInvalid!();
        const a = h.adapter();
        try {
          const snap = await listed(a, ['127.9.2.1:8080']);
          const mine = snap.rejected.filter((r) => r.ref.includes(ref));
          expect(mine, JSON.stringify(snap.rejected)).toHaveLength(1);
          expect(mine[0]!.reason.length).toBeGreaterThan(0);
        } finally {
          await a.close();
          await h.remove(name);
        }
      },
    );
  });
}
