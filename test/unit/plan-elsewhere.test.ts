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
});

/** TCP-like ports that entries in namespaces the bridge does not write to serve without addresses (src/plan/collisions.ts). */

const dubbo: DesiredEntry = (() => {
  const r = synthServiceEntry(
    {
      ...svc('greet', [inst('10.0.0.1', 20880, { protocol: 'dubbo' }), inst('10.0.0.1', 50051, { protocol: 'tri' })]),
      key: { source: 'test', namespace: 'public', group: 'g', name: 'greet' },
    },
    options,
  );
  if (r.kind !== 'ok') throw new Error('fixture must synthesize');
  return r.entry;
})();

const dubboOurs = (patch: Partial<ObservedEntry> = {}): ObservedEntry => ({
  namespace: dubbo.namespace,
  name: dubbo.name,
  hosts: [dubbo.host],
  owned: true,
  source: 'test',
  hash: dubbo.hash,
  service: serviceKeyString(dubbo.key),
  created: '2026-01-02T00:00:00Z',
  ...patch,
});

/** Somebody else's TCP entry on 20880 in team-x, older than anything of ours. */
const tcp = (patch: Partial<ObservedEntry> = {}): ObservedEntry => ({
  namespace: 'team-x',
  name: 'legacy',
  hosts: ['legacy.team-x.example'],
  owned: false,
  elsewhere: true,
  ports: [{ number: 20880, protocol: 'TCP' }],
  addresses: [],
  exportTo: [],
  resolution: 'STATIC',
  endpointsOrSelector: true,
  created: '2026-01-01T00:00:00Z',
  ...patch,
});

/** tcp() without endpoints or a workloadSelector. */
const bare = (patch: Partial<ObservedEntry> = {}): ObservedEntry => {
  const { endpointsOrSelector: _, ...rest } = tcp(patch);
  return rest;
};

interface PortRow {
  readonly name: string;
  readonly observed: readonly ObservedEntry[];
  readonly desired?: DesiredEntry;
  readonly action: Action;
  /** The decision's reason, when the plan annotates it. */
  readonly reason?: RegExp;
  /** Each collision as `<kept> > <shadowed>: <reason pattern>`. */
  readonly collisions: readonly [string, RegExp][];
}

const G = `mesh/${dubbo.name}`;
const portRows: PortRow[] = [
  {
    name: 'an older TCP entry elsewhere, exportTo unset, on the same port: it keeps the port; ours is written all the same and reported',
    observed: [tcp()],
    action: 'create',
    reason: /TCP port 20880 is shadowed by legacy.team-x.example \(team-x\/legacy\).*written all the same/,
    collisions: [
      [
        `team-x/legacy > ${G}`,
        /TCP port 20880 of .* is shadowed by legacy.team-x.example \(team-x\/legacy\) for sidecars in every namespace that sees both.*the older: created 2026-01-01T00:00:00Z, the other created by this run/,
      ],
    ],
  },
  {
    name: 'exportTo * elsewhere: the same',
    observed: [tcp({ exportTo: ['*'] })],
    action: 'create',
    collisions: [[`team-x/legacy > ${G}`, /every namespace that sees both/]],
  },
  {
    name: 'an unset or unknown protocol elsewhere is TCP-like',
    observed: [tcp({ ports: [{ number: 20880 }, { number: 7001, protocol: 'thrift' }] })],
    action: 'create',
    collisions: [[`team-x/legacy > ${G}`, /0\.0\.0\.0:20880/]],
  },
  {
    name: 'exportTo . elsewhere: sidecars in team-x see both, and there the private entry comes first',
    observed: [tcp({ exportTo: ['.'] })],
    action: 'create',
    collisions: [[`team-x/legacy > ${G}`, /for sidecars in namespace team-x: .*private to team-x/]],
  },
  {
    name: 'exported by name to a third namespace: there it comes before public entries, even a younger one',
    observed: [tcp({ exportTo: ['team-y'], created: '2026-06-01T00:00:00Z' })],
    action: 'create',
    collisions: [[`team-x/legacy > ${G}`, /for sidecars in namespace team-y: .*exported to team-y by name/]],
  },
  {
    name: 'exportTo ~ elsewhere: seen nowhere',
    observed: [tcp({ exportTo: ['~'] })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'addresses elsewhere: its own listener, no collision',
    observed: [tcp({ addresses: ['240.0.0.9'] })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'HTTP elsewhere on the port: virtual hosts, no collision',
    observed: [tcp({ ports: [{ number: 20880, protocol: 'HTTP' }] })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'TLS elsewhere on the port: matched by SNI, no collision',
    observed: [tcp({ ports: [{ number: 20880, protocol: 'TLS' }] })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'the other port of ours (gRPC 50051) is never TCP-like: a TCP entry elsewhere on 50051 takes nothing',
    observed: [tcp({ ports: [{ number: 50051, protocol: 'TCP' }] })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'resolution NONE with endpoints elsewhere: a listener per endpoint, no collision',
    observed: [tcp({ resolution: 'NONE' })],
    action: 'create',
    collisions: [],
  },
  {
    name: 'resolution NONE without endpoints or selector elsewhere: 0.0.0.0, collision',
    observed: [bare({ resolution: 'NONE' })],
    action: 'create',
    collisions: [[`team-x/legacy > ${G}`, /20880/]],
  },
  {
    name: 'resolution DNS elsewhere: 0.0.0.0 like STATIC, collision',
    observed: [tcp({ resolution: 'DNS' })],
    action: 'create',
    collisions: [[`team-x/legacy > ${G}`, /20880/]],
  },
  {
    name: 'our entry exists and is older: ours keeps the port, reported, unchanged',
    observed: [dubboOurs({ created: '2025-12-31T00:00:00Z' }), tcp()],
    action: 'unchanged',
    collisions: [
      [`${G} > team-x/legacy`, /shadowed by greet.g.public.nacos .*the older: created 2025-12-31T00:00:00Z/],
    ],
  },
  {
    name: 'our entry exists and is younger: theirs keeps it, ours kept and reported',
    observed: [dubboOurs(), tcp()],
    action: 'unchanged',
    collisions: [
      [`team-x/legacy > ${G}`, /the older: created 2026-01-01T00:00:00Z, the other created 2026-01-02T00:00:00Z/],
    ],
  },
  {
    name: 'same creation second: the first host name keeps it',
    observed: [dubboOurs({ created: '2026-01-01T00:00:00Z' }), tcp({ hosts: ['zz.team-x.example'] })],
    action: 'unchanged',
    collisions: [[`${G} > team-x/legacy`, /same creation time, first by host name/]],
  },
  {
    name: 'ours exported to its own namespace only: there it comes first, and a new one takes the port from the older entry',
    desired: { ...dubbo, object: { ...dubbo.object, spec: { ...dubbo.object.spec, exportTo: ['.'] } } },
    observed: [tcp()],
    action: 'create',
    reason: /it takes TCP port 20880 from legacy.team-x.example \(team-x\/legacy\).*written all the same/,
    collisions: [[`${G} > team-x/legacy`, /for sidecars in namespace mesh: .*private to mesh/]],
  },
  {
    name: 'the same host elsewhere on the same port: the host rule only (withheld), no port collision',
    observed: [tcp({ hosts: [dubbo.host] })],
    action: 'conflict',
    collisions: [[`team-x/legacy > ${G}`, /is not written: Istio keeps the oldest/]],
  },
  {
    name: 'two entries elsewhere on the port: the older keeps it over ours; theirs with each other are not reported',
    observed: [tcp({ name: 'young', hosts: ['a-young.team-x.example'], created: '2026-03-01T00:00:00Z' }), tcp()],
    action: 'create',
    collisions: [[`team-x/legacy > ${G}`, /20880/]],
  },
];

describe('TCP ports served without addresses by entries elsewhere (plan/collisions.ts), one row per case', () => {
  for (const row of portRows)
    it(row.name, () => {
      const d = row.desired ?? dubbo;
      const plan = planChanges({
        desired: [d],
        observed: row.observed,
        sourceHealthy: new Map([['test', true]]),
        policy: 'sync',
        maxDeletes: 100,
      });
      const change = plan.changes.find((c) => c.name === d.name && c.namespace === d.namespace);
      expect(change?.action).toBe(row.action);
      if (row.reason) expect(change?.reason).toMatch(row.reason);
      else if (row.collisions.length === 0) expect(change?.reason ?? '').not.toMatch(/TCP port/);
      expect(
        plan.collisions.map(
          (c) => `${c.entries[0].namespace}/${c.entries[0].name} > ${c.entries[1].namespace}/${c.entries[1].name}`,
        ),
      ).toEqual(row.collisions.map(([pair]) => pair));
      plan.collisions.forEach((c, i) => expect(c.reason).toMatch(row.collisions[i]![1]));
      expect(plan.changes.filter((c) => c.namespace === 'team-x')).toEqual([]);
    });
});
