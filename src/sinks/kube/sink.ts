import { ApisApi, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import PQueue from 'p-queue';
import pRetry, { AbortError } from 'p-retry';
import { SinkError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { BridgeMetrics } from '../../metrics.js';
import type { Change, ObservedEntry } from '../../plan/plan.js';
import { contentHash, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SERVICE_ANNOTATION, SOURCE_LABEL } from '../../synth/service-entry.js';
import { onAbort } from '../../util/abort.js';
import { mapLimit } from '../../util/concurrency.js';
import type { ApplyOutcome, Sink } from '../types.js';
import { isRetryable, kubeErrorMessage, statusOf } from './client.js';

export const SERVICE_ENTRY_VERSIONS = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;

export interface KubeSinkOptions {
  readonly kc: KubeConfig;
  /** Namespaces the bridge writes to (every source's targetNamespace). */
  readonly namespaces: readonly string[];
  /** `auto` = discover from the API server. */
  readonly apiVersion: 'auto' | (typeof SERVICE_ENTRY_VERSIONS)[number];
  readonly fieldManager: string;
  /** Writes per second (client-side rate limit). */
  readonly qps: number;
  readonly concurrency: number;
  readonly logger: Logger;
  readonly metrics: BridgeMetrics;
  /** Retries of one write (jittered exponential backoff, capped). */
  readonly retries?: number;
  readonly pageSize?: number;
}

interface ServiceEntryResource extends KubernetesObject {
  spec?: { hosts?: string[] };
}

export interface KubeSink extends Sink {
  /** The ServiceEntry apiVersion in use (after discovery). */
  apiVersion(signal?: AbortSignal): Promise<string>;
}

/**
 * ServiceEntries in kube-apiserver. Observe lists owned objects by label selector (the truth
 * for the plan) and the others in the same namespaces (to see conflicts). Apply uses
 * server-side apply with one field manager and only the fields the bridge owns (never
 * status), deletes with a resourceVersion precondition, through a bounded, rate-limited queue
 * with jittered retries.
 */
export function kubeSink(options: KubeSinkOptions): KubeSink {
  const client = KubernetesObjectApi.makeApiClient(options.kc);
  // Lists go through the untyped custom-objects client: KubernetesObjectApi's typed
  // deserialization drops the list's `continue` token, which silently truncates paged lists.
  const custom = options.kc.makeApiClient(CustomObjectsApi);
  const log = options.logger.child({ component: 'kube-sink' });
  const queue = new PQueue({ concurrency: options.concurrency, intervalCap: Math.max(1, Math.round(options.qps)), interval: 1000 });
  const pageSize = options.pageSize ?? 500;
  let discovered: string | undefined;
  /** Writes handed to apply and not finished yet (the queue-depth metric). */
  let backlog = 0;

  async function apiVersion(): Promise<string> {
    if (options.apiVersion !== 'auto') return options.apiVersion;
    if (discovered) return discovered;
    let groups;
    try {
      groups = await options.kc.makeApiClient(ApisApi).getAPIVersions();
    } catch (err) {
      throw new SinkError(`cannot discover API groups: ${kubeErrorMessage(err)}`, { cause: err, ...(statusOf(err) !== undefined ? { status: statusOf(err)! } : {}) });
    }
    const served = new Set(groups.groups.filter((g) => g.name === 'networking.istio.io').flatMap((g) => g.versions.map((v) => v.groupVersion)));
    const pick = SERVICE_ENTRY_VERSIONS.find((v) => served.has(v));
    if (!pick) throw new SinkError('the API server serves no networking.istio.io ServiceEntry version (are the Istio CRDs installed?)');
    discovered = pick;
    log.info({ apiVersion: pick }, 'ServiceEntry API version discovered');
    return pick;
  }

  /** Pages through a list, handing each object to `each` (pages are dropped as they are read). */
  async function listAll(version: string, namespace: string, labelSelector: string, signal: AbortSignal, each: (o: ServiceEntryResource) => void): Promise<void> {
    const [group, ver] = version.split('/') as [string, string];
    let token: string | undefined;
    do {
      if (signal.aborted) throw signal.reason;
      const page = (await withRetry(
        () => custom.listNamespacedCustomObject({ group, version: ver, namespace, plural: 'serviceentries', labelSelector, limit: pageSize, ...(token ? { _continue: token } : {}) }),
        signal,
        options.retries,
      )) as { items?: ServiceEntryResource[]; metadata?: { continue?: string } };
      for (const o of page.items ?? []) each(o);
      token = page.metadata?.continue || undefined;
    } while (token);
  }

  /**
   * Content hash of each owned object by uid and a stamp of what the hash covers: an object
   * whose spec and labels have not changed since the last list is not canonicalized and hashed
   * again. The stamp is metadata.generation (bumped by every spec change, never by istiod's
   * status writes, which change the resourceVersion of all 10,000 objects after a cold sync)
   * plus the labels; without a generation, the resourceVersion. Pruned to the last full observe.
   */
  type HashMemo = Map<string, { readonly stamp: string; readonly hash: string }>;
  let hashes: HashMemo = new Map();
  function observedOf(o: ServiceEntryResource, owned: boolean, seen: HashMemo): ObservedEntry {
    const uid = o.metadata?.uid;
    const version = o.metadata?.generation !== undefined ? `g${o.metadata.generation}` : o.metadata?.resourceVersion !== undefined ? `rv${o.metadata.resourceVersion}` : undefined;
    if (!owned || uid === undefined || version === undefined) return toObserved(o, owned);
    const stamp = `${version} ${JSON.stringify(o.metadata?.labels ?? {})}`;
    const known = hashes.get(uid);
    const hash = known?.stamp === stamp ? known.hash : contentHash(o.spec ?? {}, o.metadata?.labels ?? {});
    seen.set(uid, known?.stamp === stamp ? known : { stamp, hash });
    return toObserved(o, owned, hash);
  }

  return {
    kind: 'kube',
    earlyCreates: true,
    apiVersion,
    async observe(signal) {
      const version = await apiVersion();
      const observed: ObservedEntry[] = [];
      const seen: HashMemo = new Map();
      try {
        for (const namespace of [...new Set(options.namespaces)].sort()) {
          const owned: ObservedEntry[] = [];
          const foreign: ObservedEntry[] = [];
          await Promise.all([
            listAll(version, namespace, `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`, signal, (o) => owned.push(observedOf(o, true, seen))),
            listAll(version, namespace, `${MANAGED_BY_LABEL}!=${MANAGED_BY_VALUE}`, signal, (o) => foreign.push(toObserved(o, false))),
          ]);
          observed.push(...owned, ...foreign);
        }
        hashes = seen;
      } catch (err) {
        if (err instanceof SinkError) throw err;
        const status = statusOf(err);
        throw new SinkError(describe('list', 'serviceentries', '', err), { cause: err, ...(status !== undefined ? { status } : {}) });
      }
      options.metrics.ownedObjects.set(observed.filter((o) => o.owned).length);
      return observed;
    },
    async apply(changes, applyOptions, signal) {
      const version = await apiVersion();
      const dryRun = applyOptions.dryRun ? 'All' : undefined;
      const run = (change: Change) =>
        queue.add(async (): Promise<ApplyOutcome> => {
          const verb = change.action === 'delete' ? 'delete' : 'patch';
          try {
            let rv: string | undefined;
            if (change.action === 'delete') {
              const del = (rv: string | undefined) =>
                withRetry(
                  () =>
                    client.delete(
                      { apiVersion: version, kind: 'ServiceEntry', metadata: { name: change.name, namespace: change.namespace } },
                      undefined,
                      dryRun,
                      undefined,
                      undefined,
                      'Background',
                      rv ? { preconditions: { resourceVersion: rv } } : undefined,
                    ),
                  signal,
                  options.retries,
                  (err) => statusOf(err) !== 409 && isRetryable(err),
                );
              try {
                await del(change.observed?.resourceVersion);
              } catch (err) {
                if (statusOf(err) !== 409) throw err;
                // The object changed since we listed it. istiod writes status (auto-allocated
                // addresses) to every ServiceEntry, so this is common: look again, and delete
                // only if it is still ours and still not what anyone desires (same source).
                const now = await client.read<ServiceEntryResource>({ apiVersion: version, kind: 'ServiceEntry', metadata: { name: change.name, namespace: change.namespace } });
                const labels = now.metadata?.labels ?? {};
                if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE || labels[SOURCE_LABEL] !== change.source) throw err;
                await del(now.metadata?.resourceVersion);
              }
            } else if (change.desired) {
              const body = { ...change.desired.object, apiVersion: version } as unknown as KubernetesObject;
              const applied = await withRetry(() => client.patch(body, undefined, dryRun, options.fieldManager, true, PatchStrategy.ServerSideApply), signal, options.retries);
              rv = applied.metadata?.resourceVersion;
            }
            options.metrics.apiWrites.inc({ verb, code: '200' });
            return { change, ok: true, ...(rv ? { resourceVersion: rv } : {}) };
          } catch (err) {
            const status = statusOf(err);
            if (status === 404 && change.action === 'delete') return { change, ok: true }; // already gone
            options.metrics.apiWrites.inc({ verb, code: String(status ?? 'error') });
            return { change, ok: false, error: describe(verb, 'serviceentries', change.namespace, err), ...(status !== undefined ? { status } : {}) };
          } finally {
            backlog -= 1;
            options.metrics.queueDepth.set(backlog);
          }
        }) as Promise<ApplyOutcome>;
      // Fed to the queue a few at a time: a plan of 10,000 writes queued at once would keep
      // 10,000 tasks (closures, promises, abort handlers) alive until the last one ran.
      const writes = changes.filter((c) => c.action === 'create' || c.action === 'update' || c.action === 'delete');
      backlog += writes.length;
      options.metrics.queueDepth.set(backlog);
      return mapLimit(writes, options.concurrency * 2, run);
    },
    async watch(onChange, signal) {
      // Only a hint: a watch that dies is restarted with backoff; the resync stays the truth.
      const version = await apiVersion();
      const [group, ver] = version.split('/') as [string, string];
      const watcher = new Watch(options.kc);
      for (const namespace of [...new Set(options.namespaces)]) {
        const path = `/apis/${group}/${ver}/namespaces/${namespace}/serviceentries`;
        let backoff = 500;
        const loop = async (): Promise<void> => {
          while (!signal.aborted) {
            // Each watch's abort link is removed when it ends: the server ends a watch every
            // few minutes, and a listener left on the process's signal would pile up.
            let unlink: (() => void) | undefined;
            const ended = new Promise<void>((resolve) => {
              watcher
                .watch(path, { labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`, allowWatchBookmarks: true }, (phase, obj: ServiceEntryResource) => {
                  backoff = 500;
                  if (phase === 'BOOKMARK') return;
                  // Our own writes come back here too; a run with nothing to do costs one list.
                  if (phase === 'DELETED' || lastManager(obj) !== options.fieldManager) onChange();
                }, () => resolve())
                .then((req) => void (unlink = onAbort(signal, () => req.abort())), () => resolve());
            });
            await ended;
            unlink?.();
            if (signal.aborted) return;
            await new Promise((r) => setTimeout(r, backoff));
            backoff = Math.min(backoff * 2, 30_000);
          }
        };
        void loop();
      }
    },
    async close() {
      queue.clear();
      await queue.onIdle();
    },
  };
}

/**
 * The field manager of the most recent write to an object's spec or metadata. Writes to the
 * status subresource (istiod records addresses and conditions there) do not count: they are not
 * drift, and counting them turned every istiod status update into a full resync.
 */
export function lastManager(o: ServiceEntryResource): string | undefined {
  let latest: { manager?: string; at: number } | undefined;
  for (const f of o.metadata?.managedFields ?? []) {
    if (f.subresource === 'status') continue;
    const at = f.time ? new Date(f.time as unknown as string).getTime() : 0;
    if (!latest || at >= latest.at) latest = { ...(f.manager !== undefined ? { manager: f.manager } : {}), at };
  }
  return latest?.manager;
}

function toObserved(o: ServiceEntryResource, owned: boolean, hash?: string): ObservedEntry {
  const labels = o.metadata?.labels ?? {};
  const source = labels[SOURCE_LABEL];
  return {
    namespace: o.metadata?.namespace ?? '',
    name: o.metadata?.name ?? '',
    hosts: o.spec?.hosts ?? [],
    owned,
    ...(owned && source !== undefined ? { source } : {}),
    ...(owned ? { hash: hash ?? contentHash(o.spec ?? {}, labels) } : {}),
    ...(owned && o.metadata?.annotations?.[SERVICE_ANNOTATION] ? { service: o.metadata.annotations[SERVICE_ANNOTATION] } : {}),
    ...(o.metadata?.resourceVersion ? { resourceVersion: o.metadata.resourceVersion } : {}),
  };
}

/** A message that says what failed and, for 403, which permission is missing. */
function describe(verb: string, resource: string, namespace: string, err: unknown): string {
  const status = statusOf(err);
  const where = namespace ? ` in namespace ${namespace}` : '';
  if (status === 403) return `forbidden: the bridge may not ${verb} ${resource}.networking.istio.io${where}; grant it in the bridge's Role (${kubeErrorMessage(err)})`;
  return `${verb} ${resource}${where} failed: ${kubeErrorMessage(err)}`;
}

async function withRetry<T>(fn: () => Promise<T>, signal: AbortSignal, retries = 4, retryable: (err: unknown) => boolean = isRetryable): Promise<T> {
  return pRetry(
    async () => {
      try {
        return await fn();
      } catch (err) {
        if (!retryable(err)) throw new AbortError(err as Error);
        throw err;
      }
    },
    // p-retry rethrows the original error of an AbortError: callers see what the API said.
    { retries, factor: 2, minTimeout: 100, maxTimeout: 3000, randomize: true, signal },
  );
}
