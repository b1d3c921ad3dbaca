import { describe, expect, it } from 'vitest';
import { planChanges, writesOf, type ObservedEntry, type PlanInput, type Policy } from '../../src/plan/plan.js';
import { synthServiceEntry, type DesiredEntry } from '../../src/synth/index.js';
import { inst, options, svc } from './helpers.js';

function desired(name: string, address = '10.0.0.1', source = 'test'): DesiredEntry {
  const r = synthServiceEntry(
    { ...svc(name, [inst(address, 80)]), key: { source, namespace: 'public', group: 'DEFAULT_GROUP', name } },
    options,
  );
  if (r.kind !== 'ok') throw new Error('fixture must synthesize');
  return r.entry;
}

function observedOf(d: DesiredEntry, patch: Partial<ObservedEntry> = {}): ObservedEntry {
  return {
    namespace: d.namespace,
    name: d.name,
    hosts: [d.host],
    owned: true,
    source: d.key.source,
    hash: d.hash,
    resourceVersion: '1',
    ...patch,
  };
}

const healthy = new Map([['test', true]]);
const base = { sourceHealthy: healthy, policy: 'sync' as Policy, maxDeletes: 100 };

describe('planChanges table', () => {
  const a = desired('a');
  const b = desired('b');
  const aChanged = desired('a', '10.9.9.9');
  const cases: {
    name: string;
    input: Partial<PlanInput> & Pick<PlanInput, 'desired' | 'observed'>;
    expected: Record<string, string>;
  }[] = [
    {
      name: 'nothing observed: create all',
      input: { desired: [a, b], observed: [] },
      expected: { [a.name]: 'create', [b.name]: 'create' },
    },
    {
      name: 'same hash: unchanged',
      input: { desired: [a], observed: [observedOf(a)] },
      expected: { [a.name]: 'unchanged' },
    },
    {
      name: 'other hash: update',
      input: { desired: [aChanged], observed: [observedOf(a)] },
      expected: { [a.name]: 'update' },
    },
    {
      name: 'owned, no longer desired: delete',
      input: { desired: [], observed: [observedOf(a)] },
      expected: { [a.name]: 'delete' },
    },
    {
      name: 'name taken by a foreign object: conflict',
      input: {
        desired: [a],
        observed: [observedOf(a, { owned: false, source: undefined as never, hash: undefined as never })],
      },
      expected: { [a.name]: 'conflict' },
    },
    {
      name: 'host served by a foreign object elsewhere: conflict',
      input: { desired: [a], observed: [{ namespace: 'other', name: 'hand-made', hosts: [a.host], owned: false }] },
      expected: { [a.name]: 'conflict' },
    },
    {
      name: 'owned by another source: conflict, never stolen',
      input: { desired: [a], observed: [observedOf(a, { source: 'other' })] },
      expected: { [a.name]: 'conflict' },
    },
    {
      name: 'foreign objects not desired are not ours to delete',
      input: { desired: [], observed: [{ namespace: 'x', name: 'y', hosts: ['y.example.com'], owned: false }] },
      expected: {},
    },
    {
      name: 'upsert-only: update, never delete',
      input: { desired: [aChanged], observed: [observedOf(a), observedOf(b)], policy: 'upsert-only' },
      expected: { [a.name]: 'update', [b.name]: 'keep' },
    },
    {
      name: 'create-only: never update or delete',
      input: { desired: [aChanged], observed: [observedOf(a), observedOf(b)], policy: 'create-only' },
      expected: { [a.name]: 'keep', [b.name]: 'keep' },
    },
    {
      name: 'source read failed: deletions fenced',
      input: { desired: [], observed: [observedOf(a)], sourceHealthy: new Map([['test', false]]) },
      expected: { [a.name]: 'keep' },
    },
    {
      name: 'source no longer configured: orphan kept',
      input: { desired: [], observed: [observedOf(a)], sourceHealthy: new Map() },
      expected: { [a.name]: 'keep' },
    },
    {
      name: 'empty service: object protected',
      input: {
        desired: [],
        observed: [observedOf(a)],
        protectedObjects: [{ namespace: a.namespace, name: a.name, reason: 'no instances' }],
      },
      expected: { [a.name]: 'keep' },
    },
    {
      name: 'deletion cap: first N deleted, rest kept',
      input: { desired: [], observed: [observedOf(a), observedOf(b)], maxDeletes: 1 },
      expected: { [a.name]: 'delete', [b.name]: 'keep' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = planChanges({ ...base, ...c.input });
      expect(Object.fromEntries(plan.changes.map((ch) => [ch.name, ch.action]))).toEqual(c.expected);
      for (const ch of plan.changes)
        if (ch.action === 'conflict' || ch.action === 'keep') expect(ch.reason).toBeTruthy();
    });
  }
});

describe('planChanges properties', () => {
  it('is idempotent: desired == observed gives zero writes', () => {
    const all = ['a', 'b', 'c', 'd'].map((n) => desired(n));
    const plan = planChanges({ ...base, desired: all, observed: all.map((d) => observedOf(d)) });
    expect(writesOf(plan)).toEqual([]);
    expect(plan.counts.unchanged).toBe(4);
  });

  it('orders changes by namespace/name whatever the input order', () => {
    const all = ['d', 'a', 'c', 'b'].map((n) => desired(n));
    const plan = planChanges({ ...base, desired: all, observed: [] });
    expect(plan.changes.map((c) => c.name)).toEqual([...plan.changes.map((c) => c.name)].sort());
  });

  it('counts every action', () => {
    const a = desired('a');
    const plan = planChanges({
      ...base,
      desired: [a, desired('b')],
      observed: [observedOf(a), observedOf(desired('c'))],
    });
    expect(plan.counts).toEqual({ create: 1, update: 0, delete: 1, unchanged: 1, conflict: 0, keep: 0 });
  });
});
