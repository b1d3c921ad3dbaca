import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { ReconcileReport } from '../../src/controller/reconcile.js';
import { silentLogger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { httpGet, listenWired, wire } from './wiring-harness.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rb-cont-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const svc = (name: string, address: string) => ({ name, protocol: 'http', instances: [{ address, port: 80 }] });

describe('continuous mode (files sink)', () => {
  it('serves readiness after the first run, metrics initialised to zero, follows file changes, and shuts down gracefully', async () => {
    const reg = join(dir, 'reg.json');
    const out = join(dir, 'out');
    await writeFile(reg, JSON.stringify({ services: [svc('a', '10.0.0.1')] }));
    const config = parseConfig(
      {
        sources: [{ name: 'files', kind: 'static', static: { path: reg } }],
        sink: { kind: 'files', dir: out },
        controller: { resyncInterval: '200ms', debounce: '20ms' },
        server: { address: '127.0.0.1', port: 0 },
      },
      adapterFactories,
    );
    const metrics = new BridgeMetrics();
    const shutdown = new AbortController();
    const reports: ReconcileReport[] = [];
    const wired = wire(config, dir, silentLogger(), metrics);
    const { port, exit } = await listenWired(wired, shutdown.signal, (r) => reports.push(r));

    const get = (path: string) => httpGet(port, path);
    await until(async () => (await get('/readyz')).status === 200);
    expect((await get('/healthz')).status).toBe(200);
    const m = (await get('/metrics')).body;
    expect(m).toMatch(/registry_bridge_changes_total\{action="delete"\} 0/);
    expect(m).toMatch(/registry_bridge_source_up\{source="files"\} 1/);
    expect(m).toMatch(/registry_bridge_reconcile_runs_total\{result="success"\} [1-9]/);
    expect((await get('/nope')).status).toBe(404);

    // A registry change reaches the sink without a restart.
    // One instance with a bad port is rejected (the rest of its service syncs).
    const bad = {
      name: 'c',
      protocol: 'http',
      instances: [
        { address: '10.0.0.3', port: 80 },
        { address: '10.0.0.4', port: 0 },
      ],
    };
    await writeFile(reg, JSON.stringify({ services: [svc('a', '10.0.0.1'), svc('b', '10.0.0.2'), bad] }));
    await until(async () => (await readdir(join(out, 'default')).catch(() => [])).length === 3);
    shutdown.abort();
    expect(await exit).toBe(0);
    expect(reports.length).toBeGreaterThan(1);
    // Rejected entries are counted once per run that saw them: by the controller, not by the adapter as well.
    const rejectedInRuns = reports.reduce((n, r) => n + r.snapshots.reduce((k, s) => k + s.rejected.length, 0), 0);
    expect(rejectedInRuns).toBeGreaterThan(0);
    const counted = (await metrics.rejectedEntries.get()).values.find((v) => v.labels.source === 'files')?.value;
    expect(counted).toBe(rejectedInRuns);
  });
});

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
