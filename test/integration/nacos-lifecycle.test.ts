/**
 * The lifecycle invariant on the real Nacos servers: "a service that the registry lists at the
 * start and at the end of a run is never deleted by it". Services (plain and Dubbo-named) are
 * registered, deregistered and registered again through the v1 HTTP API while the controller
 * runs with the gRPC push, the service-name poll, the periodic re-list and short resyncs, so
 * keys-scoped and full runs interleave; every deletion of every run is checked against what the
 * server listed. Then the bridge must converge on what the server lists.
 *
 * Found this way once (issue 21): a keys-scoped run deleted a live Dubbo-on-Nacos entry ten
 * seconds after its provider registered (a re-list forgot the service's Nacos name, and the
 * keys-scoped read guessed a name that does not exist).
 */
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nacosAdapter } from '../../adapters/nacos/index.js';
import { secretResolver } from '../../src/config/secret.js';
import { Controller } from '../../src/controller/controller.js';
import type { ReconcileReport } from '../../src/controller/reconcile.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';
import { kubeSink } from '../../src/sinks/kube/sink.js';
import { defaultSynthOptions } from '../../src/synth/index.js';
import { hasPeer, peer } from '../peers/endpoints.js';
import { eventually } from './eventually.js';

const NS = 'rb-it-life';
const GROUP = 'DEFAULT_GROUP';

async function call(
  base: string,
  method: string,
  path: string,
  params: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}${path}?${new URLSearchParams(params)}`, {
    method,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.text() };
}

interface Slot {
  readonly service: string;
  readonly ip: string;
}

const form = (s: Slot, metadata: Record<string, string>) => ({
  namespaceId: NS,
  groupName: GROUP,
  serviceName: s.service,
  ip: s.ip,
  port: '20880',
  ephemeral: 'false',
  healthy: 'true',
  enabled: 'true',
  weight: '1',
  metadata: JSON.stringify(metadata),
});

/** Instances of `service` the server lists over HTTP now. */
async function listedIps(base: string, service: string): Promise<string[]> {
  const res = await call(base, 'GET', '/v1/ns/instance/list', {
    serviceName: `${GROUP}@@${service}`,
    namespaceId: NS,
    healthyOnly: 'false',
  });
  if (res.status !== 200) return [];
  const body = JSON.parse(res.body) as { hosts?: { ip: string }[] };
  return (body.hosts ?? []).map((h) => h.ip).sort();
}

/** A small deterministic generator: the same actions every run. */
function seeded(seed: number): () => number {
  let x = seed;
  return () => ((x = (x * 1103515245 + 12345) % 2 ** 31), x / 2 ** 31);
}

for (const server of ['nacos', 'rnacos'] as const) {
  describe.skipIf(!hasPeer(server) || !hasPeer('kube'))(`lifecycle invariant on ${server}`, () => {
    let base: string;
    const kc = () => loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });
    const run = Date.now().toString(36);
    const target = `rb-life-${server}-${run}`;
    // Names unique per run: the shared apiserver keeps every run's entries, and a host that an
    // entry in another namespace declares is not written (src/plan/elsewhere.ts).
    const services = [
      ...Array.from({ length: 4 }, (_, i) => `life-${server}-${run}-${i}`),
      ...Array.from({ length: 2 }, (_, i) => `providers:org.rb.life.${server}.r${run}.Api${i}:1.0.0:`),
    ];
    const slots: Slot[] = services.flatMap((service, i) => [
      { service, ip: `127.60.${i}.1` },
      { service, ip: `127.60.${i}.2` },
    ]);
    const metadataOf = (service: string) =>
      service.startsWith('providers:')
        ? { protocol: 'dubbo', side: 'provider', version: '1.0.0' }
        : { protocol: 'tcp' };

    beforeAll(async () => {
      base = peer(server).http;
      await kc()
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: target } } });
    });
    afterAll(async () => {
      for (const s of slots) await call(base, 'DELETE', '/v1/ns/instance', form(s, {}));
      await kc()
        .makeApiClient(CoreV1Api)
        .deleteNamespace({ name: target })
        .catch(() => undefined);
    });

    it('never deletes a service the server lists at the start and end of a run, while keys-scoped and full runs interleave', async () => {
      // When each slot became visible in the server's list, and when its deregistration began.
      const registered = new Map<string, { visibleAt: number; goneFrom?: number }[]>();
      const register = async (s: Slot) => {
        const res = await call(base, 'POST', '/v1/ns/instance', form(s, metadataOf(s.service)));
        expect(res.status, res.body).toBe(200);
        // Persistent instances are health-checked by Java Nacos 3 (TCP to a made-up address):
        // switch the cluster's checker off where the server has that API.
        const off = await call(base, 'PUT', '/v3/admin/ns/cluster', {
          namespaceId: NS,
          groupName: GROUP,
          serviceName: s.service,
          clusterName: 'DEFAULT',
          checkPort: '80',
          useInstancePort4Check: 'true',
          healthChecker: JSON.stringify({ type: 'NONE' }),
        });
        if (off.status === 200) await call(base, 'POST', '/v1/ns/instance', form(s, metadataOf(s.service)));
        await eventually(async () => (await listedIps(base, s.service)).includes(s.ip), `${s.service} ${s.ip} listed`);
        registered.set(`${s.service}|${s.ip}`, [
          ...(registered.get(`${s.service}|${s.ip}`) ?? []),
          { visibleAt: Date.now() },
        ]);
      };
      const deregister = async (s: Slot) => {
        const open = registered.get(`${s.service}|${s.ip}`)?.at(-1);
        if (open && open.goneFrom === undefined) open.goneFrom = Date.now();
        const res = await call(base, 'DELETE', '/v1/ns/instance', form(s, {}));
        expect(res.status, res.body).toBe(200);
      };
      /** Some instance of `service` was listed throughout [from, to]. */
      const listedThroughout = (service: string, from: number, to: number) =>
        slots
          .filter((s) => s.service === service)
          .some((s) =>
            (registered.get(`${s.service}|${s.ip}`) ?? []).some(
              (i) => i.visibleAt < from && (i.goneFrom === undefined || i.goneFrom > to),
            ),
          );

      const reports: { report: ReconcileReport; end: number }[] = [];
      const logger = pino({ level: 'silent' });
      const metrics = new BridgeMetrics(new Registry());
      const config = nacosAdapter.configSchema.parse({
        servers: [base.replace(/\/nacos$/, '')],
        namespaces: [NS],
        groups: [GROUP],
        push: 'grpc',
        relistInterval: '3s',
        serviceListInterval: '1s',
      });
      const adapter = nacosAdapter.create(config, {
        source: 'nacos',
        logger,
        baseDir: '.',
        resolveSecret: secretResolver({}, '.'),
        metrics,
      });
      const sink = kubeSink({
        kc: kc(),
        namespaces: [target],
        apiVersion: 'auto',
        fieldManager: 'registry-bridge',
        qps: 100,
        concurrency: 8,
        logger,
        metrics,
      });
      const abort = new AbortController();
      const controller = new Controller(
        [
          {
            name: 'nacos',
            kind: 'nacos',
            adapter,
            synth: { ...defaultSynthOptions, namespace: target, hostTemplate: '{service}.{namespace}.nacos' },
          },
        ],
        sink,
        { policy: 'sync', maxDeletes: 100, dryRun: false, resyncMs: 2_500, debounceMs: 20 },
        { logger, metrics, onReport: (report) => reports.push({ report, end: Date.now() }) },
        abort.signal,
      );

      const random = seeded(21);
      const up = new Set<Slot>();
      try {
        // Half the slots up before the bridge starts, the rest comes and goes while it runs.
        for (const s of slots.filter((_, i) => i % 2 === 0)) {
          await register(s);
          up.add(s);
        }
        controller.start();
        for (let step = 0; step < 70; step++) {
          const s = slots[Math.floor(random() * slots.length)]!;
          if (up.has(s)) {
            await deregister(s);
            up.delete(s);
          } else {
            await register(s);
            up.add(s);
          }
          await new Promise((r) => setTimeout(r, Math.floor(random() * 400)));
        }

        // Converged: kube holds one entry per service with instances, with exactly those instances.
        const custom = kc().makeApiClient(CustomObjectsApi);
        await eventually(
          async () => {
            const expected = new Map<string, string[]>();
            for (const service of services) {
              const ips = await listedIps(base, service);
              if (ips.length > 0) expected.set(service, ips);
            }
            const list = (await custom.listNamespacedCustomObject({
              group: 'networking.istio.io',
              version: 'v1',
              namespace: target,
              plural: 'serviceentries',
            })) as {
              items: {
                metadata: { annotations?: Record<string, string> };
                spec: { endpoints?: { address: string }[] };
              }[];
            };
            const actual = new Map(
              list.items.map((o) => [
                decodeURIComponent(o.metadata.annotations?.['registry-bridge.io/service']?.split('/').at(-1) ?? ''),
                (o.spec.endpoints ?? []).map((e) => e.address).sort(),
              ]),
            );
            const want = new Map(
              [...expected].map(([s, ips]) => [s.startsWith('providers:') ? s.split(':')[1]! : s, ips]),
            );
            return JSON.stringify([...actual].sort()) === JSON.stringify([...want].sort());
          },
          'kube holds what the server lists',
          30_000,
        );
      } finally {
        abort.abort();
        await controller.stop();
        await adapter.close();
        await sink.close?.();
      }

      // The invariant, for every deletion of every run.
      const interfaceToService = new Map(
        services.map((s) => [s.startsWith('providers:') ? s.split(':')[1]! : s, s] as const),
      );
      let checked = 0;
      const violations: string[] = [];
      for (const { report, end } of reports) {
        const start = end - report.durationMs;
        for (const o of report.outcomes) {
          if (!o.ok || o.change.action !== 'delete') continue;
          const name = decodeURIComponent(o.change.observed?.service?.split('/').at(-1) ?? '');
          const service = interfaceToService.get(name);
          if (service === undefined) continue;
          checked += 1;
          // A margin before the run's start: the start is taken from its end and duration.
          if (listedThroughout(service, start - 50, end))
            violations.push(`${report.scope} run deleted ${service}, listed from before ${start} to after ${end}`);
        }
      }
      const keysRuns = reports.filter((r) => r.report.scope === 'keys').length;
      const fullRuns = reports.length - keysRuns;
      console.log(
        `[${server}] ${reports.length} runs (${keysRuns} keys-scoped, ${fullRuns} full), ${checked} deletions checked`,
      );
      expect(violations).toEqual([]);
      // The scenario did what it is for: both kinds of runs, and deletions to check.
      expect(keysRuns).toBeGreaterThan(0);
      expect(fullRuns).toBeGreaterThan(1);
      expect(checked).toBeGreaterThan(0);
    }, 240_000);
  });
}

describe.skipIf(!hasPeer('nacos'))("Nacos's protect threshold on the Java server", () => {
  it('publishes every instance while the server says the threshold is reached, and says so in the log and a metric', async () => {
    const base = peer('nacos').http;
    const service = `pt-${Date.now().toString(36)}`;
    const slot = { ns: NS, ip: '127.0.0.1', port: '9' }; // nothing listens: the TCP check fails
    // A group of its own: the metric counts this service only.
    const where = { namespaceId: slot.ns, groupName: 'PROTECT', serviceName: service };
    const reg = await call(base, 'POST', '/v1/ns/instance', {
      ...where,
      ip: slot.ip,
      port: slot.port,
      ephemeral: 'false',
    });
    expect(reg.status, reg.body).toBe(200);
    try {
      // The server health-checks persistent instances over TCP; a threshold of 0.8 with the
      // only instance unhealthy is reached.
      const set = await call(base, 'PUT', '/v3/admin/ns/service', {
        ...where,
        protectThreshold: '0.8',
        ephemeral: 'false',
      });
      expect(set.status, set.body).toBe(200);
      await eventually(
        async () => {
          const res = await call(base, 'GET', '/v1/ns/instance/list', {
            serviceName: `PROTECT@@${service}`,
            namespaceId: slot.ns,
            healthyOnly: 'false',
          });
          return (JSON.parse(res.body) as { reachProtectionThreshold?: boolean }).reachProtectionThreshold === true;
        },
        'the server reports its protect threshold reached',
        60_000,
      );
      const logs: string[] = [];
      const registry = new Registry();
      const adapter = nacosAdapter.create(
        nacosAdapter.configSchema.parse({
          servers: [base.replace(/\/nacos$/, '')],
          namespaces: [slot.ns],
          groups: ['PROTECT'],
          push: false,
        }),
        {
          source: 'nacos',
          logger: pino({ level: 'info' }, { write: (s: string) => void logs.push(s) }),
          baseDir: '.',
          resolveSecret: secretResolver({}, '.'),
          metrics: new BridgeMetrics(registry),
        },
      );
      try {
        const snap = await adapter.list(AbortSignal.timeout(30_000));
        const read = snap.services.find((s) => s.key.name === service);
        expect(read?.instances.map((i) => `${i.address}:${i.port} healthy=${i.healthy}`)).toEqual([
          `${slot.ip}:${slot.port} healthy=true`,
        ]);
        expect(logs.join('')).toContain('nacos protect threshold reached');
        const metric = (await registry.getSingleMetric('registry_bridge_protected_services')?.get())?.values ?? [];
        expect(metric.find((v) => v.labels.by === 'nacos-protect-threshold')?.value).toBe(1);
      } finally {
        await adapter.close();
      }
    } finally {
      await call(base, 'DELETE', '/v1/ns/instance', { ...where, ip: slot.ip, port: slot.port, ephemeral: 'false' });
    }
  }, 120_000);
});
