/**
 * The proxy hop on every ServiceEntry shape (test/fixtures/istiod/shapes.ts), against the real
 * kube-apiserver and istiod: two xDS probes, one plain (the 0.0.0.0 view) and one presenting itself
 * as a DNS-capturing sidecar (VIP listeners for auto-allocated addresses), must both find every
 * shape present; a host not written, a wrong port, protocol or resolution must not pass; of two
 * TCP entries without addresses on one port, the loser is reported with the host that holds it.
 * With RB_CAPTURE_FIXTURES=1 what istiod sends each probe is saved (trimmed to the shapes) under
 * test/fixtures/istiod/<version>/shapes/ for the parser unit tests.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { checkProxy, clusterName, expectationOfObject, type KubeServiceEntry } from '../../src/verify/compare.js';
import { istiodDebugClient } from '../../src/verify/istiod-http.js';
import type { Expectation } from '../../src/verify/types.js';
import { XdsProbe } from '../../src/verify/xds-probe.js';
import { COLLISION_PORT, SHAPES_DOMAIN, shapes, type Shape } from '../fixtures/istiod/shapes.js';
import { hasPeer, peerRecord, peers } from '../peers/endpoints.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const all = shapes();

/** Keeps from an istiod config dump only what concerns the shapes (the mesh holds other tests' entries). */
export function trimToShapes(dump: string): unknown {
  const ports = new Set(all.map((s) => s.port));
  const doc = JSON.parse(dump) as { configs?: Record<string, unknown>[] };
  const mentions = (v: unknown) => JSON.stringify(v).includes(SHAPES_DOMAIN);
  for (const section of doc.configs ?? []) {
    const type = String(section['@type'] ?? '');
    const keep = (key: string, pred: (e: Record<string, unknown>) => boolean) => {
      const list = section[key];
      if (Array.isArray(list)) section[key] = (list as Record<string, unknown>[]).filter(pred);
    };
    if (type.endsWith('ClustersConfigDump')) {
      keep('staticClusters', () => false);
      keep('dynamicActiveClusters', (e) => mentions((e as { cluster?: { name?: string } }).cluster?.name));
    } else if (type.endsWith('ListenersConfigDump')) {
      keep('staticListeners', () => false);
      keep('dynamicListeners', (e) => {
        const port = (e as { activeState?: { listener?: { address?: { socketAddress?: { portValue?: number } } } } })
          .activeState?.listener?.address?.socketAddress?.portValue;
        return port !== undefined && ports.has(port);
      });
    } else if (type.endsWith('RoutesConfigDump')) {
      keep('staticRouteConfigs', () => false);
      keep('dynamicRouteConfigs', (e) => {
        const name = (e as { routeConfig?: { name?: string } }).routeConfig?.name ?? '';
        return ports.has(Number(name)) || name.includes(SHAPES_DOMAIN);
      });
    } else if (type.endsWith('EndpointsConfigDump')) {
      keep('staticEndpointConfigs', () => false);
      keep('dynamicEndpointConfigs', (e) =>
        mentions((e as { endpointConfig?: { clusterName?: string } }).endpointConfig?.clusterName),
      );
    } else {
      // bootstrap, secrets, scoped routes: nothing the verifier reads
      for (const k of Object.keys(section)) if (k !== '@type') delete section[k];
    }
  }
  return doc;
}

const expectationOf = (s: Shape): Expectation => expectationOfObject(s.serviceEntry as unknown as KubeServiceEntry);

describe.skipIf(!hasPeer('kube') || !hasPeer('istiod'))(
  'the proxy hop on every ServiceEntry shape, real istiod',
  () => {
    let objects: k8s.KubernetesObjectApi;
    const written: k8s.KubernetesObject[] = [];
    const probes: { mode: 'default' | 'dns-capture'; probe: XdsProbe }[] = [];

    async function apply(o: Record<string, unknown>) {
      await objects.patch(
        o as k8s.KubernetesObject,
        undefined,
        undefined,
        'registry-bridge',
        true,
        k8s.PatchStrategy.ServerSideApply,
      );
      written.push(o as k8s.KubernetesObject);
    }

    beforeAll(async () => {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(peers().kube.kubeconfig);
      objects = k8s.KubernetesObjectApi.makeApiClient(kc);
      for (const s of all) {
        await apply(s.serviceEntry);
        if (s.virtualServiceObject) await apply(s.virtualServiceObject);
      }
      // istiod allocates addresses (status.addresses) to entries without any, asynchronously: a
      // DNS-capturing sidecar sees them only once written. Wait for every one it will allocate.
      const istiod = istiodDebugClient(peers().istiod.debug);
      const allocatable = all.filter((s) => s.resolution !== 'NONE' && !s.addresses).map((s) => s.host);
      const deadline = Date.now() + 90_000;
      for (;;) {
        const reg = JSON.parse(await istiod.get('/debug/registryz', AbortSignal.timeout(10_000))) as {
          hostname: string;
          autoAllocatedIPv4Address?: string;
        }[];
        const allocated = new Set(reg.filter((e) => e.autoAllocatedIPv4Address).map((e) => e.hostname));
        if (allocatable.every((h) => allocated.has(h))) break;
        if (Date.now() > deadline) throw new Error('istiod did not allocate addresses to the shapes within 90 s');
        await new Promise((r) => setTimeout(r, 250));
      }
      for (const mode of ['default', 'dns-capture'] as const) {
        const probe = await XdsProbe.connect({
          address: peers().istiod.xds,
          namespace: 'default',
          podName: `rb-shapes-${mode}-${process.pid}`,
          dnsCapture: mode === 'dns-capture',
        });
        probes.push({ mode, probe });
        // Every cluster, and every HTTP port's route configuration, has arrived.
        await probe.waitFor(
          () => {
            const v = probe.snapshot().view;
            return all.every(
              (s) =>
                v.clusters.has(clusterName(s.port, s.host)) &&
                (!['HTTP', 'GRPC'].includes(s.protocol) ||
                  [...v.routes.values()].some((rc) => rc.virtualHosts.some((vh) => vh.name === `${s.host}:${s.port}`))),
            );
          },
          undefined,
          60_000,
          'every shape',
        );
      }
      if (process.env.RB_CAPTURE_FIXTURES === '1') {
        const dir = path.join(REPO, 'test', 'fixtures', 'istiod', peerRecord('istiod').version, 'shapes');
        await fs.mkdir(dir, { recursive: true });
        const istiod = istiodDebugClient(peers().istiod.debug);
        const signal = AbortSignal.timeout(20_000);
        for (const { mode, probe } of probes) {
          const dump = await istiod.get(`/debug/config_dump?proxyID=${probe.proxyId}`, signal);
          await fs.writeFile(
            path.join(dir, `config_dump-${mode}.json`),
            JSON.stringify(trimToShapes(dump), null, 1) + '\n',
          );
        }
        const nds = probes.find((p) => p.mode === 'dns-capture')!.probe.snapshot().view.nameTable!;
        const shapesNds = Object.fromEntries([...nds].filter(([h]) => h.endsWith(SHAPES_DOMAIN)).sort());
        await fs.writeFile(path.join(dir, 'nds-dns-capture.json'), JSON.stringify(shapesNds, null, 1) + '\n');
        const registryz = (JSON.parse(await istiod.get('/debug/registryz', signal)) as { hostname: string }[]).filter(
          (e) => e.hostname.endsWith(SHAPES_DOMAIN),
        );
        await fs.writeFile(path.join(dir, 'registryz.json'), JSON.stringify(registryz, null, 1) + '\n');
        const yaml = all
          .flatMap((s) => [s.serviceEntry, ...(s.virtualServiceObject ? [s.virtualServiceObject] : [])])
          .map((o) => JSON.stringify(o))
          .join('\n---\n');
        await fs.writeFile(path.join(dir, 'objects.yaml'), yaml + '\n');
      }
    }, 180_000);

    afterAll(async () => {
      for (const { probe } of probes) probe.close();
      for (const o of written) await objects?.delete(o).catch(() => {});
    });

    const observe = (probe: XdsProbe) => ({
      ok: true as const,
      source: `xds as ${probe.proxyId}`,
      value: {
        namespace: 'default',
        view: probe.snapshot().view,
        kinds: new Set(['cluster', 'listener', 'route', 'endpoint'] as const),
      },
    });

    it.each(['default', 'dns-capture'] as const)(
      '%s probe: every shape is present (the colliding loser aside)',
      (mode) => {
        const { probe } = probes.find((p) => p.mode === mode)!;
        const o = observe(probe);
        const failures: string[] = [];
        for (const s of all.filter((x) => x.port !== COLLISION_PORT)) {
          const c = checkProxy(expectationOf(s), o, Date.now());
          if (c.status !== 'ok') failures.push(`${s.id}: ${c.status}: ${c.detail.join('; ')}`);
        }
        expect(failures).toEqual([]);
      },
    );

    it.each(['default', 'dns-capture'] as const)(
      '%s probe: absent, wrong port, protocol or resolution never pass',
      (mode) => {
        const { probe } = probes.find((p) => p.mode === mode)!;
        const o = observe(probe);
        for (const s of all.filter((x) => x.port !== COLLISION_PORT)) {
          const e = expectationOf(s);
          const port = e.ports[0]!;
          const absent = checkProxy({ ...e, host: `absent-${s.host}` }, o, Date.now());
          expect(absent.status, `${s.id} absent`).toBe('missing');
          const wrongPort = checkProxy({ ...e, ports: [{ ...port, number: port.number + 1000 }] }, o, Date.now());
          expect(wrongPort.status, `${s.id} wrong port`).toBe('missing');
          const otherProtocol = ['HTTP', 'GRPC'].includes(s.protocol) ? 'TCP' : 'HTTP';
          const wrongProtocol = checkProxy({ ...e, ports: [{ ...port, protocol: otherProtocol }] }, o, Date.now());
          expect(wrongProtocol.status, `${s.id} as ${otherProtocol}: ${wrongProtocol.detail.join('; ')}`).not.toBe(
            'ok',
          );
          const otherResolution = s.resolution === 'DNS' ? 'STATIC' : 'DNS';
          const wrongResolution = checkProxy(
            { ...e, resolution: otherResolution as Expectation['resolution'] },
            o,
            Date.now(),
          );
          expect(wrongResolution.status, `${s.id} as ${otherResolution}`).toBe('differs');
        }
      },
    );

    it('dns-capture probe: the NDS name table gives each shape with an address its IPs, and the TCP ones a VIP listener', () => {
      const { probe } = probes.find((p) => p.mode === 'dns-capture')!;
      const view = probe.snapshot().view;
      expect(view.nameTable).toBeDefined();
      for (const s of all) {
        const info = view.nameTable!.get(s.host);
        const vip = (s.serviceEntry.spec as { addresses?: string[] }).addresses?.[0];
        if (s.resolution === 'NONE' && !vip) {
          expect(info, `${s.id}: no address, no entry`).toBeUndefined();
          continue;
        }
        expect(info, s.id).toBeDefined();
        if (vip) expect(info!.ips).toContain(vip);
        else
          expect(
            info!.ips.some((ip) => ip.startsWith('240.240.')),
            `${s.id}: ${info!.ips.join(', ')}`,
          ).toBe(true);
        if (s.protocol === 'TCP')
          expect(
            view.listeners.some((l) => l.port === s.port && info!.ips.includes(l.address!)),
            s.id,
          ).toBe(true);
      }
      // the plain probe gets no name table
      expect(probes.find((p) => p.mode === 'default')!.probe.snapshot().view.nameTable).toBeUndefined();
      // a host with a VIP listener that the table lacks is reported at the proxy hop
      const tcp = all.find((s) => s.id === 'tcp-dns-novip-novs')!;
      const table = new Map(view.nameTable);
      table.delete(tcp.host);
      const o = observe(probe);
      const c = checkProxy(
        expectationOf(tcp),
        { ...o, value: { ...o.value, view: { ...view, nameTable: table } } },
        Date.now(),
      );
      expect(c.status).toBe('missing');
      expect(c.detail.at(-1)).toMatch(
        new RegExp(
          `^no entry for ${tcp.host.replace(/\./g, '\\.')} in the DNS name table \\(NDS\\), though listener 240\\.240\\.\\d+\\.\\d+_${tcp.port} is bound to its address`,
        ),
      );
    });

    it('the CLI: verify --xds with and without --probe-dns-capture passes on a TLS and a TCP shape (exit 0)', async () => {
      const picked = all.filter((s) =>
        ['tls-dns-vip-novs', 'tcp-dns-novip-novs', 'http-static-novip-vs'].includes(s.id),
      );
      const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'rb-shapes-')), 'desired.yaml');
      await fs.writeFile(file, picked.map((s) => JSON.stringify(s.serviceEntry)).join('\n---\n'));
      for (const flag of [[], ['--probe-dns-capture']]) {
        const out: string[] = [];
        const io = {
          stdout: { write: (t: string) => (out.push(t), true) },
          stderr: { write: (t: string) => (out.push(t), true) },
          env: {},
        } as never;
        const code = await main(
          ['verify', '--no-kube', '--desired', file, '--xds', peers().istiod.xds, ...flag, '--timeout', '20s'],
          io,
        );
        expect(out.join(''), `verify ${flag.join(' ')}`).toMatch(/3\/3 hosts propagated/);
        expect(code).toBe(0);
      }
    });

    it('two TCP entries without addresses on one port: the loser is reported with the host that holds the port', () => {
      const { probe } = probes.find((p) => p.mode === 'default')!;
      const o = observe(probe);
      const [a, b] = all
        .filter((x) => x.port === COLLISION_PORT)
        .map((s) => checkProxy(expectationOf(s), o, Date.now()));
      const verdicts = [a!, b!].map((c) => c.status).sort();
      expect(verdicts).toEqual(['missing', 'ok']);
      const loser = [a!, b!].find((c) => c.status === 'missing')!;
      const winner = all.filter((x) => x.port === COLLISION_PORT)[
        [a!, b!].indexOf([a!, b!].find((c) => c.status === 'ok')!)
      ]!;
      expect(loser.detail.join(' ')).toContain(`another ServiceEntry holds port ${COLLISION_PORT}: ${winner.host}`);
    });
  },
);
