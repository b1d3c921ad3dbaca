/**
 * Property-based tests (fast-check, fixed seeds) of what the ZooKeeper source reads: Dubbo
 * provider URLs (znode names), configurator URLs and Curator ServiceInstance JSON. Whatever the
 * registry holds, nothing throws; a provider or instance that cannot be used is dropped, counted
 * and named by its znode path, and the good ones beside it go on.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDubboUrl, parseEncodedDubboUrl } from '../../adapters/dubbo/url.js';
import {
  curatorInstanceOf,
  curatorServiceOf,
  dubboServicesOf,
  refOf,
  type CuratorInstanceRead,
} from '../../adapters/zookeeper/layouts.js';
import type { RejectedEntry } from '../../src/model/service.js';

// Fixed runs and seed: deterministic in CI. FUZZ_RUNS / FUZZ_SEED explore further by hand.
const runs = { numRuns: Number(process.env.FUZZ_RUNS ?? 300), seed: Number(process.env.FUZZ_SEED ?? 2121) };
const layout = { maxDataBytes: 4096 };

/** Strings likely to break a URL parser: delimiters, percent signs, unicode, control characters. */
const urlish = fc.oneof(
  fc.string({ unit: fc.constantFrom(...':/?&=@[]%+#.-_ aZ09\u0000\u00e9\ud83d'.split('')), maxLength: 60 }),
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((p) => p.join('.'));
const iface = fc
  .array(fc.stringMatching(/^[a-z][a-zA-Z0-9]{0,8}$/), { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join('.'));
const paramValue = fc.string({ unit: fc.constantFrom(...'abc012 ,=&%/:+.é'.split('')), maxLength: 12 });

/** A provider URL Dubbo itself would write: toFullString, then URL.encode (java.net.URLEncoder). */
const goodProvider = fc
  .record({
    host: ipv4,
    port: fc.integer({ min: 1, max: 65535 }),
    iface,
    version: fc.stringMatching(/^[0-9]\.[0-9]$/),
    extra: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), paramValue, { maxKeys: 4 }),
  })
  .map(({ host, port, iface, version, extra }) => {
    // Values holding & or = are encoded by their writer before toFullString (see url.ts).
    const params = { ...extra, interface: iface, version, side: 'provider' };
    const query = Object.entries(params)
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
      .join('&');
    const full = `dubbo://${host}:${port}/${iface}?${query}`;
    return { name: encodeURIComponent(full).replace(/%20/g, '+'), host, port, iface, version, extra };
  });

describe('fuzz: Dubbo URL parser', () => {
  it('never throws: any string is a DubboUrl or an Error', () => {
    fc.assert(
      fc.property(urlish, (text) => {
        for (const parse of [parseDubboUrl, parseEncodedDubboUrl]) {
          const r = parse(text);
          if (r instanceof Error) {
            expect(r.message.length).toBeGreaterThan(0);
            continue;
          }
          expect(r.port).toBeGreaterThanOrEqual(0);
          expect(r.port).toBeLessThanOrEqual(65535);
          expect(typeof r.host).toBe('string');
          for (const v of Object.values(r.params)) expect(typeof v).toBe('string');
        }
      }),
      runs,
    );
  });

  it('reads back what Dubbo writes: host, port, interface, every parameter value', () => {
    fc.assert(
      fc.property(goodProvider, (p) => {
        const url = parseEncodedDubboUrl(p.name);
        if (url instanceof Error) throw url;
        expect(url).toMatchObject({ protocol: 'dubbo', host: p.host, port: p.port, path: p.iface });
        expect(url.params.interface).toBe(p.iface);
        expect(url.params.version).toBe(p.version);
        for (const [k, v] of Object.entries(p.extra))
          if (!['interface', 'version', 'side'].includes(k)) expect(url.params[k]).toBe(v);
      }),
      runs,
    );
  });
});

describe('fuzz: the Dubbo interface layout', () => {
  it('a provider list of good URLs and garbage: every garbage name is rejected and named, every good one kept', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            goodProvider.map((g) => ({ good: g })),
            urlish.map((bad) => ({ bad })),
          ),
          { maxLength: 12 },
        ),
        fc.array(urlish, { maxLength: 3 }),
        (mixed, configurators) => {
          const providers = mixed.map((m) => ('good' in m ? m.good.name : m.bad));
          const dir = { name: 'com.example.Api', path: '/dubbo/com.example.Api', providers, configurators };
          const rejected: RejectedEntry[] = [];
          const services = dubboServicesOf(dir, 'zk', 'dubbo', rejected);
          const instances = services.flatMap((s) => s.instances);
          const refs = new Set(rejected.map((r) => r.ref));
          for (const m of mixed) {
            if ('good' in m) {
              // A configurator may disable it or change its weight, never drop it.
              expect(refs.has(refOf(`${dir.path}/providers/${m.good.name}`))).toBe(false);
              expect(instances.some((i) => i.address === m.good.host && i.port === m.good.port)).toBe(true);
            }
          }
          // Every provider is accounted for: kept (an instance) or rejected with its path named.
          for (const name of providers) {
            const ref = refOf(`${dir.path}/providers/${name}`);
            const parsed = parseEncodedDubboUrl(name);
            const kept =
              !(parsed instanceof Error) &&
              instances.some((i) => i.port === parsed.port && (i.address === parsed.host || parsed.host === ''));
            expect(kept || refs.has(ref), `provider ${JSON.stringify(name)} neither kept nor rejected`).toBe(true);
          }
          for (const r of rejected) {
            expect(r.ref.startsWith(`${dir.path}/`)).toBe(true);
            expect(r.reason.length).toBeGreaterThan(0);
          }
        },
      ),
      runs,
    );
  });
});

/** Curator ServiceInstance JSON, well-formed or not. */
const curatorGood = fc
  .record({
    address: ipv4,
    port: fc.integer({ min: 1, max: 65535 }),
    metadata: fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()),
    ),
  })
  .map(({ address, port, metadata }) => ({
    address,
    port,
    json: { name: 'svc', id: 'x', address, port, payload: { '@class': 'org.example.Meta', metadata } },
  }));

const curatorData = fc.oneof(
  curatorGood.map((g) => Buffer.from(JSON.stringify(g.json))),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v))),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fc.string({ maxLength: 64 }).map((s) => Buffer.from(s)),
  // Curator-shaped with fields of the wrong type or range, and a dubbo.endpoints of anything.
  fc
    .record({
      address: fc.oneof(ipv4, fc.constant(''), fc.integer() as fc.Arbitrary<unknown>),
      port: fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.constant(null), fc.string() as fc.Arbitrary<unknown>),
      sslPort: fc.option(fc.integer({ min: -5, max: 70000 })),
      enabled: fc.option(fc.oneof(fc.boolean(), fc.string() as fc.Arbitrary<unknown>)),
      payload: fc.option(
        fc.record({
          '@class': fc.option(fc.string({ maxLength: 30 })),
          metadata: fc.option(
            fc.dictionary(
              fc.constantFrom('dubbo.endpoints', 'instance_status', 'instance-status', 'timestamp', 'k'),
              fc.oneof(
                fc.string({ maxLength: 40 }),
                fc.jsonValue().map((v) => JSON.stringify(v)),
                fc.jsonValue(),
              ),
            ),
          ),
        }),
      ),
    })
    .map((o) => Buffer.from(JSON.stringify(o))),
  fc.constant(undefined),
);

describe('fuzz: Curator ServiceInstance JSON', () => {
  it('never throws: instances with valid ports, or an error', () => {
    fc.assert(
      fc.property(curatorData, (data) => {
        const r = curatorInstanceOf(data, layout);
        if ('error' in r) {
          expect(r.error.length).toBeGreaterThan(0);
          return;
        }
        expect(r.instances.length).toBeGreaterThan(0);
        for (const i of r.instances) {
          expect(Number.isInteger(i.port) && i.port >= 1 && i.port <= 65535).toBe(true);
          expect(i.address.length).toBeGreaterThan(0);
          for (const v of Object.values(i.metadata)) expect(typeof v).toBe('string');
        }
      }),
      runs,
    );
  });

  it('a service of good and bad instances: every bad one rejected and named by its path, every good one kept', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            curatorGood.map((g) => ({ good: g })),
            curatorData.map((bad) => ({ bad })),
          ),
          {
            maxLength: 10,
          },
        ),
        (mixed) => {
          const instances: CuratorInstanceRead[] = mixed.map((m, i) => ({
            id: `i${i}`,
            path: `/services/svc/i${i}`,
            data: 'good' in m ? Buffer.from(JSON.stringify(m.good.json)) : m.bad,
          }));
          const rejected: RejectedEntry[] = [];
          const service = curatorServiceOf(
            { name: 'svc', path: '/services/svc', instances },
            'zk',
            'services',
            layout,
            rejected,
          );
          const bad = instances.filter((i) => 'error' in curatorInstanceOf(i.data, layout)).map((i) => i.path);
          expect(rejected.map((r) => r.ref).sort()).toEqual(bad.sort());
          for (const m of mixed)
            if ('good' in m)
              expect(service.instances.some((i) => i.address === m.good.address && i.port === m.good.port)).toBe(true);
        },
      ),
      runs,
    );
  });
});
