import {
  ApisApi,
  AuthorizationV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import PQueue from 'p-queue';
import pRetry, { AbortError } from 'p-retry';
import { SinkError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { BridgeMetrics } from '../../metrics.js';
import type { Change, ObservedEntry } from '../../plan/plan.js';
import {
  contentHash,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SERVICE_ANNOTATION,
  SOURCE_LABEL,
} from '../../synth/service-entry.js';
import { onAbort, sleep } from '../../util/abort.js';
import { mapLimit } from '../../util/concurrency.js';
import type { ApplyOutcome, Sink } from '../types.js';
import { isRetryable, kubeErrorMessage, statusOf } from './client.js';

export const SERVICE_ENTRY_VERSIONS = [
  'networking.istio.io/v1',
  'networking.istio.io/v1beta1',
  'networking.istio.io/v1alpha3',
] as const;

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
  /**
   * Checks at start what every run needs: the API server answers, accepts the credentials,
   * serves ServiceEntries, and lets the bridge list and apply them in each target namespace.
   * Throws a SinkError whose one-line message names the cause; logs a warning for a missing
   * permission a run can do without (watch, delete).
   */
  preflight(signal: AbortSignal): Promise<void>;
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
  const queue = new PQueue({
    concurrency: options.concurrency,
    intervalCap: Math.max(1, Math.round(options.qps)),
    interval: 1000,
  });
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
      throw new SinkError(`cannot discover API groups: ${kubeErrorMessage(err)}`, {
        cause: err,
        ...(statusOf(err) !== undefined ? { status: statusOf(err)! } : {}),
      });
    }
    const served = new Set(
      groups.groups
        .filter((g) => g.name === 'networking.istio.io')
        .flatMap((g) => g.versions.map((v) => v.groupVersion)),
    );
    const pick = SERVICE_ENTRY_VERSIONS.find((v) => served.has(v));
    if (!pick)
      throw new SinkError(
        `kube-apiserver ${options.kc.getCurrentCluster()?.server ?? ''} serves no networking.istio.io ServiceEntry version (are the Istio CRDs installed?)`,
      );
    discovered = pick;
    log.info({ apiVersion: pick }, 'ServiceEntry API version discovered');
    return pick;
  }

  /**
   * Pages through a list, handing each object to `each` (pages are dropped as they are read).
   * Returns the list's resourceVersion (where a watch of it goes on).
   */
  async function listAll(
    version: string,
    namespace: string,
    selectors: { labelSelector?: string; fieldSelector?: string },
    signal: AbortSignal,
    each: (o: ServiceEntryResource) => void,
  ): Promise<string | undefined> {
    const [group, ver] = version.split('/') as [string, string];
    let token: string | undefined;
    let rv: string | undefined;
    do {
      if (signal.aborted) throw signal.reason;
      const page = (await withRetry(
        () =>
          custom.listNamespacedCustomObject({
            group,
            version: ver,
            namespace,
            plural: 'serviceentries',
            ...selectors,
            limit: pageSize,
            ...(token ? { _continue: token } : {}),
          }),
        signal,
        options.retries,
      )) as { items?: ServiceEntryResource[]; metadata?: { continue?: string; resourceVersion?: string } };
      for (const o of page.items ?? []) each(o);
      rv = page.metadata?.resourceVersion ?? rv;
      token = page.metadata?.continue || undefined;
    } while (token);
    return rv;
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
    const stamp = stampOf(o);
    if (!owned || uid === undefined || stamp === undefined) return toObserved(o, owned);
    const known = hashes.get(uid);
    const hash = known?.stamp === stamp ? known.hash : contentHash(o.spec ?? {}, o.metadata?.labels ?? {});
    seen.set(uid, known?.stamp === stamp ? known : { stamp, hash });
    return toObserved(o, owned, hash);
  }

  /**
   * The namespaces' ServiceEntries as a list and a watch keep them, once watch() runs (the
   * continuous controller): observe() then answers from here instead of listing every object
   * again on every full run, as controllers built on client-go informers do. At 10,000
   * objects a list is 19 MB of JSON and about a second of the bridge's CPU. It holds what the
   * plan needs (ObservedEntry), not the objects. The bridge's own writes go in from their
   * answers, so a run right after a write never sees the object as it was before it. A
   * namespace whose watch is down is listed as before.
   */
  const informed = new Map<string, InformedNamespace>();
  function informedObserve(): ObservedEntry[] | undefined {
    const namespaces = [...new Set(options.namespaces)].sort();
    if (namespaces.length === 0 || !namespaces.every((ns) => informed.get(ns)?.live)) return undefined;
    const owned: ObservedEntry[] = [];
    const foreign: ObservedEntry[] = [];
    for (const ns of namespaces)
      for (const c of informed.get(ns)!.entries.values()) (c.entry.owned ? owned : foreign).push(c.entry);
    return [...owned, ...foreign];
  }
  /** The cache entry of a listed, watched or written object (its hash kept when unchanged). */
  /** Stamps are alike across objects (generation 1, the same labels): one string each. */
  const stamps = new Map<string, string>();
  function informedEntry(o: ServiceEntryResource, prev: InformedEntry | undefined): InformedEntry {
    const owned = o.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
    let stamp = owned ? stampOf(o) : undefined;
    if (stamp !== undefined) {
      const known = stamps.get(stamp);
      if (known !== undefined) stamp = known;
      else if (stamps.size < 10_000) stamps.set(stamp, stamp);
    }
    const hash = owned && stamp !== undefined && prev?.stamp === stamp ? prev.entry.hash : undefined;
    return {
      entry: toObserved(o, owned, hash),
      ...(stamp !== undefined ? { stamp } : {}),
      ...(o.metadata?.resourceVersion ? { rv: o.metadata.resourceVersion } : {}),
    };
  }
  /** A watched or written object into the cache, unless the cache holds a newer state of it. */
  function inform(namespace: string, o: ServiceEntryResource, deleted: boolean): void {
    const ns = informed.get(namespace);
    const name = o.metadata?.name;
    if (!ns || name === undefined) return;
    const prev = ns.entries.get(name);
    if (prev && olderThan(o.metadata?.resourceVersion, prev.rv)) return; // our write's answer came first
    if (deleted) ns.entries.delete(name);
    else ns.entries.set(name, informedEntry(o, prev));
  }

  return {
    kind: 'kube',
    earlyCreates: true,
    apiVersion,
    async observe(signal) {
      const cached = informedObserve();
      if (cached) {
        hashes = new Map(); // the list's memo: the cache keeps its own hashes
        options.metrics.sinkObserves.inc({ via: 'watch' });
        options.metrics.ownedObjects.set(cached.filter((o) => o.owned).length);
        return cached;
      }
      options.metrics.sinkObserves.inc({ via: 'list' });
      const version = await apiVersion();
      const observed: ObservedEntry[] = [];
      const seen: HashMemo = new Map();
      try {
        for (const namespace of [...new Set(options.namespaces)].sort()) {
          const owned: ObservedEntry[] = [];
          const foreign: ObservedEntry[] = [];
          await Promise.all([
            listAll(version, namespace, { labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}` }, signal, (o) =>
              owned.push(observedOf(o, true, seen)),
            ),
            listAll(version, namespace, { labelSelector: `${MANAGED_BY_LABEL}!=${MANAGED_BY_VALUE}` }, signal, (o) =>
              foreign.push(toObserved(o, false)),
            ),
          ]);
          observed.push(...owned, ...foreign);
        }
        hashes = seen;
      } catch (err) {
        if (err instanceof SinkError) throw err;
        const status = statusOf(err);
        throw new SinkError(describe('list', 'serviceentries', '', err), {
          cause: err,
          ...(status !== undefined ? { status } : {}),
        });
      }
      options.metrics.ownedObjects.set(observed.filter((o) => o.owned).length);
      return observed;
    },
    async apply(changes, applyOptions, signal) {
      const version = await apiVersion();
      const dryRun = applyOptions.dryRun ? 'All' : undefined;
      /** A deleted object leaves the watch cache at once. */
      const forget = (change: Change): ApplyOutcome => {
        if (!dryRun) informed.get(change.namespace)?.entries.delete(change.name);
        return { change, ok: true };
      };
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
                      {
                        apiVersion: version,
                        kind: 'ServiceEntry',
                        metadata: { name: change.name, namespace: change.namespace },
                      },
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
                // Looked up with a list by name: the chart's Role grants list, not get.
                let now: ServiceEntryResource | undefined;
                await listAll(
                  version,
                  change.namespace,
                  { fieldSelector: `metadata.name=${change.name}` },
                  signal,
                  (o) => (now = o),
                );
                if (!now) return forget(change); // gone meanwhile
                const labels = now.metadata?.labels ?? {};
                if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE || labels[SOURCE_LABEL] !== change.source) throw err;
                await del(now.metadata?.resourceVersion);
              }
            } else if (change.desired) {
              const body = { ...change.desired.object, apiVersion: version } as unknown as KubernetesObject;
              const applied = await withRetry(
                () => client.patch(body, undefined, dryRun, options.fieldManager, true, PatchStrategy.ServerSideApply),
                signal,
                options.retries,
              );
              rv = applied.metadata?.resourceVersion;
              if (!dryRun) inform(change.namespace, applied as ServiceEntryResource, false);
            }
            if (change.action === 'delete') forget(change);
            options.metrics.apiWrites.inc({ verb, code: '200' });
            return { change, ok: true, ...(rv ? { resourceVersion: rv } : {}) };
          } catch (err) {
            const status = statusOf(err);
            if (status === 404 && change.action === 'delete') return forget(change); // already gone
            options.metrics.apiWrites.inc({ verb, code: String(status ?? 'error') });
            return {
              change,
              ok: false,
              error: describe(verb, 'serviceentries', change.namespace, err),
              ...(status !== undefined ? { status } : {}),
            };
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
      // Keeps the cache (above) and hints at changes made outside the bridge; a watch that dies
      // is resumed from the last resourceVersion it saw, or the namespace is listed again.
      const version = await apiVersion();
      const [group, ver] = version.split('/') as [string, string];
      const watcher = new Watch(options.kc);
      for (const namespace of [...new Set(options.namespaces)]) {
        const path = `/apis/${group}/${ver}/namespaces/${namespace}/serviceentries`;
        const ns: InformedNamespace = { live: false, entries: new Map() };
        informed.set(namespace, ns);
        let backoff = 500;
        let listedBefore = false;
        /** Lists the namespace into a fresh map; the watch goes on from the list's resourceVersion. */
        const prime = async (): Promise<void> => {
          const entries = new Map<string, InformedEntry>();
          const rv = await listAll(version, namespace, {}, signal, (o) => {
            if (o.metadata?.name !== undefined)
              entries.set(o.metadata.name, informedEntry(o, ns.entries.get(o.metadata.name)));
          });
          ns.entries = entries;
          ns.rv = rv;
          // Changes while no watch ran were not hinted: a full run looks at everything.
          if (listedBefore) onChange();
          listedBefore = true;
        };
        const loop = async (): Promise<void> => {
          while (!signal.aborted) {
            try {
              if (ns.rv === undefined) await prime();
            } catch (err) {
              if (signal.aborted) return;
              log.debug(
                { namespace, err: kubeErrorMessage(err) },
                'listing ServiceEntries for the watch failed; retrying',
              );
              await sleep(backoff, signal).catch(() => undefined);
              backoff = Math.min(backoff * 2, 30_000);
              continue;
            }
            // Each watch's abort link is removed when it ends: the server ends a watch every
            // few minutes, and a listener left on the process's signal would pile up.
            let unlink: (() => void) | undefined;
            let gone = false;
            let finished = false;
            const ended = new Promise<void>((resolve) => {
              watcher
                .watch(
                  path,
                  { resourceVersion: ns.rv, allowWatchBookmarks: true },
                  (phase, obj: ServiceEntryResource & { code?: number }) => {
                    if (phase === 'ERROR') {
                      // 410 Gone: the resourceVersion is compacted away; list again.
                      if (obj?.code === 410) gone = true;
                      ns.live = false;
                      return;
                    }
                    backoff = 500;
                    if (obj?.metadata?.resourceVersion) ns.rv = obj.metadata.resourceVersion;
                    if (phase === 'BOOKMARK') return;
                    inform(namespace, obj, phase === 'DELETED');
                    // Only ours, and not our own writes (those come back here too).
                    if (obj?.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) return;
                    if (phase === 'DELETED' || lastManager(obj) !== options.fieldManager) onChange();
                  },
                  (err: unknown) => {
                    finished = true;
                    if ((err as { statusCode?: number } | null)?.statusCode === 410) gone = true;
                    resolve();
                  },
                )
                .then(
                  (req) => {
                    // A watch that failed to start has called back already: nothing to link.
                    if (finished) return;
                    unlink = onAbort(signal, () => req.abort());
                    ns.live = true;
                  },
                  () => ((finished = true), resolve()),
                );
            });
            await ended;
            ns.live = false;
            unlink?.();
            if (signal.aborted) return;
            if (gone) {
              ns.rv = undefined;
              continue;
            }
            await sleep(backoff, signal).catch(() => undefined);
            backoff = Math.min(backoff * 2, 30_000);
          }
        };
        void loop();
      }
    },
    async preflight(signal) {
      const server = options.kc.getCurrentCluster()?.server ?? 'the API server';
      let version: string;
      try {
        // A transport failure (the server restarting) is tried again; an answer is final.
        const transport = (err: unknown) => err instanceof SinkError && err.status === undefined && !!err.cause;
        version = await withRetry(() => apiVersion(), signal, 3, transport);
      } catch (err) {
        if (err instanceof SinkError && err.cause === undefined) throw err;
        throw startupError(server, 'discovering the API groups', err);
      }
      const [group, ver] = version.split('/') as [string, string];
      const authz = options.kc.makeApiClient(AuthorizationV1Api);
      for (const namespace of [...new Set(options.namespaces)].sort()) {
        try {
          await withRetry(
            () =>
              custom.listNamespacedCustomObject({ group, version: ver, namespace, plural: 'serviceentries', limit: 1 }),
            signal,
            3,
          );
        } catch (err) {
          if (statusOf(err) === 404)
            throw new SinkError(
              `kube-apiserver ${server} does not serve ${version} serviceentries (404): are the Istio CRDs installed?`,
              { cause: err, status: 404 },
            );
          throw startupError(server, `listing ${version} serviceentries in namespace ${namespace}`, err);
        }
        const denied: string[] = [];
        for (const verb of ['patch', 'delete', 'watch']) {
          const review = await authz
            .createSelfSubjectAccessReview({
              body: {
                apiVersion: 'authorization.k8s.io/v1',
                kind: 'SelfSubjectAccessReview',
                spec: { resourceAttributes: { group, resource: 'serviceentries', verb, namespace } },
              },
            })
            .catch((err: unknown) => {
              log.warn({ verb, namespace, err: kubeErrorMessage(err) }, "cannot review the bridge's permissions");
              return undefined;
            });
          if (review?.status?.allowed === false) denied.push(verb);
        }
        if (denied.includes('patch'))
          throw new SinkError(
            `kube-apiserver ${server} denies the bridge's credentials patch (server-side apply) of ` +
              `serviceentries.${group} in namespace ${namespace} (RBAC); also denied: ` +
              `${denied.filter((v) => v !== 'patch').join(', ') || 'nothing else'}; grant them in the bridge's Role`,
            { status: 403 },
          );
        if (denied.length > 0)
          log.warn(
            { namespace, denied },
            `RBAC denies ${denied.join(' and ')} of serviceentries: ` +
              (denied.includes('delete') ? 'entries whose service is gone stay; ' : '') +
              (denied.includes('watch') ? 'hand edits are repaired at the next resync only' : ''),
          );
      }
    },
    async close() {
      queue.clear();
      await queue.onIdle();
    },
  };
}

/** One line naming why the API server cannot be used (unreachable, credentials, RBAC, other). */
function startupError(server: string, doing: string, err: unknown): SinkError {
  const cause = err instanceof SinkError && err.cause !== undefined ? err.cause : err;
  const status = statusOf(cause);
  const message = kubeErrorMessage(cause);
  const line =
    status === undefined
      ? `kube-apiserver ${server} is unreachable (${doing}): ${message}`
      : status === 401
        ? `kube-apiserver ${server} rejected the kubeconfig's credentials (401 Unauthorized, ${doing})`
        : status === 403
          ? `kube-apiserver ${server} denies ${doing} (403 Forbidden, RBAC): ${message}`
          : `kube-apiserver ${server} failed ${doing}: ${message}`;
  return new SinkError(line, { cause, ...(status !== undefined ? { status } : {}) });
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
    ...(owned && o.metadata?.annotations?.[SERVICE_ANNOTATION]
      ? { service: o.metadata.annotations[SERVICE_ANNOTATION] }
      : {}),
    ...(o.metadata?.resourceVersion ? { resourceVersion: o.metadata.resourceVersion } : {}),
  };
}

/** A message that says what failed and, for 403, which permission is missing. */
function describe(verb: string, resource: string, namespace: string, err: unknown): string {
  const status = statusOf(err);
  const where = namespace ? ` in namespace ${namespace}` : '';
  if (status === 403)
    return `forbidden: the bridge may not ${verb} ${resource}.networking.istio.io${where}; grant it in the bridge's Role (${kubeErrorMessage(err)})`;
  return `${verb} ${resource}${where} failed: ${kubeErrorMessage(err)}`;
}

async function withRetry<T>(
  fn: () => Promise<T>,
  signal: AbortSignal,
  retries = 4,
  retryable: (err: unknown) => boolean = isRetryable,
): Promise<T> {
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

interface InformedEntry {
  readonly entry: ObservedEntry;
  /** What the entry's hash covers (see observedOf); owned objects only. */
  readonly stamp?: string;
  readonly rv?: string;
}

interface InformedNamespace {
  /** A watch is running and the entries are complete up to its last event. */
  live: boolean;
  entries: Map<string, InformedEntry>;
  /** Where the watch resumes; undefined: list first. */
  rv?: string | undefined;
}

/** What an owned object's content hash covers: metadata.generation (else the resourceVersion) and the labels. */
function stampOf(o: ServiceEntryResource): string | undefined {
  const version =
    o.metadata?.generation !== undefined
      ? `g${o.metadata.generation}`
      : o.metadata?.resourceVersion !== undefined
        ? `rv${o.metadata.resourceVersion}`
        : undefined;
  return version === undefined ? undefined : `${version} ${JSON.stringify(o.metadata?.labels ?? {})}`;
}

/**
 * `a` is an older resourceVersion than `b`. Kubernetes calls them opaque; etcd's are integers,
 * and this compares only those (anything else is never older, so the newer event wins as before).
 */
export function olderThan(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return a.length < b.length || (a.length === b.length && a < b);
}
