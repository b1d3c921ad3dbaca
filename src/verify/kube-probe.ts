/** Reads the ServiceEntries this bridge owns from kube, in the first served API version. */
import * as k8s from '@kubernetes/client-node';
import { statusOf, kubeErrorMessage } from '../sinks/kube/client.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../synth/service-entry.js';
import type { KubeServiceEntry } from './compare.js';
import { HopReadError } from './types.js';

const versions = ['v1', 'v1beta1', 'v1alpha3'] as const;

export interface KubeProbe {
  readonly source: string;
  /** Owned ServiceEntries (label selected), in one namespace or all. */
  listOwned(signal: AbortSignal): Promise<KubeServiceEntry[]>;
}

export function kubeProbe(kc: k8s.KubeConfig, options: { namespace?: string; labelSelector?: string } = {}): KubeProbe {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const labelSelector = options.labelSelector ?? `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
  let version: string | undefined;
  const server = kc.getCurrentCluster()?.server ?? 'kube';
  return {
    get source() {
      return `kube ${server} networking.istio.io/${version ?? '?'}`;
    },
    async listOwned(signal) {
      const tries = version ? [version] : [...versions];
      let last: unknown;
      for (const v of tries) {
        if (signal.aborted) throw new HopReadError('kube: aborted');
        try {
          const common = { group: 'networking.istio.io', version: v, plural: 'serviceentries', labelSelector };
          const res = (
            options.namespace
              ? await api.listNamespacedCustomObject({ ...common, namespace: options.namespace })
              : await api.listClusterCustomObject(common)
          ) as { items?: KubeServiceEntry[] };
          version = v;
          return res.items ?? [];
        } catch (err) {
          last = err;
          if (statusOf(err) !== 404) break; // 404: this version is not served, try the next
        }
      }
      const status = statusOf(last);
      throw new HopReadError(`kube: cannot list ServiceEntries: ${kubeErrorMessage(last)}`, {
        cause: last,
        ...(status !== undefined ? { status } : {}),
      });
    },
  };
}
