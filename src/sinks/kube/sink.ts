/**
 * ServiceEntries in kube-apiserver, assembled from its parts: the API (api.ts: discovery, paged
 * lists, retries), the informer's cache and hashes (informer.ts), the writes (apply.ts) and the
 * watch that keeps the cache (watch.ts). Observe lists owned objects by label selector (the truth
 * for the plan) and the others in the same namespaces (to see conflicts), or answers from the
 * cache while every namespace's watch is live; and, where RBAC allows, the ServiceEntries of
 * every other namespace (elsewhere.ts: hosts they declare).
 */
import PQueue from 'p-queue';
import { SinkError } from '../../errors.js';
import type { ObservedEntry } from '../../plan/plan.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../synth/service-entry.js';
import { describe, serviceEntryApi } from './api.js';
import { applyChanges, type Writer } from './apply.js';
import { statusOf } from './client.js';
import { Elsewhere } from './elsewhere.js';
import { Informer, toObserved, type HashMemo } from './informer.js';
import type { KubeSink, KubeSinkOptions } from './options.js';
import { preflight } from './preflight.js';
import { watchNamespaces } from './watch.js';

export { SERVICE_ENTRY_VERSIONS, type KubeSink, type KubeSinkOptions } from './options.js';
export { olderThan } from './informer.js';
export { lastManager } from './watch.js';

export function kubeSink(options: KubeSinkOptions): KubeSink {
  const log = options.logger.child({ component: 'kube-sink' });
  const api = serviceEntryApi(options, log);
  const informer = new Informer(options.namespaces);
  const queue = new PQueue({
    concurrency: options.concurrency,
    intervalCap: Math.max(1, Math.round(options.qps)),
    interval: 1000,
  });
  const writer: Writer = { api, informer, queue, options, backlog: 0 };
  const elsewhere = new Elsewhere(api, options, log);

  async function list(signal: AbortSignal): Promise<ObservedEntry[]> {
    const version = await api.apiVersion();
    const observed: ObservedEntry[] = [];
    const seen: HashMemo = new Map();
    try {
      for (const namespace of [...new Set(options.namespaces)].sort()) {
        const owned: ObservedEntry[] = [];
        const foreign: ObservedEntry[] = [];
        await Promise.all([
          api.listAll(version, namespace, { labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}` }, signal, (o) =>
            owned.push(informer.observedOf(o, seen)),
          ),
          api.listAll(version, namespace, { labelSelector: `${MANAGED_BY_LABEL}!=${MANAGED_BY_VALUE}` }, signal, (o) =>
            foreign.push(toObserved(o, false)),
          ),
        ]);
        observed.push(...owned, ...foreign);
      }
      informer.listed(seen);
    } catch (err) {
      if (err instanceof SinkError) throw err;
      const status = statusOf(err);
      throw new SinkError(describe('list', 'serviceentries', '', err), {
        cause: err,
        ...(status !== undefined ? { status } : {}),
      });
    }
    return observed;
  }

  return {
    kind: 'kube',
    earlyCreates: true,
    apiVersion: () => api.apiVersion(),
    async observe(signal) {
      const cached = informer.cached();
      options.metrics.sinkObserves.inc({ via: cached ? 'watch' : 'list' });
      const [observed, others] = await Promise.all([cached ?? list(signal), elsewhere.observe(signal)]);
      options.metrics.ownedObjects.set(observed.filter((o) => o.owned).length);
      return others.length > 0 ? [...observed, ...others] : observed;
    },
    apply: (changes, applyOptions, signal) => applyChanges(writer, changes, applyOptions.dryRun, signal),
    async preflight(signal) {
      await preflight(api, options, log, signal);
      await elsewhere.check((await api.apiVersion()).split('/')[0]!);
    },
    async watch(onChange, signal) {
      await elsewhere.watch(signal);
      await watchNamespaces(api, informer, options, log, () => onChange(), signal);
    },
    async close() {
      queue.clear();
      await queue.onIdle();
    },
  };
}
