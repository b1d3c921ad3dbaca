/** Kube-side helpers of the benchmark: namespaces, cleanup, a timestamping watch, the raw baseline. */
import { performance } from 'node:perf_hooks';
import * as k8s from '@kubernetes/client-node';
import { loadKubeConfig } from '../src/sinks/kube/client.js';
import { sleep } from './stats.js';
import { mapLimit } from '../src/util/concurrency.js';

const GROUP = 'networking.istio.io';
const VERSION = 'v1';
const PLURAL = 'serviceentries';

export interface SeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { hosts?: string[]; endpoints?: { address?: string }[] };
}

/** The bridge's own loader: the raw baseline gets the same client and connection reuse. */
export function loadKc(kubeconfig: string): k8s.KubeConfig {
  return loadKubeConfig({ kubeconfig });
}

export async function ensureNamespace(kc: k8s.KubeConfig, name: string): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await core.readNamespace({ name });
  } catch {
    await core.createNamespace({ body: { metadata: { name } } });
  }
}

export async function countSEs(kc: k8s.KubeConfig, namespace: string): Promise<number> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  let n = 0;
  let token: string | undefined;
  do {
    const page = (await api.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      limit: 500,
      ...(token ? { _continue: token } : {}),
    })) as { items: unknown[]; metadata?: { _continue?: string } };
    n += page.items.length;
    token = (page.metadata as { continue?: string } | undefined)?.continue || undefined;
  } while (token);
  return n;
}

/** Deletes every ServiceEntry of the namespace and waits until none is left. */
export async function deleteAllSEs(kc: k8s.KubeConfig, namespace: string): Promise<void> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  for (let i = 0; i < 600; i++) {
    const page = (await api.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      limit: 1,
    })) as { items: unknown[] };
    if (page.items.length === 0) return;
    // A collection of 10,000 takes the apiserver longer than its 60 s request timeout: the call
    // fails (504 or a closed connection) while the deletion goes on; the poll above decides.
    if (i % 20 === 0)
      await api
        .deleteCollectionNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })
        .catch(() => undefined);
    await sleep(500);
  }
  throw new Error(`ServiceEntries in ${namespace} were not deleted in 5 minutes`);
}

export type SeEvent = { type: string; obj: SeObject; at: number };

/** A watch on the namespace's ServiceEntries; every event is timestamped (performance.now) on arrival. */
export async function watchSEs(
  kc: k8s.KubeConfig,
  namespace: string,
  onEvent: (e: SeEvent) => void,
): Promise<() => void> {
  const w = new k8s.Watch(kc);
  let stopped = false;
  let req: AbortController | undefined;
  const start = async (): Promise<void> => {
    if (stopped) return;
    req = await w.watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
      { allowWatchBookmarks: true, resourceVersion: await currentRv(kc, namespace) },
      (type, obj: SeObject) => {
        if (type !== 'BOOKMARK') onEvent({ type, obj, at: performance.now() });
      },
      () => {
        if (!stopped)
          void sleep(500)
            .then(start)
            .catch(() => undefined); // restart; events resume from now
      },
    );
  };
  await start();
  return () => {
    stopped = true;
    req?.abort();
  };
}

async function currentRv(kc: k8s.KubeConfig, namespace: string): Promise<string> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const page = (await api.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    limit: 1,
  })) as { metadata?: { resourceVersion?: string } };
  return page.metadata?.resourceVersion ?? '0';
}

/**
 * The raw baseline: the same objects applied by a minimal loop with the same client
 * (KubernetesObjectApi.patch, server-side apply, same field manager) and the same concurrency.
 */
export async function rawApply(
  kc: k8s.KubeConfig,
  objects: readonly object[],
  concurrency: number,
  fieldManager: string,
): Promise<number> {
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  let writes = 0;
  await mapLimit(objects, concurrency, async (o) => {
    await client.patch(
      o as k8s.KubernetesObject,
      undefined,
      undefined,
      fieldManager,
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
    writes++;
  });
  return writes;
}
