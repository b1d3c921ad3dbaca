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
      name: 'one exported everywhere, one to its own namespace: in that namespace the private one comes first',
      desired: [entry('a', 'dubbo', 20880), entry('b', 'dubbo', 20880, { exportTo: ['.'] })],
      expected: ['port 20880: b.example.mesh keeps it, a.example.mesh shadowed'],
    },
    {
      name: 'HTTPS and TLS without addresses match the SNI of their host: no collision',
      desired: [entry('a', 'https', 8443), entry('b', 'https', 8443), entry('c', 'tls', 8443)],
      expected: [],
    },
    {
      name: 'Mongo, MySQL and Redis are TCP-like',
      desired: [entry('a', 'mongo', 27017), entry('b', 'redis', 27017), entry('c', 'mysql', 27017)],
      expected: [
        'port 27017: a.example.mesh keeps it, b.example.mesh shadowed',
        'port 27017: a.example.mesh keeps it, c.example.mesh shadowed',
      ],
    },
    {
      name: 'an existing entry of ours is older than one this run creates, whatever their hosts',
      desired: [entry('a', 'dubbo', 20880), entry('b', 'dubbo', 20880)],
      observed: [
        {
          namespace: 'mesh',
          name: 'b.example.mesh',
          hosts: ['b.example.mesh'],
          owned: true,
          source: 'test',
          hash: entry('b', 'dubbo', 20880).hash,
          created: '2026-01-01T00:00:00Z',
        },
      ],
      expected: ['port 20880: b.example.mesh keeps it, a.example.mesh shadowed'],
    },
    {
      name: 'a foreign entry with resolution NONE and endpoints listens per endpoint: no collision',
      desired: [entry('a', 'dubbo', 20880)],
      observed: [
        {
          namespace: 'legacy',
          name: 'z',
          hosts: ['z.legacy.svc'],
          owned: false,
          ports: [{ number: 20880, protocol: 'TCP' }],
          resolution: 'NONE',
          endpointsOrSelector: true,
        },
      ],
      expected: [],
    },
    {
      name: 'a foreign entry with resolution NONE and no endpoints falls back to 0.0.0.0: collision',
      desired: [entry('a', 'dubbo', 20880)],
      observed: [
        {
          namespace: 'legacy',
          name: 'z',
          hosts: ['z.legacy.svc'],
          owned: false,
          ports: [{ number: 20880, protocol: 'TCP' }],
          resolution: 'NONE',
        },
      ],
      expected: ['port 20880: z.legacy.svc keeps it, a.example.mesh shadowed'],
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
    expect(['TCP', 'tcp', 'Mongo', 'MySQL', 'Redis', 'dubbo', '', undefined].map(isTcpLike)).toEqual(
      Array(8).fill(true),
    );
    expect(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-Web', 'UDP', 'HTTPS', 'TLS'].map(isTcpLike)).toEqual(
      Array(8).fill(false),
    );
  });

  it("a written entry's reason says which port it loses or takes, naming at most three others", () => {
    const fleet = ['a', 'b', 'c', 'd', 'e'].map((n) => entry(n, 'dubbo', 20880));
    const p = plan(fleet);
    const reason = (name: string) => p.changes.find((c) => c.host === `${name}.example.mesh`)?.reason ?? '';
    expect(reason('a')).toMatch(
      /; it takes TCP port 20880 from b\.example\.mesh \(mesh\/b\.example\.mesh\), c\.example\.mesh \(mesh\/c\.example\.mesh\), d\.example\.mesh \(mesh\/d\.example\.mesh\) and 1 more for sidecars that see both: written all the same/,
    );
    expect(reason('e')).toMatch(
      /; TCP port 20880 is shadowed by a\.example\.mesh \(mesh\/a\.example\.mesh\) for sidecars that see both: written all the same/,
    );
    expect(p.changes.map((c) => c.action)).toEqual(Array(5).fill('create'));
  });
});
