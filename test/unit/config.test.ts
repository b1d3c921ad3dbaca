import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { parseDuration } from '../../src/config/duration.js';
import { ConfigError } from '../../src/errors.js';
import { adapterFactories } from '../../src/sources/registry.js';

function errorOf(raw: unknown): string {
  try {
    parseConfig(raw, adapterFactories);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

const good = { sources: [{ name: 'files', kind: 'static', static: { path: 'r.yaml' } }] };

describe('config', () => {
  it('fills defaults', () => {
    const c = parseConfig(good, adapterFactories);
    expect(c.policy).toEqual({
      mode: 'sync',
      maxDeletesPerRun: 100,
      shrinkHold: { enabled: true, percent: 50, minEntries: 3, confirmFor: 120_000, recheckAfter: 10_000 },
    });
    expect(c.sink).toEqual({ kind: 'stdout', format: 'yaml' });
    expect(c.sources[0]).toMatchObject({
      targetNamespace: 'default',
      serviceEntry: { location: 'MESH_INTERNAL', includeUnhealthy: false },
    });
    expect(c.controller.resyncInterval).toBe(60_000);
  });

  it.each([
    ['no sources', {}, /^sources: /],
    ['unknown kind', { sources: [{ name: 'x', kind: 'eureka' }] }, /sources\[0\]\.kind: expected one of static/],
    [
      'bad source name',
      { sources: [{ ...good.sources[0], name: 'Bad_Name' }] },
      /sources\[0\]\.name: expected a DNS-1123 label/,
    ],
    ['adapter block missing', { sources: [{ name: 'x', kind: 'static' }] }, /sources\[0\]\.static: /],
    ['unknown field', { ...good, polcy: {} }, /Unrecognized key.*polcy/],
    [
      'duplicate source names',
      { sources: [good.sources[0], good.sources[0]] },
      /sources\[1\]\.name: "files" is already the name of sources\[0\]/,
    ],
    [
      'unknown template variable',
      { sources: [{ ...good.sources[0], hostTemplate: '{service}.{cluster}.x' }] },
      /sources\[0\]\.hostTemplate: unknown variable \{cluster\}/,
    ],
    [
      'undotted template',
      { sources: [{ ...good.sources[0], hostTemplate: '{service}' }] },
      /sources\[0\]\.hostTemplate: must produce a dotted host/,
    ],
    ['bad policy', { ...good, policy: { mode: 'yolo' } }, /policy\.mode: /],
    [
      'bad duration',
      { ...good, controller: { resyncInterval: 'soon' } },
      /controller\.resyncInterval: expected a duration/,
    ],
    ['bad sink', { ...good, sink: { kind: 'files' } }, /sink\.dir: /],
  ])('%s → names the path', (_name, raw, pattern) => {
    expect(errorOf(raw)).toMatch(pattern);
  });

  it('parses durations', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('42')).toBe(42);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseDuration('5x')).toBeUndefined();
  });
});
