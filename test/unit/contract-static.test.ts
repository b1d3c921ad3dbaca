/** The SourceAdapter contract (test/contract) for the static adapter, on a real file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { staticAdapter } from '../../adapters/static/index.js';
import { secretResolver } from '../../src/config/secret.js';
import { silentLogger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { adapterContract, type ContractInstance } from '../contract/source-adapter.js';

const dir = mkdtempSync(join(tmpdir(), 'rb-contract-static-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'registry.yaml');
const services = new Map<string, unknown>();

async function save(): Promise<void> {
  await writeFile(file, JSON.stringify({ services: [...services.values()] }));
}

const make = (path: string) =>
  staticAdapter.create(
    { path },
    {
      source: 'files',
      logger: silentLogger(),
      baseDir: dir,
      resolveSecret: secretResolver({}, dir),
      metrics: new BridgeMetrics(),
    },
  );

adapterContract({
  name: 'static',
  adapter: () => make(file),
  unreachable: () => make(join(dir, 'no-such-file.yaml')),
  async publish(name: string, instances: readonly ContractInstance[]) {
    services.set(name, { name, protocol: 'http', instances });
    await save();
  },
  async remove(name: string) {
    services.delete(name);
    services.delete(`${name}-bad`);
    await save();
  },
  matches: (s, name) => s.key.name === name,
  async publishInvalid() {
    const bad = [...services.keys()][0]! + '-bad';
    services.set(bad, { name: bad, instances: [{ address: '127.9.9.9', port: 0 }] });
    await save();
    return `(${bad}).instances[0]`;
  },
  settleMs: 5_000,
});
