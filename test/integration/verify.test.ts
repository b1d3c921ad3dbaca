/**
 * The propagation verifier against the real kube-apiserver and istiod of the harness: a
 * ServiceEntry in the shape the bridge writes is followed through kube → registryz → the xDS
 * probe (cluster, route, SNI chain) → syncz, with measured latencies; an entry exported to
 * another namespace and a hand-edited port are reported at the hop where they fail.
 * With RB_CAPTURE_FIXTURES=1 the real payloads are stored under test/fixtures/istiod/<version>/.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../unit/cli-harness.js';
import { synthServiceEntry } from '../../src/synth/index.js';
import { defaultSynthOptions, type DesiredEntry, type ServiceEntryObject } from '../../src/synth/index.js';
import { expectationOfDesired } from '../../src/verify/compare.js';
import { istiodDebugClient, tokenFromRequest } from '../../src/verify/istiod-http.js';
import { kubeProbe } from '../../src/verify/kube-probe.js';
import type { HostReport } from '../../src/verify/types.js';
import { verifyHosts, type VerifyDeps } from '../../src/verify/verify.js';
import { XdsProbe } from '../../src/verify/xds-probe.js';
import { hasPeer, peerRecord, peers } from '../peers/endpoints.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const suffix = randomBytes(3).toString('hex');
const OTHER_NS = 'rb-verify-other';

function desired(
  name: string,
  ports: { number: number; name: string; protocol: string }[],
  exportTo?: string[],
): DesiredEntry {
  const host = `${name}-${suffix}.verify.example.com`;
  const r = synthServiceEntry(
    { key: { source: 'itest', namespace: 'public', group: 'g', name }, host, ports, instances: [] },
    { ...defaultSynthOptions, hostTemplate: '{service}', namespace: 'default', ...(exportTo ? { exportTo } : {}) },
  );
  if (r.kind !== 'ok') throw new Error(`synth ${name}: ${r.kind}`);
  return r.entry;
}

function table(r: HostReport): string {
  return r.hops
    .map(
      (h) =>
        `  ${h.hop.padEnd(6)} ${h.status.padEnd(8)} ${h.latencyMs !== undefined ? `${h.latencyMs} ms` : '-'}  ${h.detail.join('; ')}`,
    )
    .join('\n');
}

describe.skipIf(!hasPeer('kube') || !hasPeer('istiod'))('verify against the real kube-apiserver and istiod', () => {
  let kc: k8s.KubeConfig;
  let objects: k8s.KubernetesObjectApi;
  let probe: XdsProbe;
  let deps: VerifyDeps;
  const written: ServiceEntryObject[] = [];

  /** Server-side apply with the bridge's field manager, as the kube sink writes. */
  async function apply(o: ServiceEntryObject): Promise<number> {
    const t = Date.now();
    await objects.patch(
      o as unknown as k8s.KubernetesObject,
      undefined,
      undefined,
      'registry-bridge',
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
    written.push(o);
    return t;
  }

  beforeAll(async () => {
    kc = new k8s.KubeConfig();
    kc.loadFromFile(peers().kube.kubeconfig);
    objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: OTHER_NS } } }).catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
    probe = await XdsProbe.connect({ address: peers().istiod.xds, namespace: 'default' });
    deps = { kube: kubeProbe(kc), istiod: istiodDebugClient(peers().istiod.debug), xds: probe, clock: Date.now };
  });

  afterAll(async () => {
    probe?.close();
    for (const o of written) await objects?.delete(o as unknown as k8s.KubernetesObject).catch(() => {});
  });

  it('a ServiceEntry written by the bridge is seen at every hop, with latencies', async () => {
    const entry = desired('shop', [
      { number: 80, name: 'http', protocol: 'http' },
      { number: 9443, name: 'tls', protocol: 'tls' },
    ]);
    const writtenAt = await apply(entry.object);
    const applyMs = Date.now() - writtenAt;
    const report = await verifyHosts([{ expectation: expectationOfDesired(entry), writtenAt }], deps, {
      timeoutMs: 30_000,
      intervalMs: 10,
    });
    const host = report.hosts[0]!;
    console.log(
      `propagation of ${entry.host} (istiod ${peerRecord('istiod').version}; the apply call itself took ${applyMs} ms):\n${table(host)}`,
    );
    expect(host.hops.map((h) => [h.hop, h.status])).toEqual([
      ['kube', 'ok'],
      ['istiod', 'ok'],
      ['proxy', 'ok'],
      ['sync', 'ok'],
    ]);
    for (const h of host.hops) expect(h.latencyMs).toBeGreaterThanOrEqual(0);
    const snap = probe.snapshot();
    expect(snap.view.clusters.get(`outbound|80||${entry.host}`)?.type).toBe('STRICT_DNS');
    expect(snap.view.routes.get('80')?.virtualHosts.some((v) => v.name === `${entry.host}:80`)).toBe(true);

    if (process.env.RB_CAPTURE_FIXTURES === '1') {
      const dir = path.join(REPO, 'test', 'fixtures', 'istiod', peerRecord('istiod').version);
      await fs.mkdir(dir, { recursive: true });
      const istiod = deps.istiod!;
      const signal = AbortSignal.timeout(10_000);
      const pretty = (t: string) => JSON.stringify(JSON.parse(t), null, 2) + '\n';
      await fs.writeFile(path.join(dir, 'registryz.json'), pretty(await istiod.get('/debug/registryz', signal)));
      await fs.writeFile(path.join(dir, 'syncz.json'), pretty(await istiod.get('/debug/syncz', signal)));
      await fs.writeFile(
        path.join(dir, 'config_dump.json'),
        pretty(await istiod.get(`/debug/config_dump?proxyID=${probe.proxyId}`, signal)),
      );
      await fs.writeFile(
        path.join(dir, 'probe-host.json'),
        JSON.stringify({ host: entry.host, ports: [80, 9443], resolution: 'DNS', probeNamespace: 'default' }, null, 2) +
          '\n',
      );
    }
  });

  it('exported only to another namespace: istiod has it, the proxy hop fails and says why', async () => {
    const entry = desired('hidden', [{ number: 80, name: 'http', protocol: 'http' }], [OTHER_NS]);
    const writtenAt = await apply(entry.object);
    const report = await verifyHosts([{ expectation: expectationOfDesired(entry), writtenAt }], deps, {
      timeoutMs: 3_000,
      intervalMs: 50,
    });
    const host = report.hosts[0]!;
    console.log(`${entry.host} exported to ${OTHER_NS}:\n${table(host)}`);
    expect(report.ok).toBe(false);
    expect(host.hops.map((h) => h.status)).toEqual(['ok', 'ok', 'missing', 'missing']);
    const proxy = host.hops[2]!;
    expect(proxy.detail).toContain(`no cluster outbound|80||${entry.host}`);
    expect(proxy.detail).toContain(
      `the ServiceEntry is exported to [${OTHER_NS}] only: a proxy in namespace default does not receive it`,
    );
  });

  it('a port changed by hand in kube is reported at kube, istiod and the proxy', async () => {
    const entry = desired('drift', [{ number: 80, name: 'http', protocol: 'http' }]);
    const edited: ServiceEntryObject = {
      ...entry.object,
      spec: { ...entry.object.spec, ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }] },
    };
    const writtenAt = await apply(edited);
    // Check against what the bridge wrote until the edit has reached the probe.
    let host: HostReport;
    do {
      host = (await verifyHosts([{ expectation: expectationOfDesired(entry) }], deps)).hosts[0]!;
      if (host.hops[2]!.detail.some((d) => d.includes('8080'))) break;
      await new Promise((r) => setTimeout(r, 20));
    } while (Date.now() - writtenAt < 10_000);
    console.log(`${entry.host} with port 8080 in kube, 80 written:\n${table(host)}`);
    const [kube, istiod, proxy] = host.hops;
    expect(kube!.status).toBe('differs');
    expect(kube!.detail).toContain('spec does not match its content-hash annotation: edited outside the bridge');
    expect(kube!.detail).toContain('ports differ: kube has 8080/HTTP, the bridge wrote 80/HTTP');
    expect(istiod!.detail).toContain('ports differ: istiod has 8080/HTTP, the bridge wrote 80/HTTP');
    expect(proxy!.detail).toContain(
      `no cluster outbound|80||${entry.host} (has outbound|8080||${entry.host}: port differs)`,
    );
  });

  it('a TokenRequest token (audience istio-ca) is obtained and sent to istiod', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core
      .createNamespacedServiceAccount({ namespace: 'istio-system', body: { metadata: { name: 'rb-verify' } } })
      .catch((e: { code?: number }) => {
        if (e.code !== 409) throw e;
      });
    const token = tokenFromRequest(kc, 'istio-system', 'rb-verify');
    const jwt = await token(AbortSignal.timeout(5_000));
    const claims = JSON.parse(Buffer.from(jwt!.split('.')[1]!, 'base64url').toString()) as {
      aud: string[];
      sub: string;
    };
    expect(claims.aud).toEqual(['istio-ca']);
    expect(claims.sub).toBe('system:serviceaccount:istio-system:rb-verify');
    // istiod lets loopback callers in regardless; this proves the header does not break the call.
    const body = await istiodDebugClient(peers().istiod.debug, token).get(
      '/debug/registryz',
      AbortSignal.timeout(5_000),
    );
    expect(Array.isArray(JSON.parse(body))).toBe(true);
  });

  it('the CLI: verify exits 0 for a propagated host and 5 for the hidden one; trace measures each hop', async () => {
    const run = async (args: string[]) => {
      const { code, out, err } = await runCli(args);
      return { code, out: out(), err: err() };
    };
    const common = [
      '--kubeconfig',
      peers().kube.kubeconfig,
      '--istiod',
      peers().istiod.debug,
      '--xds',
      peers().istiod.xds,
      '--log-level',
      'silent',
    ];
    const shop = written.find((o) => o.metadata.name.startsWith('shop-'))!.spec.hosts[0]!;
    const hidden = written.find((o) => o.metadata.name.startsWith('hidden-'))!.spec.hosts[0]!;
    const ok = await run(['verify', ...common, '--host', shop, '--timeout', '10s']);
    expect(ok.err).toBe('');
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain(`✓ ${shop}`);
    const bad = await run(['verify', ...common, '--host', hidden, '--timeout', '1s', '-o', 'json']);
    expect(bad.code).toBe(5);
    const json = JSON.parse(bad.out) as { hosts: HostReport[] };
    expect(json.hosts[0]!.hops.find((h) => h.hop === 'proxy')!.status).toBe('missing');

    const fresh = desired('traced', [{ number: 80, name: 'http', protocol: 'http' }]);
    const tracing = run(['trace', fresh.host, ...common, '--timeout', '30s']);
    await new Promise((r) => setTimeout(r, 300)); // trace is connected and polling
    await apply(fresh.object);
    const t = await tracing;
    console.log(`trace ${fresh.host}:\n${t.out}`);
    expect(t.code, t.out + t.err).toBe(0);
    expect(t.out).toMatch(/✓ kube/);
    expect(t.out).toMatch(/✓ sync/);
  });
});

describe('continuous mode propagation checks against the real istiod', () => {
  it.each([false, true])(
    'verifies each changed host after the apply and exports per-hop latency (DNS-capture probe: %s)',
    async (dnsCapture) => {
      const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
      const { tmpdir } = await import('node:os');
      const { join } = await import('node:path');
      const { parseConfig } = await import('../../src/config/load.js');
      const { adapterFactories } = await import('../../src/sources/registry.js');
      const { buildSources } = await import('../../src/controller/wiring.js');
      const { runContinuous } = await import('../../src/controller/run.js');
      const { kubeSink } = await import('../../src/sinks/kube/sink.js');
      const { loadKubeConfig } = await import('../../src/sinks/kube/client.js');
      const { BridgeMetrics } = await import('../../src/metrics.js');
      const { silentLogger } = await import('../../src/log.js');
      const { peer } = await import('../peers/endpoints.js');

      const dir = await mkdtemp(join(tmpdir(), 'rb-prop-'));
      const reg = join(dir, 'reg.json');
      const host = `prop-${dnsCapture ? 'dns-' : ''}${Date.now().toString(36)}.example.com`;
      await writeFile(
        reg,
        JSON.stringify({ services: [{ name: 'prop', host, ports: [{ number: 80, protocol: 'HTTP' }] }] }),
      );
      const kc = loadKubeConfig({ kubeconfig: peer('kube').kubeconfig });
      const config = parseConfig(
        {
          sources: [{ name: 'prop', kind: 'static', static: { path: reg }, targetNamespace: 'default' }],
          sink: { kind: 'kube' },
          controller: { resyncInterval: '30s', debounce: '50ms' },
          server: { address: '127.0.0.1', port: 0 },
          propagation: {
            enabled: true,
            istiod: peer('istiod').debug,
            xds: peer('istiod').xds,
            probeNamespace: 'default',
            probeDnsCapture: dnsCapture,
            deadline: '60s',
          },
        },
        adapterFactories,
      );
      const metrics = new BridgeMetrics();
      const logger = silentLogger();
      const sink = kubeSink({
        kc,
        namespaces: ['default'],
        apiVersion: 'auto',
        fieldManager: 'registry-bridge',
        qps: 50,
        concurrency: 4,
        logger,
        metrics,
      });
      const sources = buildSources(config, {
        logger,
        baseDir: dir,
        env: {},
        apiVersion: 'networking.istio.io/v1',
        metrics,
      });
      const shutdown = new AbortController();
      let port = 0;
      const running = runContinuous({
        config,
        sources,
        sink,
        kc,
        logger,
        metrics,
        dryRun: false,
        shutdown: shutdown.signal,
        env: {},
        onListening: (p) => (port = p),
      });
      try {
        const observed = async (hop: string) => {
          const h = await metrics.propagationSeconds.get();
          return (
            h.values.find((v) => v.metricName === 'registry_bridge_propagation_seconds_count' && v.labels.hop === hop)
              ?.value ?? 0
          );
        };
        const deadline = Date.now() + 90_000;
        while (!((await observed('kube')) > 0 && (await observed('istiod')) > 0 && (await observed('proxy')) > 0)) {
          if (Date.now() > deadline) throw new Error('propagation latencies were not observed within 90 s');
          await new Promise((r) => setTimeout(r, 200));
        }
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        expect(text).toMatch(/registry_bridge_propagation_seconds_count\{hop="proxy"\} [1-9]/);
        const unpropagated = (await (await fetch(`http://127.0.0.1:${port}/propagation`)).json()) as {
          unpropagated: unknown[];
        };
        expect(unpropagated.unpropagated).toEqual([]);
      } finally {
        shutdown.abort();
        expect(await running).toBe(0);
        await writeFile(reg, JSON.stringify({ services: [] }));
        const { reconcileOnce } = await import('../../src/controller/reconcile.js');
        await reconcileOnce(
          sources,
          sink,
          { policy: 'sync', maxDeletes: 10, dryRun: false },
          { logger, signal: new AbortController().signal },
        );
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
