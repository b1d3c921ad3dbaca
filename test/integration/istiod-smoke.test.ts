/**
 * Smoke test of the real istiod peer: a ServiceEntry written to the test kube-apiserver shows
 * up in istiod's /debug/registryz. With RB_CAPTURE_FIXTURES=1 it also stores the real
 * /debug/registryz and /debug/syncz payloads under test/fixtures/istiod/<istio version>/.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

async function peerRecord(...names: string[]): Promise<{ version?: string; endpoints: Record<string, string> }> {
  const file =
    process.env.RB_PEERS_FILE ??
    path.join(process.env.RB_PEERS_RUN_DIR || path.join(process.env.TMPDIR || '/tmp', 'registry-bridge-peers'), 'state.json');
  const raw = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  const peers = (raw.peers ?? raw) as Record<string, { version?: string; endpoints?: Record<string, string> }>;
  for (const n of names) {
    const p = peers[n];
    if (p?.endpoints) return { ...(p.version ? { version: p.version } : {}), endpoints: p.endpoints };
  }
  throw new Error(`no running peer named ${names.join('/')} in ${file}`);
}

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const GROUP = 'networking.istio.io';
const VERSION = 'v1';
const PLURAL = 'serviceentries';
const NS = 'default';
const HOST = 'www.baidu.com';

interface RegistryService {
  hostname: string;
  ports?: Array<{ name: string; port: number; protocol: string }>;
  MeshExternal?: boolean;
  Resolution?: number;
  Attributes?: { ServiceRegistry?: string; Name?: string; Namespace?: string; ObjectName?: string };
}

describe('istiod peer', () => {
  let api: k8s.CustomObjectsApi;
  let debug: string;
  let istioVersion: string;
  const name = `smoke-baidu-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    const kube = await peerRecord('kube-apiserver', 'kube');
    const istiod = await peerRecord('istiod');
    debug = istiod.endpoints.debug!;
    istioVersion = istiod.version ?? 'unknown';
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.endpoints.kubeconfig!);
    api = kc.makeApiClient(k8s.CustomObjectsApi);
  });

  afterAll(async () => {
    await api?.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name }).catch(() => {});
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

    if (process.env.RB_CAPTURE_FIXTURES === '1') {
      const dir = path.join(REPO, 'test', 'fixtures', 'istiod', istioVersion);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, 'registryz.json'), JSON.stringify(JSON.parse(raw), null, 2) + '\n');
      const syncz = await (await fetch(`${debug}/debug/syncz`)).text();
      await fs.writeFile(path.join(dir, 'syncz.json'), JSON.stringify(JSON.parse(syncz), null, 2) + '\n');
    }
  });
});
