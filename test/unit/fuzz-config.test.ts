/**
 * Property-based tests (fast-check, fixed seeds) of the configuration loader: any YAML text and
 * any value at any place of a valid configuration is either accepted or a ConfigError (exit 2)
 * whose every line names a path and a reason; nothing else is ever thrown.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { adapterFactories } from '../../src/sources/registry.js';

// Fixed runs and seed: deterministic in CI. FUZZ_RUNS / FUZZ_SEED explore further by hand.
const runs = { numRuns: Number(process.env.FUZZ_RUNS ?? 200), seed: Number(process.env.FUZZ_SEED ?? 2123) };
const examples = ['examples/quickstart.yaml', 'examples/nacos-to-kube.yaml', 'examples/zookeeper-dubbo.yaml'];

let dir: string;
let valid: unknown[];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rb-fuzz-config-'));
  valid = await Promise.all(examples.map(async (f) => parseYaml(await readFile(f, 'utf8')) as unknown));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** Every path (object keys and array indexes) of a JSON-like value. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...prefix, k]));
  return out;
}

function replaceAt(value: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<string | number, unknown>;
  copy[head!] = replaceAt(copy[head!], rest, replacement);
  return copy;
}

/** Accepted, or a ConfigError whose every line is `<path or (config)>: <reason>`. */
function expectConfigOutcome(run: () => unknown): void {
  try {
    run();
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(ConfigError);
    for (const line of (err as Error).message.split('\n')) expect(line).toMatch(/^\S[^:]*: ./);
  }
}

describe('fuzz: configuration', () => {
  it('any value is accepted or a ConfigError naming the path', () => {
    fc.assert(
      fc.property(fc.anything(), (raw) => expectConfigOutcome(() => parseConfig(raw, adapterFactories))),
      runs,
    );
  });

  it('any value at any place of the example configurations: accepted or a ConfigError naming the path', () => {
    fc.assert(
      fc.property(
        fc.nat(examples.length - 1),
        fc.nat(),
        fc.oneof(fc.jsonValue(), fc.string(), fc.integer(), fc.constant(null), fc.constant(undefined)),
        (which, at, replacement) => {
          const base = valid[which];
          const paths = pathsOf(base);
          const path = paths[at % paths.length]!;
          expectConfigOutcome(() => parseConfig(replaceAt(base, path, replacement), adapterFactories));
        },
      ),
      runs,
    );
  });

  it('any text as the config file: accepted or a ConfigError naming the file', async () => {
    const file = join(dir, 'bridge.yaml');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.string({ unit: fc.constantFrom(...':-[]{}\n #&*!|>\'"%@`,?'.split('')), maxLength: 80 }),
          fc.jsonValue().map((v) => toYaml(v)),
          // An example with a few characters cut out or repeated.
          fc.tuple(fc.nat(examples.length - 1), fc.nat(), fc.nat(20)).map(([w, at, len]) => {
            const text = toYaml(valid[w]);
            const i = at % text.length;
            return text.slice(0, i) + text.slice(i + len);
          }),
        ),
        async (text) => {
          await writeFile(file, text);
          try {
            await loadConfigFile(file, adapterFactories);
          } catch (err) {
            expect(err, String(err)).toBeInstanceOf(ConfigError);
            expect((err as Error).message.startsWith(file)).toBe(true);
          }
        },
      ),
      runs,
    );
  });
});
