import { mkdir, mkdtemp, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import type { ReconcileReport } from '../../src/controller/reconcile.js';
import { createLogger } from '../../src/log.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { runWired, wire } from './wiring-harness.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rb-static-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const svc = (i: number) => ({
  name: `svc${i}`,
  protocol: 'http',
  instances: [{ address: `10.0.0.${i + 1}`, port: 80 }],
});
const services = (n: number) => Array.from({ length: n }, (_, i) => svc(i));
const yamlOf = (n: number) => stringify({ services: services(n) });

/**
 * The bridge in continuous mode on a real directory: a static source at `path`, a files sink,
 * a resync interval of an hour (so only the file watch can bring a change in time).
 */
async function start(name: string, path: string, settle = '100ms') {
  const out = join(dir, name, 'out');
  const config = parseConfig(
    {
      sources: [{ name: 's', kind: 'static', static: { path, settle } }],
      // The plan's own sharp-shrink hold (policy.shrinkHold) confirms within a second here.
      policy: { shrinkHold: { confirmFor: '1s' } },
      sink: { kind: 'files', dir: out },
      controller: { resyncInterval: '1h', debounce: '10ms' },
      server: { address: '127.0.0.1', port: 0 },
    },
    adapterFactories,
  );
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (s: string) => lines.push(s) } as never });
  const shutdown = new AbortController();
  const reports: ReconcileReport[] = [];
  const exit = runWired(wire(config, dir, logger), shutdown.signal, { onReport: (r) => reports.push(r) });
  const files = async () => (await readdir(join(out, 'default')).catch(() => [])).length;
  const deletes = () => reports.flatMap((r) => r.outcomes.filter((o) => o.change.action === 'delete'));
  return {
    lines,
    reports,
    files,
    deletes,
    stop: async () => {
      shutdown.abort();
      return exit;
    },
  };
}

describe('static source on a real file system, continuous mode', { timeout: 60_000 }, () => {
  it('a file cut at a line boundary, then the full file: nothing is deleted', async () => {
    await mkdir(join(dir, 'cut'));
    const path = join(dir, 'cut', 'reg.yaml');
    const full = yamlOf(20);
    await writeFile(path, full);
    const b = await start('cut', path, '2s');
    await until(async () => (await b.files()) === 20);
    // The first ten services, cut where the eleventh begins: valid YAML, half the services.
    const cut = full.slice(0, full.indexOf('  - name: svc10\n'));
    expect(cut.length).toBeGreaterThan(0);
    await writeFile(path, cut);
    await until(async () => b.lines.some((l) => l.includes('lost many services at once')));
    // A held read answers with the very snapshot it keeps; a new read of the full file with another.
    const kept = b.reports.at(-1)!.snapshots[0];
    await writeFile(path, full);
    await until(async () => b.reports.some((r) => r.snapshots[0] !== kept && r.snapshots[0]?.services.length === 20));
    expect(b.deletes()).toEqual([]);
    expect(await b.files()).toBe(20);
    expect(await b.stop()).toBe(0);
  });

  it('a sharp shrink that stays is believed on a later read, without waiting for the resync', async () => {
    await mkdir(join(dir, 'shrink'));
    const path = join(dir, 'shrink', 'reg.yaml');
    await writeFile(path, yamlOf(10));
    const b = await start('shrink', path);
    await until(async () => (await b.files()) === 10);
    await writeFile(path, yamlOf(2));
    await until(async () => (await b.files()) === 2);
    expect(b.lines.some((l) => l.includes('lost many services at once'))).toBe(true);
    // Then the plan held the deletions until its confirmation window ended, and a full run it
    // scheduled for then (the resync is an hour away) deleted them.
    expect(b.lines.some((l) => l.includes('would lose 8 of its 10 entries in one run: deletions held'))).toBe(true);
    expect(b.lines.some((l) => l.includes('shrank sharply and stayed so for 1s'))).toBe(true);
    expect(b.deletes()).toHaveLength(8);
    expect(await b.stop()).toBe(0);
  });

  it('a rename-replace (editors, sed -i), then an edit in place: both picked up without the resync', async () => {
    await mkdir(join(dir, 'rename'));
    const path = join(dir, 'rename', 'reg.yaml');
    await writeFile(path, yamlOf(2));
    const b = await start('rename', path);
    await until(async () => (await b.files()) === 2);
    await writeFile(`${path}.new`, yamlOf(3));
    await rename(`${path}.new`, path);
    await until(async () => (await b.files()) === 3);
    await writeFile(path, yamlOf(4));
    await until(async () => (await b.files()) === 4);
    expect(await b.stop()).toBe(0);
  });

  it('a ConfigMap-style symlink swap (..data), twice: both picked up without the resync', async () => {
    const cm = join(dir, 'configmap');
    await mkdir(join(cm, '..2026_01_01_v1'), { recursive: true });
    await writeFile(join(cm, '..2026_01_01_v1', 'reg.yaml'), yamlOf(2));
    await symlink('..2026_01_01_v1', join(cm, '..data'));
    await symlink(join('..data', 'reg.yaml'), join(cm, 'reg.yaml'));
    const b = await start('configmap', join(cm, 'reg.yaml'));
    await until(async () => (await b.files()) === 2);
    for (const [version, n] of [
      ['v2', 3],
      ['v3', 4],
    ] as const) {
      const data = `..2026_01_01_${version}`;
      await mkdir(join(cm, data));
      await writeFile(join(cm, data, 'reg.yaml'), yamlOf(n));
      await symlink(data, join(cm, '..data_tmp'));
      await rename(join(cm, '..data_tmp'), join(cm, '..data'));
      await until(async () => (await b.files()) === n);
    }
    expect(await b.stop()).toBe(0);
  });

  it('a path that is a link into another directory: edits of the target, and a re-pointed link, are picked up', async () => {
    const base = join(dir, 'linked');
    await mkdir(join(base, 'conf'), { recursive: true });
    await mkdir(join(base, 'data-a'));
    await mkdir(join(base, 'data-b'));
    await writeFile(join(base, 'data-a', 'reg.yaml'), yamlOf(2));
    await symlink(join(base, 'data-a', 'reg.yaml'), join(base, 'conf', 'reg.yaml'));
    const b = await start('linked', join(base, 'conf', 'reg.yaml'));
    await until(async () => (await b.files()) === 2);
    await writeFile(join(base, 'data-a', 'reg.yaml'), yamlOf(3));
    await until(async () => (await b.files()) === 3);
    await writeFile(join(base, 'data-b', 'reg.yaml'), yamlOf(4));
    await symlink(join(base, 'data-b', 'reg.yaml'), join(base, 'conf', 'reg.yaml.new'));
    await rename(join(base, 'conf', 'reg.yaml.new'), join(base, 'conf', 'reg.yaml'));
    await until(async () => (await b.files()) === 4);
    await writeFile(join(base, 'data-b', 'reg.yaml'), yamlOf(5));
    await until(async () => (await b.files()) === 5);
    expect(await b.stop()).toBe(0);
  });
});

async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
