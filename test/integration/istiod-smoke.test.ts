/**
 * Smoke test of the real istiod peer: a ServiceEntry written to the test kube-apiserver shows
 * up in istiod's /debug/registryz, and reaches a connected stand-in sidecar (xds-probe: istio's
 * own ADS client) as cluster outbound|80||www.baidu.com, with /debug/syncz showing it ACKed.
 * (Fixtures of these payloads are captured by verify.test.ts with RB_CAPTURE_FIXTURES=1.)
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer, peer, peerRecord } from '../peers/endpoints.js';
import { startXdsProbe, type XdsProbe } from '../peers/istiod.js';

const GROUP = 'networking.istio.io';
const VERSION = 'v1';
const PLURAL = 'serviceentries';
const NS = 'default';
const HOST = 'www.baidu.com';

interface SynczEntry {
  proxy?: string;
  proxy_type?: string;
  cluster_sent?: string;
  cluster_acked?: string;
  [k: string]: unknown;
}

interface RegistryService {
  hostname: string;
  ports?: Array<{ name: string; port: number; protocol: string }>;
  MeshExternal?: boolean;
  Resolution?: number;
  Attributes?: { ServiceRegistry?: string; Name?: string; Namespace?: string; ObjectName?: string };
}

describe.skipIf(!hasPeer('istiod'))('istiod peer', () => {
  let api: k8s.CustomObjectsApi;
  let debug: string;
  let probe: XdsProbe | undefined;
  const name = `smoke-baidu-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    debug = peer('istiod').debug;
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(peer('kube').kubeconfig);
    api = kc.makeApiClient(k8s.CustomObjectsApi);
    const dataDir = peerRecord('istiod').dataDir ?? path.join(os.tmpdir(), 'rb-xds-probe');
    probe = await startXdsProbe({ xds: peer('istiod').xds, dataDir, workload: `rb-probe-${name.slice(-6)}` });
  });

  afterAll(async () => {
    await probe?.stop();
    await api
      ?.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name })
      .catch(() => {});
  });

  it('is ready and serves /debug/registryz from loopback', async () => {
    const res = await fetch(`${debug}/debug/registryz`);
    expect(res.status).toBe(200);
    expect(Array.isArray(await res.json())).toBe(true);
  });

  it('a ServiceEntry for www.baidu.com appears in /debug/registryz', async () => {
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: PLURAL,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'ServiceEntry',
        metadata: { name, namespace: NS },
        spec: {
          hosts: [HOST],
          ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
          resolution: 'DNS',
          location: 'MESH_INTERNAL',
        },
      },
    });
    const t0 = Date.now();
    let found: RegistryService | undefined;
    let raw = '';
    while (!found && Date.now() - t0 < 30_000) {
      raw = await (await fetch(`${debug}/debug/registryz`)).text();
      found = (JSON.parse(raw) as RegistryService[]).find((s) => s.hostname === HOST && s.Attributes?.Namespace === NS);
      if (!found) await new Promise((r) => setTimeout(r, 50));
    }
    expect(found, `host ${HOST} not in registryz after 30 s`).toBeDefined();
    const ms = Date.now() - t0;
    expect(found!.Attributes?.ServiceRegistry).toBe('External');
    expect(found!.Attributes?.Name).toBe(HOST);
    expect(found!.Attributes?.ObjectName).toBe(name);
    expect(found!.MeshExternal).toBe(false);
    expect(found!.Resolution).toBe(1); // istiod's model.DNSLB
    expect(found!.ports).toEqual([{ name: 'http', port: 80, protocol: 'HTTP' }]);
    console.log(`registryz showed ${HOST} ${ms} ms after create`);
  });

  it('the connected sidecar gets cluster outbound|80||www.baidu.com and ACKs it (syncz)', async () => {
    const cluster = `outbound|80||${HOST}`;
    const t0 = Date.now();
    let dump = '';
    let mine: SynczEntry | undefined;
    let syncz = '';
    for (;;) {
      dump = await (await fetch(`${debug}/debug/config_dump?proxyID=${encodeURIComponent(probe!.proxy)}`)).text();
      syncz = await (await fetch(`${debug}/debug/syncz`)).text();
      mine = (JSON.parse(syncz) as SynczEntry[]).find((e) => e.proxy?.startsWith(probe!.proxy));
      const cds = mine && mine.cluster_sent && mine.cluster_sent === mine.cluster_acked;
      if (dump.includes(cluster) && cds) break;
      if (Date.now() - t0 > 30_000) throw new Error(`not in sync after 30 s: ${JSON.stringify(mine)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(mine?.proxy_type).toBe('sidecar');
    expect(mine?.cluster_acked).toBe(mine?.cluster_sent);
    console.log(`proxy ${mine?.proxy} has ${cluster}, CDS acked ${mine?.cluster_acked}`);
  });
});
