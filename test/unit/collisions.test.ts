import { describe, expect, it } from 'vitest';
import { planChanges, type ObservedEntry } from '../../src/plan/plan.js';
import { isTcpLike } from '../../src/plan/collisions.js';
import { synthServiceEntry, type DesiredEntry, type SynthOptions } from '../../src/synth/index.js';
import { inst, options } from './helpers.js';

function entry(name: string, protocol: string, port: number, extra: Partial<SynthOptions> = {}): DesiredEntry {
  const r = synthServiceEntry(
    {
      key: { source: 'test', namespace: 'public', group: 'DEFAULT_GROUP', name },
      host: `${name}.example.mesh`,
      instances: [inst('10.0.0.1', port, { protocol })],
    },
    { ...options, namespace: 'mesh', ...extra },
  );
  if (r.kind !== 'ok') throw new Error(`fixture must synthesize: ${r.kind}`);
  return r.entry;
}

const plan = (desired: DesiredEntry[], observed: ObservedEntry[] = []) =>
  planChanges({ desired, observed, sourceHealthy: new Map([['test', true]]), policy: 'sync', maxDeletes: 100 });

describe('collisions Istio would resolve silently', () => {
  const rows: {
    name: string;
    desired: DesiredEntry[];
    observed?: ObservedEntry[];
    expected: string[];
  }[] = [
    {
      name: 'two TCP entries on one port without addresses: the first by host keeps it',
      desired: [entry('b-greet', 'dubbo', 20880), entry('a-greet', 'dubbo', 20880)],
      expected: ['port 20880: a-greet.example.mesh keeps it, b-greet.example.mesh shadowed'],
    },
    {
      name: 'an unknown protocol is TCP-like',
      desired: [entry('a', 'weird', 7001), entry('b', 'tcp', 7001)],
      expected: ['port 7001: a.example.mesh keeps it, b.example.mesh shadowed'],
    },
    {
      name: 'HTTP on a shared port: virtual hosts tell them apart, no collision',
      desired: [entry('a', 'http', 8080), entry('b', 'http', 8080)],
      expected: [],
    },
    {
      name: 'different ports: no collision',
      desired: [entry('a', 'dubbo', 20880), entry('b', 'dubbo', 20881)],
      expected: [],
    },
    {
      name: 'exported to disjoint namespaces: no sidecar sees both',
      desired: [entry('a', 'dubbo', 20880, { exportTo: ['.'] }), entry('b', 'dubbo', 20880, { exportTo: ['team-b'] })],
      expected: [],
    },
    {
      name: 'one exported everywhere, one to its own namespace: both seen there',
      desired: [entry('a', 'dubbo', 20880), entry('b', 'dubbo', 20880, { exportTo: ['.'] })],
      expected: ['port 20880: a.example.mesh keeps it, b.example.mesh shadowed'],
    },
    {
      name: 'an existing foreign entry in another namespace holds the port: it is older, it keeps it',
      desired: [entry('a', 'dubbo', 20880)],
      observed: [
        {
          namespace: 'legacy',
          name: 'z',
          hosts: ['z.legacy.svc'],
          owned: false,
          ports: [{ number: 20880, protocol: 'TCP' }],
        },
      ],
      expected: ['port 20880: z.legacy.svc keeps it, a.example.mesh shadowed'],
    },
    {
      name: 'a foreign entry with addresses listens on its own address: no collision',
      desired: [entry('a', 'dubbo', 20880)],
      observed: [
        {
          namespace: 'legacy',
          name: 'z',
          hosts: ['z.legacy.svc'],
          owned: false,
          ports: [{ number: 20880, protocol: 'TCP' }],
          addresses: ['240.0.0.1'],
        },
      ],
      expected: [],
    },
    {
      name: 'two foreign entries colliding with each other are not the bridge’s to report',
      desired: [],
      observed: ['x', 'y'].map((n) => ({
        namespace: 'legacy',
        name: n,
        hosts: [`${n}.legacy.svc`],
        owned: false,
        ports: [{ number: 9000, protocol: 'TCP' }],
      })),
      expected: [],
    },
  ];
  for (const row of rows)
    it(row.name, () => {
      const p = plan(row.desired, row.observed);
      expect(
        p.collisions.map((c) =>
          c.kind === 'port'
            ? `port ${c.port}: ${c.entries[0].host} keeps it, ${c.entries[1].host} shadowed`
            : `host ${c.entries[0].host}`,
        ),
      ).toEqual(row.expected);
      for (const c of p.collisions) expect(c.reason).toContain(String(c.port));
    });

  it('names TCP-like protocols as Istio builds them', () => {
    expect(['TCP', 'TLS', 'HTTPS', 'Mongo', 'MySQL', 'Redis', '', undefined].map(isTcpLike)).toEqual(
      Array(8).fill(true),
    );
    expect(['HTTP', 'HTTP2', 'GRPC', 'GRPC-Web', 'UDP'].map(isTcpLike)).toEqual(Array(5).fill(false));
  });
});
