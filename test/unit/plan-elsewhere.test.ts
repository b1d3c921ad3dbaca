import { describe, expect, it } from 'vitest';
import { planChanges, type Action, type ObservedEntry } from '../../src/plan/plan.js';
import { serviceKeyString } from '../../src/model/service.js';
import { synthServiceEntry, type DesiredEntry } from '../../src/synth/index.js';
import { inst, options, svc } from './helpers.js';

/** Hosts that ServiceEntries in namespaces the bridge does not write to declare (src/plan/elsewhere.ts). */

const a: DesiredEntry = (() => {
  const r = synthServiceEntry(
    { ...svc('a', [inst('10.0.0.1', 80)]), key: { source: 'test', namespace: 'public', group: 'g', name: 'a' } },
    options,
  );
  if (r.kind !== 'ok') throw new Error('fixture must synthesize');
  return r.entry;
})();

const ours = (patch: Partial<ObservedEntry> = {}): ObservedEntry => ({
  namespace: a.namespace,
  name: a.name,
  hosts: [a.host],
  owned: true,
  source: 'test',
  hash: a.hash,
  service: serviceKeyString(a.key),
  created: '2026-01-02T00:00:00Z',
  ...patch,
});

const there = (patch: Partial<ObservedEntry> = {}): ObservedEntry => ({
  namespace: 'team-x',
  name: 'theirs',
  hosts: [a.host],
  owned: false,
  elsewhere: true,
  created: '2026-01-01T00:00:00Z',
  ...patch,
});

interface Row {
  readonly name: string;
  readonly observed: readonly ObservedEntry[];
  /** The action on a (undefined: not in the plan) and a pattern its reason matches. */
  readonly action: Action;
  readonly reason?: RegExp;
  /** Each collision as `<kept> > <other>: <reason pattern>`. */
  readonly collisions: readonly [string, RegExp][];
}

const rows: Row[] = [
  {
    name: 'exportTo unset elsewhere: visible everywhere, the new entry is withheld and reported',
    observed: [there()],
    action: 'conflict',
    reason: /already declared by ServiceEntry team-x\/theirs in another namespace \(exportTo unset.*visible in mesh\)/,
    collisions: [[`team-x/theirs > mesh/${a.name}`, /is not written: Istio keeps the oldest/]],
  },
  {
    name: 'exportTo * elsewhere: withheld',
    observed: [there({ exportTo: ['*'] })],
    action: 'conflict',
    collisions: [[`team-x/theirs > mesh/${a.name}`, /exportTo \*/]],
  },
  {
    name: "exportTo naming the bridge's namespace: withheld",
    observed: [there({ exportTo: ['other', 'mesh'] })],
    action: 'conflict',
    collisions: [[`team-x/theirs > mesh/${a.name}`, /exportTo other,mesh/]],
  },
  {
    name: "exportTo . elsewhere: a local override in its own namespace, not seen in the bridge's",
    observed: [there({ exportTo: ['.'] })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'exportTo other namespaces only: not reported',
    observed: [there({ exportTo: ['team-y'] })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'exportTo ~: seen nowhere',
    observed: [there({ exportTo: ['~'] })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'another registry-bridge elsewhere holds the host: withheld, named as such',
    observed: [there({ managedByBridge: true })],
    action: 'conflict',
    reason: /managed by another registry-bridge/,
    collisions: [[`team-x/theirs > mesh/${a.name}`, /not written/]],
  },
  {
    name: 'our entry exists and is older: kept, reported, ours named as the one Istio keeps',
    observed: [ours({ created: '2025-12-31T00:00:00Z' }), there()],
    action: 'unchanged',
    collisions: [[`mesh/${a.name} > team-x/theirs`, new RegExp(`Istio keeps the older, mesh/${a.name}`)]],
  },
  {
    name: 'our entry exists and is newer: kept (never deleted while published), reported, theirs kept by Istio',
    observed: [ours(), there()],
    action: 'unchanged',
    collisions: [[`team-x/theirs > mesh/${a.name}`, /Istio keeps the older, team-x\/theirs/]],
  },
  {
    name: 'our entry exists, its content changed: updated as usual, reported',
    observed: [ours({ hash: 'old' }), there()],
    action: 'update',
    collisions: [[`team-x/theirs > mesh/${a.name}`, /Istio keeps the older/]],
  },
  {
    name: 'an entry elsewhere with another host: nothing',
    observed: [there({ hosts: ['b.example'] })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'two entries elsewhere hold the host: the create is withheld, naming the oldest, both reported',
    observed: [there({ name: 'young', created: '2026-01-03T00:00:00Z' }), there({ name: 'old' })],
    action: 'conflict',
    reason: /team-x\/old/,
    collisions: [
      [`team-x/old > mesh/${a.name}`, /team-x\/old/],
      [`team-x/young > mesh/${a.name}`, /team-x\/young/],
    ],
  },
];

describe('hosts held in other namespaces (plan/elsewhere.ts), one row per case', () => {
  for (const row of rows)
    it(row.name, () => {
      const plan = planChanges({
        desired: [a],
        observed: row.observed,
        sourceHealthy: new Map([['test', true]]),
        policy: 'sync',
        maxDeletes: 100,
      });
      const change = plan.changes.find((c) => c.name === a.name && c.namespace === a.namespace);
      expect(change?.action).toBe(row.action);
      if (row.reason) expect(change?.reason).toMatch(row.reason);
      expect(
        plan.collisions.map(
          (c) => `${c.entries[0].namespace}/${c.entries[0].name} > ${c.entries[1].namespace}/${c.entries[1].name}`,
        ),
      ).toEqual(row.collisions.map(([pair]) => pair));
      plan.collisions.forEach((c, i) => {
        expect(c.kind).toBe('host');
        expect(c.reason).toMatch(row.collisions[i]![1]);
        expect(c.reason).toContain(a.host);
      });
      // Never the bridge's: an entry elsewhere is not updated, deleted or kept.
      expect(plan.changes.filter((c) => c.namespace === 'team-x')).toEqual([]);
    });

  it('an owned entry elsewhere (another installation, or a namespace no longer targeted) is never deleted', () => {
    const plan = planChanges({
      desired: [],
      observed: [there({ managedByBridge: true, hosts: ['gone.example'] })],
      sourceHealthy: new Map([['test', true]]),
      policy: 'sync',
      maxDeletes: 100,
    });
    expect(plan.changes).toEqual([]);
    expect(plan.collisions).toEqual([]);
  });

  it('entries elsewhere take no part in the port check (hosts only)', () => {
    const plan = planChanges({
      desired: [a],
      observed: [there({ hosts: ['z.example'], ports: [{ number: 80, protocol: 'TCP' }], addresses: [] })],
      sourceHealthy: new Map([['test', true]]),
      policy: 'sync',
      maxDeletes: 100,
    });
    expect(plan.collisions).toEqual([]);
  });
});
