/**
 * Smoke test of the real kube-apiserver peer: Istio's CRDs are served, a ServiceEntry can be
 * created and watched, and invalid ServiceEntries are refused (by istiod's validating webhook
 * for an invalid host, by the CRD's own CEL rule for a wildcard host).
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer, peer } from '../peers/endpoints.js';
import { statusText } from './kube-status.js';

const GROUP = 'networking.istio.io';
const VERSION = 'v1';
const PLURAL = 'serviceentries';
const NS = 'default';

function se(name: string, hosts: string[]) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'ServiceEntry',
    metadata: { name, namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'rb-smoke' } },
    spec: {
      hosts,
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      resolution: 'DNS',
      location: 'MESH_INTERNAL',
    },
  };
}

describe.skipIf(!hasPeer('kube'))('kube-apiserver peer', () => {
  let kc: k8s.KubeConfig;
  let api: k8s.CustomObjectsApi;
  const suffix = randomBytes(3).toString('hex');
  const created: string[] = [];

  beforeAll(async () => {
    kc = new k8s.KubeConfig();
    kc.loadFromFile(peer('kube').kubeconfig);
    api = kc.makeApiClient(k8s.CustomObjectsApi);
  });

  afterAll(async () => {
    for (const name of created) {
      await api
        .deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name })
        .catch(() => {});
    }
  });

  it('serves /version with the built version and the ServiceEntry CRD as Established', async () => {
    const v = await kc.makeApiClient(k8s.VersionApi).getCode();
    expect(v.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    const crd = await kc
      .makeApiClient(k8s.ApiextensionsV1Api)
      .readCustomResourceDefinition({ name: `${PLURAL}.${GROUP}` });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    expect(crd.spec.versions.map((x) => x.name)).toContain('v1');
  });

  it('creates a ServiceEntry and a watch sees ADDED', async () => {
    const name = `smoke-watch-${suffix}`;
    const events: Array<{ type: string; name: string }> = [];
    let watchErr: unknown;
    const sawAdded = new Promise<void>((resolve) => {
      void new k8s.Watch(kc)
        .watch(
          `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${PLURAL}`,
          { allowWatchBookmarks: false },
          (type, obj: { metadata?: { name?: string } }) => {
            events.push({ type, name: obj.metadata?.name ?? '' });
            if (type === 'ADDED' && obj.metadata?.name === name) resolve();
          },
          (err) => {
            watchErr = err;
          },
        )
        .then((ac) => sawAdded.finally(() => ac.abort()));
    });
    // Give the watch a moment to be established, then create.
    await new Promise((r) => setTimeout(r, 300));
    const body = se(name, [`watch-${suffix}.smoke.example.com`]);
    const res = (await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: PLURAL,
      body,
    })) as {
      metadata: { uid: string };
    };
    created.push(name);
    expect(res.metadata.uid).toBeTruthy();
    await Promise.race([
      sawAdded,
      new Promise((_, rej) =>
        setTimeout(() => rej(new Error(`no ADDED within 10 s: ${JSON.stringify(events)} ${String(watchErr)}`)), 10_000),
      ),
    ]);
  });

  /** The error creating `body` in NS failed with; undefined when it was created (and noted for clean-up). */
  async function createError(body: ReturnType<typeof se>): Promise<unknown> {
    try {
      await api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, body });
      created.push(body.metadata.name);
      return undefined;
    } catch (e) {
      return e;
    }
  }

  // The webhook is registered by test/peers/istiod.ts while istiod runs.
  it.skipIf(!hasPeer('istiod'))('refuses an invalid host: istiod validating webhook denies it', async () => {
    const err = await createError(se(`smoke-bad-${suffix}`, ['bad_host!']));
    expect(err, 'ServiceEntry with host bad_host! was accepted').toBeDefined();
    const text = statusText(err);
    expect((err as { code?: number }).code).toBe(400);
    // Layer: the admission webhook registered by test/peers/istiod.ts (istiod /validate).
    expect(text).toContain('admission webhook "validation.istio.io" denied the request');
    expect(text).toContain('bad_host!');
  });

  it('refuses a wildcard host: the CRD CEL rule denies it (no webhook involved)', async () => {
    const err = await createError(se(`smoke-wild-${suffix}`, ['*']));
    expect(err).toBeDefined();
    expect((err as { code?: number }).code).toBe(422);
    expect(statusText(err)).toContain('hostname cannot be wildcard');
  });
});
