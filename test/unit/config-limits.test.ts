import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { durationLimits, MAX_TIMER_MS, parseDuration, type DurationField } from '../../src/config/duration.js';
import { ConfigError } from '../../src/errors.js';
import { adapterFactories } from '../../src/sources/registry.js';

const adapterBlocks: Record<string, Record<string, unknown>> = {
  static: { path: 'r.yaml' },
  nacos: { servers: ['http://nacos:8848'] },
  zookeeper: { connect: 'zk:2181' },
};

/** A valid config with `field` set to `value`, and the path the error must name. */
function configWith(field: DurationField, value: unknown): { raw: Record<string, unknown>; path: string } {
  const m = /^sources\[\]\.(\w+)\.(.+)$/.exec(field);
  const raw: Record<string, unknown> = { sources: [{ name: 's', kind: 'static', static: adapterBlocks.static }] };
  let target: Record<string, unknown>;
  let rest: string;
  if (m) {
    const kind = m[1]!;
    const block = structuredClone(adapterBlocks[kind]!);
    raw.sources = [{ name: 's', kind, [kind]: block }];
    target = block;
    rest = m[2]!;
  } else {
    // The kube sink's fields exist only with `kind: kube`.
    if (field.startsWith('sink.')) raw.sink = { kind: 'kube' };
    target = raw;
    rest = field;
  }
  const keys = rest.split('.');
  for (const k of keys.slice(0, -1)) target = (target[k] ??= {}) as Record<string, unknown>;
  target[keys.at(-1)!] = value;
  return { raw, path: m ? `sources[0].${m[1]}.${m[2]}` : field };
}

function errorOf(raw: unknown): string | undefined {
  try {
    parseConfig(raw, adapterFactories);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
}

const fields = Object.keys(durationLimits) as DurationField[];

describe('duration limits', () => {
  it.each(fields)(
    '%s: 0, below the minimum, above the maximum, 1000h and 2^31 ms are refused, naming the field',
    (field) => {
      const limits: { min: number; max: number; zeroMeansOff?: boolean } = durationLimits[field];
      const escaped = configWith(field, 0).path.replace(/[.[\]]/g, '\\$&');
      const refused = [limits.max + 1, '1000h', 2 ** 31, MAX_TIMER_MS + 1, -1, 1.5];
      if (limits.min > 1) refused.push(limits.min - 1);
      if (!limits.zeroMeansOff) refused.push(0, '0s');
      for (const value of refused) {
        const { raw } = configWith(field, value);
        expect(errorOf(raw), `${field} = ${value}`).toMatch(new RegExp(`^${escaped}: `, 'm'));
      }
      for (const value of [limits.min, limits.max, ...(limits.zeroMeansOff ? [0] : [])]) {
        expect(errorOf(configWith(field, value).raw), `${field} = ${value}`).toBeUndefined();
      }
    },
  );

  it('the message says the limits and what was given', () => {
    expect(errorOf(configWith('controller.resyncInterval', 0).raw)).toMatch(
      /controller\.resyncInterval: must be between 100ms and 24h, got 0 ms/,
    );
    expect(errorOf(configWith('sources[].nacos.relistInterval', '1000h').raw)).toMatch(
      /sources\[0\]\.nacos\.relistInterval: must be between 1s and 24h, got "1000h" \(Node's timers cannot wait longer than 24\.8 days\)/,
    );
  });

  it('every limit is within Node timer range, and the defaults are within their limits', () => {
    for (const f of fields) expect(durationLimits[f].max).toBeLessThanOrEqual(MAX_TIMER_MS);
    const c = parseConfig({ sources: [{ name: 's', kind: 'static', static: { path: 'r' } }] }, adapterFactories);
    expect(c.controller.resyncInterval).toBe(60_000);
  });

  it('docs/configuration-limits.md lists exactly these limits', () => {
    const doc = readFileSync(new URL('../../docs/configuration-limits.md', import.meta.url), 'utf8');
    const table = doc.slice(doc.indexOf('<!-- limits-table'), doc.indexOf('<!-- /limits-table -->'));
    const rows = [...table.matchAll(/^\| `([^`]+)` \| [^|]+ \| (\S+) \| (\S+) \| (off|refused) \|$/gm)].map((r) => [
      r[1],
      { min: parseDuration(r[2]!), max: parseDuration(r[3]!), zero: r[4] },
    ]);
    expect(Object.fromEntries(rows)).toEqual(
      Object.fromEntries(
        fields.map((f) => {
          const l: { min: number; max: number; zeroMeansOff?: boolean } = durationLimits[f];
          return [f, { min: l.min, max: l.max, zero: l.zeroMeansOff ? 'off' : 'refused' }];
        }),
      ),
    );
  });
});
