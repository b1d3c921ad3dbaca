/**
 * Property-based tests (fast-check, fixed seeds) of the Nacos payload parsers: whatever the
 * server answers, nothing throws; a host that cannot be used is dropped, counted and named by
 * its position (and address when it has one), and the valid rest goes on.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseInstanceList, parseServiceListPage, stripGroupPrefix } from '../../adapters/nacos/parse.js';

// Fixed runs and seed: deterministic in CI. FUZZ_RUNS / FUZZ_SEED explore further by hand.
const runs = { numRuns: Number(process.env.FUZZ_RUNS ?? 300), seed: Number(process.env.FUZZ_SEED ?? 2122) };
const ref = 'public/DEFAULT_GROUP/orders';

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((p) => p.join('.'));
const metadata = fc.dictionary(
  fc.string({ maxLength: 10 }),
  fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant(null)),
  { maxKeys: 5 },
);

/** A host as Nacos 1.x–3.x serve it. */
const goodHost = fc.record(
  {
    ip: ipv4,
    port: fc.integer({ min: 1, max: 65535 }),
    weight: fc.double({ min: 0, max: 100, noNaN: true }),
    healthy: fc.boolean(),
    valid: fc.boolean(),
    enabled: fc.boolean(),
    ephemeral: fc.boolean(),
    clusterName: fc.string({ maxLength: 8 }),
    metadata: fc.option(metadata, { nil: null }),
    instanceId: fc.string({ maxLength: 20 }),
  },
  { requiredKeys: ['ip', 'port'] },
);

/** A host no client could call: each is certainly dropped. */
const badHost: fc.Arbitrary<unknown> = fc.oneof(
  goodHost.map(({ ip: _ip, ...rest }) => rest),
  goodHost.map((h) => ({ ...h, ip: '' })),
  goodHost.map(({ port: _port, ...rest }) => rest),
  fc
    .tuple(
      goodHost,
      fc.oneof(
        fc.integer({ max: 0 }),
        fc.integer({ min: 65536 }),
        fc.constant('eighty'),
        fc.constant(null),
        fc.constant(true),
      ),
    )
    .map(([h, port]) => ({ ...h, port })),
  goodHost.map((h) => ({ ...h, weight: -1 })),
  goodHost.map((h) => ({ ...h, healthy: 'yes' })),
  goodHost.map((h) => ({ ...h, metadata: { k: { nested: true } } })),
  fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.nat(), { maxLength: 2 })),
);

describe('fuzz: Nacos instance list', () => {
  it('never throws on any JSON value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ hosts: fc.jsonValue() }), fc.anything()), (raw) => {
        const r = parseInstanceList(raw, ref);
        if (r instanceof Error) {
          expect(r.message).toMatch(/^instance list is not an object/);
          return;
        }
        expect(r.rejected.length).toBeLessThanOrEqual(r.hostCount);
        for (const i of r.instances) expect(i.port >= 1 && i.port <= 65535 && Number.isInteger(i.port)).toBe(true);
      }),
      runs,
    );
  });

  it('good and bad hosts: every bad one dropped and named by its index, every good one kept as served', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            goodHost.map((good) => ({ good })),
            badHost.map((bad) => ({ bad })),
          ),
          { maxLength: 15 },
        ),
        (mixed) => {
          const hosts = mixed.map((m) => ('good' in m ? m.good : m.bad));
          const r = parseInstanceList({ hosts, checksum: 'x' }, ref);
          if (r instanceof Error) throw r;
          expect(r.hostCount).toBe(hosts.length);
          const badIndexes = mixed.flatMap((m, i) => ('bad' in m ? [i] : []));
          expect(r.rejected).toHaveLength(badIndexes.length);
          r.rejected.forEach((rej, k) => {
            expect(rej.ref.startsWith(`${ref} hosts[${badIndexes[k]}]`)).toBe(true);
            expect(rej.reason.length).toBeGreaterThan(0);
          });
          for (const m of mixed) {
            if (!('good' in m)) continue;
            const h = m.good;
            const found = r.instances.find((i) => i.address === h.ip && i.port === h.port);
            expect(found, `${h.ip}:${h.port}`).toBeDefined();
            expect(found!.weight).toBe(h.weight ?? 1);
            expect(found!.enabled).toBe(h.enabled ?? true);
            expect(found!.healthy).toBe(h.healthy ?? h.valid ?? true);
          }
        },
      ),
      runs,
    );
  });
});

describe('fuzz: Nacos service list page and names', () => {
  it('never throws; a page is {count, names} or an Error', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue(), fc.record({ count: fc.jsonValue(), doms: fc.jsonValue() }), fc.anything()),
        (raw) => {
          const r = parseServiceListPage(raw);
          if (r instanceof Error) {
            expect(r.message).toMatch(/^service list is not/);
            return;
          }
          expect(Number.isInteger(r.count) && r.count >= 0).toBe(true);
          for (const n of r.names) expect(typeof n).toBe('string');
        },
      ),
      runs,
    );
  });

  it('stripGroupPrefix keeps what follows the group and @@', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (group, name) => {
        fc.pre(!group.includes('@'));
        expect(stripGroupPrefix(`${group}@@${name}`)).toBe(name);
      }),
      runs,
    );
  });
});
