import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { bridgeConfigSchema } from '../../src/config/schema.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { CHART_SCHEMA_PATH, chartJsonSchema, renderChartSchema } from '../../scripts/gen-chart-schema.js';

type Json = Record<string, any>;

const chartDir = path.dirname(CHART_SCHEMA_PATH);

function accepts(prop: Json, value: string): boolean {
  return new RegExp(prop.pattern as string).test(value) && value.length <= (prop.maxLength as number);
}

describe('chart values.schema.json', () => {
  it('is up to date with the zod schemas (run `npm run chart:schema` when this fails)', async () => {
    const committed = await readFile(CHART_SCHEMA_PATH, 'utf8');
    expect(committed).toBe(renderChartSchema());
  });

  it('has one sources[] variant per adapter, keyed by kind', () => {
    const items = (chartJsonSchema() as Json).properties.config.properties.sources.items as Json;
    const kinds = (items.oneOf as Json[]).map((v) => v.properties.kind.const as string);
    expect(kinds).toEqual(adapterFactories.map((a) => a.kind));
  });

  // The per-source fields are mirrored in the script (bridgeConfigSchema dispatches in a
  // transform): they must accept and reject exactly what the CLI's zod schema does.
  it.each([
    ['ok', true],
    ['nacos-prod-1', true],
    ['Bad_Name', false],
    ['-lead', false],
    ['a'.repeat(63), true],
    ['a'.repeat(64), false],
  ])('name and targetNamespace %j agree with the zod schema', (value, valid) => {
    const variant = ((chartJsonSchema() as Json).properties.config.properties.sources.items.oneOf as Json[])[0]!;
    const zodOk = (field: 'name' | 'targetNamespace') => {
      try {
        parseConfig(
          { sources: [{ name: 'x', kind: 'static', static: { path: 'r.yaml' }, [field]: value }] },
          adapterFactories,
        );
        return true;
      } catch {
        return false;
      }
    };
    expect(zodOk('name')).toBe(valid);
    expect(zodOk('targetNamespace')).toBe(valid);
    expect(accepts(variant.properties.name, value)).toBe(valid);
    expect(accepts(variant.properties.targetNamespace, value)).toBe(valid);
  });

  it('accepts every top-level section of the bridge config (the chart passes `config:` through)', () => {
    const config = (chartJsonSchema() as Json).properties.config as Json;
    const sections = Object.keys((bridgeConfigSchema(adapterFactories) as unknown as { shape: Json }).shape);
    expect(Object.keys(config.properties as Json).sort()).toEqual(sections.sort());
  });

  it('requires leader election for more than one replica', () => {
    const s = chartJsonSchema() as Json;
    expect(s.if).toMatchObject({ properties: { replicaCount: { minimum: 2 } } });
    expect(s.then).toMatchObject({
      properties: { config: { properties: { leaderElection: { properties: { enabled: { const: true } } } } } },
    });
  });

  it('the default values.yaml `config` is a valid bridge config for the CLI', async () => {
    const values = parseYaml(await readFile(path.join(chartDir, 'values.yaml'), 'utf8')) as Json;
    const config = parseConfig(values.config, adapterFactories);
    expect(config.sink.kind).toBe('kube');
  });

  it('describes every top-level key of values.yaml', async () => {
    const values = parseYaml(await readFile(path.join(chartDir, 'values.yaml'), 'utf8')) as Json;
    const described = Object.keys((chartJsonSchema() as Json).properties as Json).sort();
    expect(Object.keys(values).sort()).toEqual(described);
  });
});
