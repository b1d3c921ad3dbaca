/**
 * controller.applicationSettle in the continuous controller: a Dubbo application that `merge`
 * mode would publish on an entry of its own (application level only) gets that new entry only
 * once it has been so for the settle; an interface level that shows up meanwhile (a starting
 * `register-mode=all` provider read between its two levels) means the entry is never created.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/controller.js';
import type { ConfiguredSource, ReconcileReport } from '../../src/controller/reconcile.js';
import { silentLogger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { serviceKeyString, type RegistryService } from '../../src/model/service.js';
import { filesSink } from '../../src/sinks/files.js';
import type { ChangeListener, SourceAdapter } from '../../src/sources/adapter.js';
import { defaultSynthOptions } from '../../src/synth/index.js';
import { inst } from './helpers.js';

const source = 'zk';
/** What the ZooKeeper adapter reads at `/dubbo/greet-app/10.0.0.7:20880` (Dubbo 3 application level). */
const application: RegistryService = {
  key: { source, namespace: '', group: '', name: 'greet-app' },
  attributes: { kind: 'dubbo-application' },
  instances: [inst('10.0.0.7', 20880, { protocol: 'dubbo' })],
  applicationLevel: { application: 'greet-app', mode: 'merge' },
};
/** The interface level of the same provider (`/dubbo/<iface>/providers/dubbo://10.0.0.7:20880/…`). */
const iface: RegistryService = {
  key: { source, namespace: '', group: '', name: 'demo.GreetService:1.0.0:g1' },
  attributes: {
    kind: 'dubbo',
    interface: 'demo.GreetService',
    version: '1.0.0',
    versionLabel: 'v-1-0-0',
    group: 'g1',
    groupLabel: 'g-g1',
    application: 'greet-app',
    service: 'demo.GreetService',
  },
  host: 'demo.greetservice.v-1-0-0.g-g1.dubbo',
  instances: [inst('10.0.0.7', 20880, { protocol: 'dubbo', metadata: { application: 'greet-app' } })],
};

class MemorySource implements SourceAdapter {
  services: RegistryService[] = [];
  listener: ChangeListener | undefined;
  async list() {
    return { source, services: [...this.services], rejected: [] };
  }
  async readServices() {
    return { source, services: [...this.services], rejected: [] };
  }
  async watch(onChange: ChangeListener) {
    this.listener = onChange;
  }
  async close() {}
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rb-settle-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

function controllerOf(mem: MemorySource, out: string, settleMs: number, reports: ReconcileReport[]) {
  const configured: ConfiguredSource = {
    name: source,
    kind: 'memory',
    adapter: mem,
    synth: { ...defaultSynthOptions, hostTemplate: '{service}.dubbo', namespace: 'ns' },
  };
  return new Controller(
    [configured],
    filesSink(out),
    {
      policy: 'sync',
      maxDeletes: 10,
      dryRun: false,
      resyncMs: 3_600_000,
      debounceMs: 5,
      applicationSettleMs: settleMs,
    },
    { logger: silentLogger(), metrics: new BridgeMetrics(), onReport: (r) => reports.push(r) },
    new AbortController().signal,
  );
}

async function next(reports: ReconcileReport[], n: number): Promise<ReconcileReport> {
  for (let i = 0; i < 2000 && reports.length < n; i++) await new Promise((r) => setTimeout(r, 5));
  expect(reports.length).toBeGreaterThanOrEqual(n);
  return reports[n - 1]!;
}

const actions = (r: ReconcileReport) =>
  r.plan.changes.filter((c) => c.action !== 'unchanged').map((c) => `${c.action} ${c.name}`);

describe('controller.applicationSettle', () => {
  it('an application at application level only: held back, then created by a run the controller schedules itself at the settle', async () => {
    const mem = new MemorySource();
    mem.services = [application];
    const out = join(dir, 'alone');
    const reports: ReconcileReport[] = [];
    const controller = controllerOf(mem, out, 200, reports);
    try {
      controller.start();
      const first = await next(reports, 1);
      expect(actions(first)).toEqual(['keep greet-app.dubbo']);
      expect(first.plan.changes[0]!.reason).toMatch(/application level only, seen so for \d+ ms: .* waits 200 ms/);
      expect(await readdir(out).catch(() => [])).toEqual([]);
      // No hint, no resync within the test: the settle's own run creates it.
      const second = await next(reports, 2);
      expect(actions(second)).toEqual(['create greet-app.dubbo']);
      expect(await readdir(join(out, 'ns'))).toEqual(['greet-app.dubbo.yaml']);
    } finally {
      await controller.stop();
    }
  });

  it('a register-mode=all provider read between its two levels: the interface level arrives within the settle, the application entry is never created', async () => {
    const mem = new MemorySource();
    mem.services = [application];
    const out = join(dir, 'both');
    const reports: ReconcileReport[] = [];
    const controller = controllerOf(mem, out, 60_000, reports);
    try {
      controller.start();
      expect(actions(await next(reports, 1))).toEqual(['keep greet-app.dubbo']);
      mem.services = [iface, application];
      mem.listener!([iface.key, application.key]);
      const second = await next(reports, 2);
      expect(second.scope).toBe('full');
      expect(actions(second)).toEqual(['create demo.greetservice.v-1-0-0.g-g1.dubbo']);
      expect(await readdir(join(out, 'ns'))).toEqual(['demo.greetservice.v-1-0-0.g-g1.dubbo.yaml']);
      for (const r of reports) expect(actions(r)).not.toContain('create greet-app.dubbo');
      expect(second.synth.notes.map((n) => n.service)).not.toContain(serviceKeyString(application.key));
    } finally {
      await controller.stop();
    }
  });

  it('0 turns it off: created by the first run (what sync --once does)', async () => {
    const mem = new MemorySource();
    mem.services = [application];
    const out = join(dir, 'off');
    const reports: ReconcileReport[] = [];
    const controller = controllerOf(mem, out, 0, reports);
    try {
      controller.start();
      expect(actions(await next(reports, 1))).toEqual(['create greet-app.dubbo']);
    } finally {
      await controller.stop();
    }
  });
});
