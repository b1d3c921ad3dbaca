import { describe, expect, it } from 'vitest';
import { planFromSynth, type Action, type ObservedEntry, type PlanScope } from '../../src/plan/plan.js';
import { serviceKeyString, type Instance, type RegistryService } from '../../src/model/service.js';
import { synthAll, type SynthOptions } from '../../src/synth/index.js';
import { inst, options } from './helpers.js';

/**
 * The lifecycle of one ServiceEntry, as docs/lifecycle.md tells it: for every registry state,
 * what the plan does with the object the last state produced. One row per state, run through
 * synthesis and the plan exactly as a reconcile does (planFromSynth).
 */
const key = (source: string) => ({ source, namespace: 'public', group: 'DEFAULT_GROUP', name: 'orders' });
const service = (instances: Instance[], source = 'nacos'): RegistryService => ({
  key: key(source),
  host: 'orders.example.mesh',
  protocol: 'http',
  instances,
});
const live = [inst('10.0.0.1', 8080), inst('10.0.0.2', 8080)];
const synthOptions: SynthOptions = { ...options, namespace: 'mesh' };

/** The object the previous state (both instances live, from `source`) left in kube. */
function previousObject(source = 'nacos'): ObservedEntry {
  const r = synthAll([{ services: [service(live, source)], options: synthOptions }]).desired[0]!;
  return {
    namespace: r.namespace,
    name: r.name,
    hosts: [r.host],
    owned: true,
    source,
    hash: r.hash,
    service: serviceKeyString(r.key),
  };
}

interface Row {
  readonly state: string;
  /** What each source's read returned: services, or `unreachable`. */
  readonly reads: Readonly<Record<string, readonly RegistryService[] | 'unreachable'>>;
  readonly scope?: PlanScope;
  readonly maxDeletes?: number;
  readonly becomes: Action;
  readonly reason?: RegExp;
  /** Endpoint addresses of the entry after an update. */
  readonly endpoints?: readonly string[];
  readonly source?: string;
}

const rows: Row[] = [
  {
    state: 'instances unchanged',
    reads: { nacos: [service(live)] },
    becomes: 'unchanged',
  },
  {
    state: 'an instance goes (deregistered, or removed by the server after its heartbeat stopped)',
    reads: { nacos: [service([inst('10.0.0.1', 8080)])] },
    becomes: 'update',
    endpoints: ['10.0.0.1'],
  },
  {
    state: 'an instance comes',
    reads: { nacos: [service([...live, inst('10.0.0.3', 8080)])] },
    becomes: 'update',
    endpoints: ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
  },
  {
    state: 'one instance turns unhealthy',
    reads: { nacos: [service([inst('10.0.0.1', 8080), inst('10.0.0.2', 8080, { healthy: false })])] },
    becomes: 'update',
    endpoints: ['10.0.0.1'],
  },
  {
    state: 'all instances unhealthy',
    reads: { nacos: [service(live.map((i) => ({ ...i, healthy: false })))] },
    becomes: 'delete',
    reason: /no usable instance \(all unhealthy, disabled, draining/,
  },
  {
    state: 'all instances disabled',
    reads: { nacos: [service(live.map((i) => ({ ...i, enabled: false })))] },
    becomes: 'delete',
    reason: /no usable instance/,
  },
  {
    state: 'all instances at weight 0 (draining)',
    reads: { nacos: [service(live.map((i) => ({ ...i, weight: 0 })))] },
    becomes: 'delete',
    reason: /no usable instance/,
  },
  {
    state: 'service deregistered: listed with no instance',
    reads: { nacos: [service([])] },
    becomes: 'delete',
    reason: /no usable instance \(no instances/,
  },
  {
    state: 'service deleted by the server: no longer listed',
    reads: { nacos: [] },
    becomes: 'delete',
    reason: /no longer listed by source "nacos"/,
  },
  {
    state: 'registry unreachable',
    reads: { nacos: 'unreachable' },
    becomes: 'keep',
    reason: /could not be read this run/,
  },
  {
    state: 'registry restarted empty (lists nothing, answers normally)',
    reads: { nacos: [] },
    becomes: 'delete',
    reason: /no longer listed/,
  },
  {
    state: 'registry restarted empty, deletion cap reached',
    reads: { nacos: [] },
    maxDeletes: 0,
    becomes: 'keep',
    reason: /deletion cap of 0 per run reached/,
  },
  {
    state: 'service gone, read by a keys-scoped run',
    reads: { nacos: [] },
    scope: { kind: 'keys', read: new Set([serviceKeyString(key('nacos'))]) },
    becomes: 'keep',
    reason: /a keys-scoped run never deletes: a full run decides, now/,
  },
  {
    state: 'service gone from its source while another source publishes the host: handed over',
    reads: { nacos: [], zk: [service([inst('10.0.0.7', 8080)], 'zk')] },
    becomes: 'update',
    reason: /hand-over: source "zk" publishes orders.example.mesh now, not "nacos"/,
    endpoints: ['10.0.0.7'],
    source: 'zk',
  },
  {
    state: 'service empty in its source while another source publishes the host: handed over, not deleted',
    reads: { nacos: [service([])], zk: [service([inst('10.0.0.7', 8080)], 'zk')] },
    becomes: 'update',
    reason: /hand-over/,
    endpoints: ['10.0.0.7'],
    source: 'zk',
  },
  {
    state:
      'service gone from its source while the other source cannot be read: deleted (no source publishes it that the run knows of)',
    reads: { nacos: [], zk: 'unreachable' },
    becomes: 'delete',
    reason: /no longer listed/,
  },
];

describe('the lifecycle of a ServiceEntry, one row per registry state', () => {
  for (const row of rows)
    it(row.state, () => {
      const sourceHealthy = new Map(Object.entries(row.reads).map(([s, r]) => [s, r !== 'unreachable']));
      const inputs = Object.entries(row.reads).flatMap(([, r]) =>
        r === 'unreachable' ? [] : [{ services: r, options: synthOptions }],
      );
      const observed = [previousObject()];
      const synth = synthAll(inputs, new Map([[observed[0]!.hosts[0]!, observed[0]!.service!]]));
      const plan = planFromSynth({
        synth,
        observed,
        sourceHealthy,
        policy: 'sync',
        maxDeletes: row.maxDeletes ?? 100,
        scope: row.scope ?? { kind: 'full' },
      });
      expect(plan.changes.map((c) => c.action)).toEqual([row.becomes]);
      const change = plan.changes[0]!;
      if (row.reason) expect(change.reason).toMatch(row.reason);
      if (row.endpoints) expect(change.desired?.object.spec.endpoints?.map((e) => e.address)).toEqual(row.endpoints);
      if (row.source) expect(change.desired?.object.metadata.labels['registry-bridge.io/source']).toBe(row.source);
    });
});
