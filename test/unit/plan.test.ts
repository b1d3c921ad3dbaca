import { describe, expect, it } from 'vitest';
import {
  planChanges,
  writesOf,
  type Action,
  type ObservedEntry,
  type PlanInput,
  type Policy,
  type ShrinkSettings,
} from '../../src/plan/plan.js';
import { PLAN_FILTERS } from '../../src/plan/policy.js';
import { serviceKeyString } from '../../src/model/service.js';
import { SOURCES_ANNOTATION, synthServiceEntry, type DesiredEntry } from '../../src/synth/index.js';
import { observedOfWritten } from '../../src/controller/reconcile.js';
import { inst, options, svc } from './helpers.js';

function desired(name: string, address = '10.0.0.1', source = 'test', host?: string): DesiredEntry {
  const r = synthServiceEntry(
    {
      ...svc(name, [inst(address, 80)]),
      key: { source, namespace: 'public', group: 'DEFAULT_GROUP', name },
      ...(host ? { host } : {}),
    },
    options,
  );
  if (r.kind !== 'ok') throw new Error('fixture must synthesize');
  return r.entry;
}

/** The same entry with a `registry-bridge.io/sources` annotation (what synthesis writes for merged services). */
function withSources(d: DesiredEntry, sources: string): DesiredEntry {
  const annotations = { ...d.object.metadata.annotations, [SOURCES_ANNOTATION]: sources };
  return {
    ...d,
    hash: `${d.hash}-${sources}`,
    object: { ...d.object, metadata: { ...d.object.metadata, annotations } },
  };
}

/** What the sink holds once `d` is written (resourceVersion 1), with `patch` applied. */
function observedOf(d: DesiredEntry, patch: Partial<ObservedEntry> = {}): ObservedEntry {
  return { ...observedOfWritten(d, '1'), ...patch };
}

const healthy = new Map([
  ['test', true],
  ['zk', true],
]);
const base = { sourceHealthy: healthy, policy: 'sync' as Policy, maxDeletes: 100 };

interface Row {
  readonly name: string;
  readonly input: Partial<PlanInput> & Pick<PlanInput, 'desired' | 'observed'>;
  /** object name → action, and a pattern its reason must match. */
  readonly expected: Record<string, [Action, RegExp?]>;
  readonly needsFullRun?: boolean;
  /** source → deleting count and whether held, for each source found shrinking sharply. */
  readonly shrinks?: Record<string, { deleting: number; held: boolean }>;
}

const a = desired('a');
const b = desired('b');
const aChanged = desired('a', '10.9.9.9');
const aFromZk = desired('a', '10.0.0.1', 'zk');

describe('the diff (plan.ts), one row per case', () => {
  const rows: Row[] = [
    {
      name: 'nothing observed: create',
      input: { desired: [a, b], observed: [] },
      expected: { [a.name]: ['create', /publishes a\./], [b.name]: ['create', /publishes b\./] },
    },
    {
      name: 'same hash: unchanged',
      input: { desired: [a], observed: [observedOf(a)] },
      expected: { [a.name]: ['unchanged'] },
    },
    {
      name: 'other hash: update',
      input: { desired: [aChanged], observed: [observedOf(a)] },
      expected: { [a.name]: ['update', /service a of source test changed/] },
    },
    {
      name: 'the publishing sources changed: update saying which',
      input: { desired: [withSources(a, 'test')], observed: [observedOf(a, { sources: 'test,zk' })] },
      expected: { [a.name]: ['update', /sources publishing .* changed: test,zk → test/] },
    },
    {
      name: 'owned, its service no longer listed: delete',
      input: { desired: [], observed: [observedOf(a)] },
      expected: { [a.name]: ['delete', /no longer listed by source "test"/] },
    },
    {
      name: 'owned, its service listed with no usable instance: delete',
      input: {
        desired: [],
        observed: [observedOf(a)],
        present: new Set([serviceKeyString(a.key)]),
        empty: [{ namespace: a.namespace, name: a.name, service: serviceKeyString(a.key), reason: 'all unhealthy' }],
      },
      expected: { [a.name]: ['delete', /no usable instance \(all unhealthy\)/] },
    },
    {
      name: 'name taken by an object registry-bridge does not own: conflict',
      input: {
        desired: [a],
        observed: [{ namespace: a.namespace, name: a.name, hosts: [a.host], owned: false }],
      },
      expected: { [a.name]: ['conflict', /not managed by registry-bridge/] },
    },
    {
      name: 'host served by a foreign object in another namespace: conflict',
      input: { desired: [a], observed: [{ namespace: 'other', name: 'hand-made', hosts: [a.host], owned: false }] },
      expected: { [a.name]: ['conflict', /already served by ServiceEntry other\/hand-made/] },
    },
    {
      name: "host served in another namespace by another bridge's object (source not configured here): conflict",
      input: {
        desired: [a],
        observed: [{ namespace: 'other', name: 'x', hosts: [a.host], owned: true, source: 'elsewhere' }],
      },
      expected: {
        [a.name]: ['conflict', /source "elsewhere", which this bridge does not configure/],
        x: ['keep', /not configured; orphaned objects are left for a human/],
      },
    },
    {
      name: 'owned by another configured source: hand-over update, never a conflict',
      input: { desired: [aFromZk], observed: [observedOf(a)] },
      expected: { [a.name]: ['update', /hand-over: source "zk" publishes .* now, not "test"/] },
    },
    {
      name: 'foreign objects not desired are not ours to delete',
      input: { desired: [], observed: [{ namespace: 'x', name: 'y', hosts: ['y.example.com'], owned: false }] },
      expected: {},
    },
    {
      name: 'created early in this run with the desired content: a create already applied',
      input: { desired: [a], observed: [observedOf(a, { early: true })] },
      expected: { [a.name]: ['create', /created while the registries were read/] },
    },
    {
      name: 'created early in this run, then not desired: delete',
      input: { desired: [], observed: [observedOf(a, { early: true })] },
      expected: { [a.name]: ['delete'] },
    },
    {
      name: 'an object whose host moved to another object of ours: delete, naming the successor',
      input: {
        desired: [desired('a2', '10.0.0.1', 'test', a.host)],
        observed: [observedOf(a, { name: 'old-name' })],
      },
      expected: { 'old-name': ['delete', /its host moved to mesh\//], [a.name]: ['create'] },
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe('the policy filters (policy.ts), one row per case', () => {
  const rows: Row[] = [
    {
      name: 'fence: the source read failed, its objects are not deleted',
      input: { desired: [], observed: [observedOf(a)], sourceHealthy: new Map([['test', false]]) },
      expected: { [a.name]: ['keep', /could not be read this run/] },
    },
    {
      name: 'fence: no hand-over away from a source whose read failed',
      input: {
        desired: [aFromZk],
        observed: [observedOf(a)],
        sourceHealthy: new Map([
          ['test', false],
          ['zk', true],
        ]),
      },
      expected: { [a.name]: ['keep', /neither deleted nor handed over/] },
    },
    {
      name: 'fence: source no longer configured, orphan left for a human',
      input: { desired: [], observed: [observedOf(a)], sourceHealthy: new Map() },
      expected: { [a.name]: ['keep', /not configured; orphaned/] },
    },
    {
      name: 'keys scope: never deletes, asks for a full run',
      input: {
        desired: [],
        observed: [observedOf(a)],
        scope: { kind: 'keys', read: new Set([serviceKeyString(a.key)]) },
      },
      expected: { [a.name]: ['keep', /keys-scoped run never deletes/] },
      needsFullRun: true,
    },
    {
      name: 'keys scope: creates and updates go ahead',
      input: { desired: [aChanged, b], observed: [observedOf(a)], scope: { kind: 'keys', read: new Set() } },
      expected: { [a.name]: ['update'], [b.name]: ['create'] },
      needsFullRun: false,
    },
    {
      name: 'protected object (an invalid service keeps its last good object)',
      input: {
        desired: [],
        observed: [observedOf(a)],
        protectedObjects: [{ namespace: a.namespace, name: a.name, reason: 'the service is invalid now' }],
      },
      expected: { [a.name]: ['keep', /invalid now/] },
    },
    {
      name: 'ownership: an object of a source this bridge does not configure is not taken',
      input: { desired: [a], observed: [observedOf(a, { source: 'elsewhere' })] },
      expected: { [a.name]: ['conflict', /source "elsewhere", which this bridge does not configure/] },
    },
    {
      name: 'upsert-only: update, never delete',
      input: { desired: [aChanged], observed: [observedOf(a), observedOf(b)], policy: 'upsert-only' },
      expected: { [a.name]: ['update'], [b.name]: ['keep', /policy upsert-only never deletes/] },
    },
    {
      name: 'create-only: never update or delete',
      input: { desired: [aChanged], observed: [observedOf(a), observedOf(b)], policy: 'create-only' },
      expected: { [a.name]: ['keep', /create-only never updates/], [b.name]: ['keep', /create-only never deletes/] },
    },
    {
      name: 'upsert-only: an early object the plan does not want is kept too',
      input: { desired: [], observed: [observedOf(a, { early: true })], policy: 'upsert-only' },
      expected: { [a.name]: ['keep', /never deletes/] },
    },
    {
      name: 'deletion cap: first N deleted, rest kept',
      input: { desired: [], observed: [observedOf(a), observedOf(b)], maxDeletes: 1 },
      expected: { [a.name]: ['delete'], [b.name]: ['keep', /deletion cap of 1 per run reached \(2 planned\)/] },
    },
    {
      name: 'application-level settle: a new entry of an application at application level only, seen so for less than the settle, is not created',
      input: {
        desired: [a, b],
        observed: [],
        applicationSettle: { now: 10_000, settleMs: 5000, unmappedSince: new Map([[serviceKeyString(a.key), 7000]]) },
      },
      expected: {
        [a.name]: ['keep', /application level only, seen so for 3000 ms: a new entry of its own waits 5000 ms/],
        [b.name]: ['create'],
      },
    },
    {
      name: 'application-level settle: created once seen so for the settle; an existing one is updated at once',
      input: {
        desired: [aChanged, b],
        observed: [observedOf(a)],
        applicationSettle: {
          now: 10_000,
          settleMs: 5000,
          unmappedSince: new Map([
            [serviceKeyString(a.key), 9000],
            [serviceKeyString(b.key), 5000],
          ]),
        },
      },
      expected: { [a.name]: ['update'], [b.name]: ['create'] },
    },
    {
      name: 'application-level settle 0 (off): created at once',
      input: {
        desired: [a],
        observed: [],
        applicationSettle: { now: 10_000, settleMs: 0, unmappedSince: new Map([[serviceKeyString(a.key), 10_000]]) },
      },
      expected: { [a.name]: ['create'] },
    },
    {
      name: 'deletion cap counts early objects too',
      input: { desired: [], observed: [observedOf(a, { early: true }), observedOf(b)], maxDeletes: 0 },
      expected: { [a.name]: ['keep', /deletion cap/], [b.name]: ['keep', /deletion cap/] },
    },
  ];
  for (const row of rows) it(row.name, () => check(row));

  it('apply in the documented order', () => {
    expect(PLAN_FILTERS.map((f) => f.name)).toEqual([
      'application-level settle',
      'fence sources whose read failed',
      'keys-scoped runs leave deletions to a full run',
      'protected objects',
      'ownership hand-over',
      'policy mode',
      'sharp-shrink hold',
      'deletion cap',
    ]);
  });
});

describe('the sharp-shrink hold (policy.ts shrinkHold), one row per case', () => {
  // Five entries of source "test", one of source "zk".
  const services = ['s1', 's2', 's3', 's4', 's5'];
  const t = services.map((n) => desired(n));
  const z1 = desired('z1', '10.0.0.9', 'zk');
  const all = [...t.map((d) => observedOf(d)), observedOf(z1)];
  const NOW = 1_000_000;
  const once: ShrinkSettings = { percent: 50, minEntries: 3, confirm: { kind: 'once' } };
  const windowed = (sinceAgoMs?: number): ShrinkSettings => ({
    percent: 50,
    minEntries: 3,
    confirm: {
      kind: 'window',
      ms: 120_000,
      since: new Map(sinceAgoMs === undefined ? [] : [['test', NOW - sinceAgoMs]]),
      now: NOW,
    },
  });
  const listed = (test: number, zk = 1) =>
    new Map([
      ['test', test],
      ['zk', zk],
    ]);
  const names = (ds: readonly DesiredEntry[], action: Action, re?: RegExp) =>
    Object.fromEntries(ds.map((d) => [d.name, re ? ([action, re] as [Action, RegExp]) : ([action] as [Action])]));

  const rows: Row[] = [
    {
      name: 'no hold configured (--allow-shrink, enabled: false): an emptied source loses every entry',
      input: { desired: [z1], observed: all, listed: listed(0) },
      expected: { ...names(t, 'delete', /no longer listed/), [z1.name]: ['unchanged'] },
    },
    {
      name: 'the source lists no service while it owns entries (sync --once): every deletion held, exit 4 and --allow-shrink named',
      input: { desired: [z1], observed: all, listed: listed(0), shrink: once },
      expected: {
        ...names(
          t,
          'keep',
          /no longer listed by source "test"; held: source "test" would lose 5 of its 5 entries in one run \(it lists 0 services\), a sharp shrink \(policy\.shrinkHold\): sync --once keeps them and exits 4; run it with --allow-shrink/,
        ),
        [z1.name]: ['unchanged'],
      },
      shrinks: { test: { deleting: 5, held: true } },
    },
    {
      name: 'lists no service, one entry owned: held even below minEntries',
      input: { desired: [], observed: [observedOf(t[0]!)], listed: new Map([['test', 0]]), shrink: once },
      expected: { [t[0]!.name]: ['keep', /would lose 1 of its 1 entries/] },
      shrinks: { test: { deleting: 1, held: true } },
    },
    {
      name: 'more than percent and at least minEntries (services listed empty): held, continuous mode says when it is confirmed',
      input: {
        desired: [t[4]!, z1],
        observed: all,
        listed: listed(5),
        present: new Set(t.map((d) => serviceKeyString(d.key))),
        empty: t.slice(0, 4).map((d) => ({
          namespace: d.namespace,
          name: d.name,
          service: serviceKeyString(d.key),
          reason: 'no instances',
        })),
        shrink: windowed(),
      },
      expected: {
        ...names(
          t.slice(0, 4),
          'keep',
          /no usable instance \(no instances\); held: source "test" would lose 4 of its 5 entries in one run \(it lists 5 services\).*deleted only if it persists for 2m \(confirmFor; seen for 0 so far\), kept if the services come back/,
        ),
        [t[4]!.name]: ['unchanged'],
        [z1.name]: ['unchanged'],
      },
      shrinks: { test: { deleting: 4, held: true } },
    },
    {
      name: 'at most percent: an ordinary run, deleted',
      input: { desired: [...t.slice(2), z1], observed: all, listed: listed(3), shrink: once },
      expected: { ...names(t.slice(0, 2), 'delete'), ...names(t.slice(2), 'unchanged'), [z1.name]: ['unchanged'] },
    },
    {
      name: 'fewer than minEntries: an ordinary run, deleted',
      input: {
        desired: [],
        observed: t.slice(0, 2).map((d) => observedOf(d)),
        listed: new Map([['test', 1]]),
        shrink: once,
      },
      expected: names(t.slice(0, 2), 'delete'),
    },
    {
      name: 'continuous mode, the shrink seen for less than confirmFor: still held',
      input: { desired: [z1], observed: all, listed: listed(0), shrink: windowed(60_000) },
      expected: { ...names(t, 'keep', /persists for 2m \(confirmFor; seen for 1m so far\)/), [z1.name]: ['unchanged'] },
      shrinks: { test: { deleting: 5, held: true } },
    },
    {
      name: 'continuous mode, a hold already running: goes on while any entry would still go, even one of five',
      input: {
        desired: [...t.slice(1), z1],
        observed: all,
        listed: listed(4),
        shrink: windowed(30_000),
      },
      expected: {
        [t[0]!.name]: ['keep', /would lose 1 of its 5 entries in one run.*seen for 30s so far/],
        ...names(t.slice(1), 'unchanged'),
        [z1.name]: ['unchanged'],
      },
      shrinks: { test: { deleting: 1, held: true } },
    },
    {
      name: 'continuous mode, no hold running: one of five is an ordinary deletion',
      input: { desired: [...t.slice(1), z1], observed: all, listed: listed(4), shrink: windowed() },
      expected: { [t[0]!.name]: ['delete'], ...names(t.slice(1), 'unchanged'), [z1.name]: ['unchanged'] },
    },
    {
      name: 'continuous mode, the shrink persisted for confirmFor: the deletions go through',
      input: { desired: [z1], observed: all, listed: listed(0), shrink: windowed(120_000) },
      expected: {
        ...names(t, 'delete', /^service .* is no longer listed by source "test"$/),
        [z1.name]: ['unchanged'],
      },
      shrinks: { test: { deleting: 5, held: false } },
    },
    {
      name: 'confirmed, then the deletion cap still applies',
      input: { desired: [z1], observed: all, listed: listed(0), shrink: windowed(120_000), maxDeletes: 2 },
      expected: {
        [t[0]!.name]: ['delete'],
        [t[1]!.name]: ['delete'],
        ...names(t.slice(2), 'keep', /deletion cap of 2 per run reached \(5 planned\)/),
        [z1.name]: ['unchanged'],
      },
      shrinks: { test: { deleting: 5, held: false } },
    },
    {
      name: 'another source publishes the hosts (merge): handed over, not held, nothing deleted',
      input: {
        desired: [...services.map((n) => desired(n, '10.0.0.1', 'zk')), z1],
        observed: all,
        listed: listed(0),
        shrink: once,
      },
      expected: { ...names(t, 'update', /hand-over: source "zk"/), [z1.name]: ['unchanged'] },
    },
    {
      name: 'entries moving to other names of services still listed (a host template change): not a shrink',
      input: {
        desired: services.map((n) => desired(n, '10.0.0.1', 'test', `${n}.renamed.example`)),
        observed: t.map((d) => observedOf(d, { name: `old-${d.name}` })),
        listed: new Map([['test', 5]]),
        shrink: once,
      },
      expected: {
        ...Object.fromEntries(t.map((d) => [`old-${d.name}`, ['delete', /publishes another host now/]])),
        ...names(
          services.map((n) => desired(n, '10.0.0.1', 'test', `${n}.renamed.example`)),
          'create',
        ),
      },
    },
    {
      name: 'the source could not be read: fenced, not a shrink',
      input: {
        desired: [z1],
        observed: all,
        sourceHealthy: new Map([
          ['test', false],
          ['zk', true],
        ]),
        shrink: once,
      },
      expected: { ...names(t, 'keep', /could not be read this run/), [z1.name]: ['unchanged'] },
    },
    {
      name: 'upsert-only: the policy keeps them; no shrink to hold',
      input: { desired: [z1], observed: all, listed: listed(0), shrink: once, policy: 'upsert-only' },
      expected: { ...names(t, 'keep', /policy upsert-only never deletes$/), [z1.name]: ['unchanged'] },
    },
    {
      name: "keys-scoped run: never deletes anyway; the hold is a full run's business",
      input: { desired: [], observed: all, shrink: once, scope: { kind: 'keys', read: new Set() } },
      expected: { ...names([...t, z1], 'keep', /keys-scoped run never deletes: a full run decides, now$/) },
      needsFullRun: true,
    },
    {
      name: "one source's shrink holds only that source's deletions",
      input: { desired: t.slice(1), observed: all, listed: listed(4, 0), shrink: once },
      expected: {
        [t[0]!.name]: ['delete'],
        ...names(t.slice(1), 'unchanged'),
        [z1.name]: ['keep', /held: source "zk" would lose 1 of its 1 entries/],
      },
      shrinks: { zk: { deleting: 1, held: true } },
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

function check(row: Row): void {
  const plan = planChanges({ ...base, ...row.input });
  expect(Object.fromEntries(plan.changes.map((c) => [c.name, c.action]))).toEqual(
    Object.fromEntries(Object.entries(row.expected).map(([n, [action]]) => [n, action])),
  );
  for (const c of plan.changes) {
    if (c.action !== 'unchanged') expect(c.reason, `${c.action} ${c.name} has a reason`).toBeTruthy();
    const pattern = row.expected[c.name]?.[1];
    if (pattern) expect(c.reason).toMatch(pattern);
  }
  if (row.needsFullRun !== undefined) expect(plan.needsFullRun).toBe(row.needsFullRun);
  expect(Object.fromEntries(plan.shrinks.map((x) => [x.source, { deleting: x.deleting, held: x.held }]))).toEqual(
    row.shrinks ?? {},
  );
}

describe('planChanges properties', () => {
  it('is idempotent: desired == observed gives zero writes', () => {
    const all = ['a', 'b', 'c', 'd'].map((n) => desired(n));
    const plan = planChanges({ ...base, desired: all, observed: all.map((d) => observedOf(d)) });
    expect(writesOf(plan)).toEqual([]);
    expect(plan.counts.unchanged).toBe(4);
  });

  it('a create applied early is counted, not written again', () => {
    const plan = planChanges({ ...base, desired: [a], observed: [observedOf(a, { early: true })] });
    expect(plan.counts.create).toBe(1);
    expect(writesOf(plan)).toEqual([]);
  });

  it('orders changes by namespace/name whatever the input order', () => {
    const all = ['d', 'a', 'c', 'b'].map((n) => desired(n));
    const plan = planChanges({ ...base, desired: all, observed: [] });
    expect(plan.changes.map((c) => c.name)).toEqual([...plan.changes.map((c) => c.name)].sort());
  });

  it('counts every action', () => {
    const plan = planChanges({
      ...base,
      desired: [a, desired('b')],
      observed: [observedOf(a), observedOf(desired('c'))],
    });
    expect(plan.counts).toEqual({ create: 1, update: 0, delete: 1, unchanged: 1, conflict: 0, keep: 0 });
  });
});
