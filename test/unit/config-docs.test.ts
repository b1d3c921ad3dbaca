/**
 * docs/configuration.md is generated from the zod schemas (scripts/gen-config-docs.ts). These
 * tests keep it current and complete: a schema field added without regenerating, or without a
 * `.describe()` text, fails here with the command or the field to fix.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CONFIG_DOCS_COMMAND,
  CONFIG_DOCS_PATH,
  renderConfigDocs,
  undescribedKeys,
} from '../../scripts/gen-config-docs.js';
import { defineAdapter } from '../../src/sources/adapter.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { boundedDuration } from '../../src/config/duration.js';
import { secretRefSchema } from '../../src/config/secret.js';

describe('docs/configuration.md', () => {
  it('is up to date with the zod schemas', async () => {
    const committed = await readFile(CONFIG_DOCS_PATH, 'utf8').catch(() => '');
    expect(
      committed === renderConfigDocs(),
      `docs/configuration.md is stale: the config schemas changed. Run \`${CONFIG_DOCS_COMMAND}\` and commit docs/configuration.md.`,
    ).toBe(true);
  });

  it('describes every field (add a .describe() text to each listed field)', () => {
    expect(undescribedKeys()).toEqual([]);
  });

  it('documents every top-level section and every adapter block', () => {
    const doc = renderConfigDocs();
    for (const section of ['policy', 'controller', 'server', 'leaderElection', 'propagation', 'log'])
      expect(doc).toContain(`## \`${section}\``);
    for (const kind of ['stdout', 'files', 'kube']) expect(doc).toContain(`## \`sink\` with \`kind: ${kind}\``);
    for (const a of adapterFactories) expect(doc).toContain(`## \`sources[].${a.kind}\` (\`kind: ${a.kind}\`)`);
  });

  // A made-up adapter shows what the generator turns each kind of schema into.
  const demo = defineAdapter({
    kind: 'demo',
    defaultHostTemplate: '{service}.demo',
    templateAttributes: ['zone'],
    configSchema: z.strictObject({
      endpoint: z.string().url().describe('Where the registry is.'),
      interval: boundedDuration({ min: 1000, max: 3_600_000 }).default(90_000).describe('How often.'),
      timeout: boundedDuration({ min: 100, max: 60_000, zeroMeansOff: true }).default(250).describe('Per request.'),
      token: secretRefSchema.optional().describe('Bearer token.'),
      port: z.number().int().min(1).max(65535).optional().describe('A port.'),
      mode: z.enum(['fast', 'safe']).default('safe').describe('A mode.'),
      labels: z.record(z.string(), z.string()).default({}).describe('Labels.'),
      tags: z.array(z.string()).default(['a', 'b']).describe('Tags.'),
      nested: z.strictObject({ depth: z.number().int().nonnegative().describe('Depth.') }).optional(),
    }),
    create: () => {
      throw new Error('not used');
    },
  });

  it.each([
    ['a required URL', '| `endpoint` | URL | required | Where the registry is. |'],
    [
      'a duration with its limits and a default in minutes and seconds',
      '| `interval` | duration, 1s to 1h | `1m30s` | How often. |',
    ],
    [
      'a duration that 0 turns off, with a default in milliseconds',
      '| `timeout` | duration, 100ms to 1m, or 0 (off) | `250ms` | Per request. |',
    ],
    ['a secret reference', '| `token` | secret reference | – | Bearer token. |'],
    ['an integer range', '| `port` | integer 1–65535 | – | A port. |'],
    ['an enum', '| `mode` | `fast` \\| `safe` | `safe` | A mode. |'],
    ['a map', '| `labels` | map of string → string | `{}` | Labels. |'],
    ['a list default', '| `tags` | list of string | `[a, b]` | Tags. |'],
    ['a nested field', '| `nested.depth` | integer ≥ 0 | required | Depth. |'],
    [
      'the default host template and the template variables',
      'Default `hostTemplate`: `{service}.demo`. Template variables: `{service}` `{group}` `{namespace}` `{source}` `{zone}`.',
    ],
  ])('renders %s', (_name, line) => {
    expect(renderConfigDocs([...adapterFactories, demo]).split('\n')).toContain(line);
  });

  it('lists a field without a description', () => {
    expect(undescribedKeys([...adapterFactories, demo])).toEqual(['sources[].demo.nested']);
  });
});
