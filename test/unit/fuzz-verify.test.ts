/**
 * Property-based tests (fast-check, fixed seeds) of the parsers of istiod's and Envoy's debug
 * output (/debug/registryz, /debug/syncz, config_dump): any body is parsed or refused with the
 * documented error (not JSON, wrong shape), never another exception; an element that cannot be
 * read is dropped, counted and named (its index, and its host, proxy id or place, type and
 * name where it has them), and the readable rest goes on.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfigDump } from '../../src/verify/proxy-config.js';
import { parseRegistryz } from '../../src/verify/registryz.js';
import { parseSyncz } from '../../src/verify/syncz.js';

// Fixed runs and seed: deterministic in CI. FUZZ_RUNS / FUZZ_SEED explore further by hand.
const runs = { numRuns: Number(process.env.FUZZ_RUNS ?? 300), seed: Number(process.env.FUZZ_SEED ?? 2124) };
const fixtures = 'test/fixtures/istiod/1.31-alpha.b01690e6db7d';
const registryzFixture = JSON.parse(readFileSync(`${fixtures}/registryz.json`, 'utf8')) as Record<string, unknown>[];
const synczFixture = JSON.parse(readFileSync(`${fixtures}/syncz.json`, 'utf8')) as Record<string, unknown>[];
const dumpFixture = readFileSync(`${fixtures}/config_dump.json`, 'utf8');

/** Text that is JSON, nearly JSON, or neither; and bodies nested deep enough to exhaust a recursive walk. */
const body = fc.oneof(
  fc.string({ maxLength: 100 }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.jsonValue().map((v) => JSON.stringify(v).slice(0, -1)),
  fc.integer({ min: 1_000, max: 12_000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.integer({ min: 1_000, max: 12_000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
);

/** Refused only as documented: not JSON (with line and column), or not the expected shape. */
function expectParsedOrRefused(run: () => unknown, what: RegExp): void {
  try {
    run();
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(Error);
    expect((err as Error).constructor.name, (err as Error).message).not.toMatch(/RangeError|TypeError/);
    expect((err as Error).message).toMatch(what);
  }
}

/** Elements of a list: a real one from the fixture (tagged good) or any JSON value. */
function mixedOf(good: readonly Record<string, unknown>[]) {
  return fc.array(
    fc.oneof(
      fc.constantFrom(...good).map((g) => ({ good: g })),
      fc.jsonValue().map((bad) => ({ bad })),
    ),
    { maxLength: 12 },
  );
}

describe('fuzz: registryz', () => {
  it('any body: parsed, or refused as not JSON / not services', () => {
    fc.assert(
      fc.property(body, (b) => expectParsedOrRefused(() => parseRegistryz(b), /^registryz is (not JSON|neither)/)),
      runs,
    );
  });

  it('real entries and anything: each element is an entry, a ≤ 1.10 terminator, or dropped and named by its index', () => {
    fc.assert(
      fc.property(mixedOf(registryzFixture), (mixed) => {
        const elements = mixed.map((m) => ('good' in m ? m.good : m.bad));
        const r = parseRegistryz(JSON.stringify(elements));
        const terminators = elements.filter(
          (e) => e !== null && typeof e === 'object' && !Array.isArray(e) && Object.keys(e).length === 0,
        ).length;
        expect(r.entries.length + r.droppedElements.length + terminators).toBe(elements.length);
        expect(r.dropped).toBe(r.droppedElements.length);
        for (const d of r.droppedElements) {
          expect('bad' in mixed[d.index]!).toBe(true);
          expect(d.reason.length).toBeGreaterThan(0);
        }
        const hosts = new Set(r.entries.map((e) => e.hostname));
        for (const m of mixed) if ('good' in m) expect(hosts.has(m.good.hostname as string)).toBe(true);
      }),
      runs,
    );
  });
});

describe('fuzz: syncz', () => {
  it('any body: parsed, or refused as not JSON / not an array', () => {
    fc.assert(
      fc.property(body, (b) => expectParsedOrRefused(() => parseSyncz(b), /^syncz is not (JSON|a JSON array)/)),
      runs,
    );
  });

  it('real statuses and anything: each element is a proxy or dropped and named by its index', () => {
    fc.assert(
      fc.property(mixedOf(synczFixture), (mixed) => {
        const elements = mixed.map((m) => ('good' in m ? m.good : m.bad));
        const r = parseSyncz(JSON.stringify(elements));
        expect(r.proxies.length + r.dropped).toBe(elements.length);
        expect(r.dropped).toBe(r.droppedElements.length);
        for (const d of r.droppedElements) {
          expect('bad' in mixed[d.index]!).toBe(true);
          expect(d.reason.length).toBeGreaterThan(0);
          const proxy = (elements[d.index] as { proxy?: unknown } | null)?.proxy;
          expect(d.proxy).toBe(typeof proxy === 'string' && proxy ? proxy : undefined);
        }
        const good = mixed.filter((m) => 'good' in m).length;
        expect(r.proxies.length).toBeGreaterThanOrEqual(good);
      }),
      runs,
    );
  });
});

describe('fuzz: config dump', () => {
  it('any body: parsed, or refused as not JSON / neither configs nor resources', () => {
    fc.assert(
      fc.property(body, (b) =>
        expectParsedOrRefused(() => parseConfigDump(b), /^config dump (is not JSON|has neither)/),
      ),
      runs,
    );
  });

  it('a real dump with its sections replaced by anything: the readable sections still count', () => {
    const real = JSON.parse(dumpFixture) as { configs: unknown[] };
    const whole = parseConfigDump(dumpFixture);
    fc.assert(
      fc.property(
        fc.array(fc.option(fc.jsonValue(), { nil: undefined }), { maxLength: real.configs.length }),
        (replace) => {
          const configs = real.configs.map((c, i) => (replace[i] === undefined ? c : replace[i]));
          const view = parseConfigDump(JSON.stringify({ configs }));
          const untouched = real.configs.every((_, i) => replace[i] === undefined);
          if (untouched) expect(view.clusters.size).toBe(whole.clusters.size);
          expect(view.clusters.size).toBeLessThanOrEqual(whole.clusters.size);
          // every dropped element is named by a place in a replaced section
          expect(view.dropped).toBe(view.droppedElements.length);
          for (const d of view.droppedElements) {
            const i = Number(/^configs\[(\d+)\]/.exec(d.at)?.[1]);
            expect(replace[i], d.at).not.toBeUndefined();
            expect(d.reason.length).toBeGreaterThan(0);
          }
        },
      ),
      { ...runs, numRuns: Math.min(runs.numRuns, 100) },
    );
  });
});
