import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { adapterFactories } from '../../src/sources/registry.js';

const configs = readdirSync(new URL('../../examples/', import.meta.url)).filter(
  (f) => f.endsWith('.yaml') && !f.endsWith('-registry.yaml'),
);

describe('examples', () => {
  it.each(configs)('%s is a valid configuration', async (file) => {
    const { config } = await loadConfigFile(
      new URL(`../../examples/${file}`, import.meta.url).pathname,
      adapterFactories,
    );
    expect(config.sources.length).toBeGreaterThan(0);
  });
});
