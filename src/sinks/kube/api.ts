/**
 * The ServiceEntry API as the kube sink uses it: version discovery, paged lists through the
 * untyped custom-objects client, bounded jittered retries, and messages that name what failed.
 */
import { ApisApi, CustomObjectsApi, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import pRetry, { AbortError } from 'p-retry';
import { SinkError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { isRetryable, kubeErrorMessage, retryAfterMs, statusOf } from './client.js';
import type { KubeSinkOptions } from './options.js';
import { SERVICE_ENTRY_VERSIONS } from './options.js';

export interface ServiceEntryResource extends KubernetesObject {
  spec?: {
    hosts?: string[];
    addresses?: string[];
    exportTo?: string[];
    ports?: { number?: number; protocol?: string }[];
    resolution?: string;
    endpoints?: unknown[];
    workloadSelector?: unknown;
  };
}

export interface ServiceEntryApi {
  /** Typed client for writes (server-side apply, delete). */
  readonly objects: KubernetesObjectApi;
  /** Untyped client for lists (see listAll). */
  readonly custom: CustomObjectsApi;
  /** The ServiceEntry apiVersion in use: configured, or discovered once from the API server. */
  apiVersion(): Promise<string>;
  /**
   * Pages through a list (of every namespace when `namespace` is ''), handing each object to
   * `each` (pages are dropped as they are read). Returns the list's resourceVersion (where a watch of it goes on).
   */
  listAll(
    version: string,
    namespace: string,
    selectors: { labelSelector?: string; fieldSelector?: string },
    signal: AbortSignal,
    each: (o: ServiceEntryResource) => void,
  ): Promise<string | undefined>;
}

export function serviceEntryApi(options: KubeSinkOptions, log: Logger): ServiceEntryApi {
  const objects = KubernetesObjectApi.makeApiClient(options.kc);
  // Lists go through the untyped custom-objects client: KubernetesObjectApi's typed
  // deserialization drops the list's `continue` token, which silently truncates paged lists.
  const custom = options.kc.makeApiClient(CustomObjectsApi);
  const pageSize = options.pageSize ?? 500;
  let discovered: string | undefined;

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
      const query = {
        group,
        version: ver,
        plural: 'serviceentries',
        ...selectors,
        limit: pageSize,
        ...(token ? { _continue: token } : {}),
      };
      const page = (await withRetry(
        () =>
          namespace === ''
            ? custom.listCustomObjectForAllNamespaces(query)
            : custom.listNamespacedCustomObject({ ...query, namespace }),
        signal,
        options.retries,
        isRetryable,
        (err) => options.metrics.apiRetries.inc({ verb: 'list', code: String(statusOf(err) ?? 'error') }),
      )) as { items?: ServiceEntryResource[]; metadata?: { continue?: string; resourceVersion?: string } };
      for (const o of page.items ?? []) each(o);
      rv = page.metadata?.resourceVersion ?? rv;
      token = page.metadata?.continue || undefined;
    } while (token);
    return rv;
  }

  return { objects, custom, apiVersion, listAll };
}

/** A message that says what failed and, for 403, which permission is missing. */
export function describe(verb: string, resource: string, namespace: string, err: unknown): string {
  const status = statusOf(err);
  const where = namespace ? ` in namespace ${namespace}` : '';
  if (status === 403)
    return `forbidden: the bridge may not ${verb} ${resource}.networking.istio.io${where}; grant it in the bridge's Role (${kubeErrorMessage(err)})`;
  return `${verb} ${resource}${where} failed: ${kubeErrorMessage(err)}`;
}

export async function withRetry<T>(
  fn: () => Promise<T>,
  signal: AbortSignal,
  retries = 4,
  retryable: (err: unknown) => boolean = isRetryable,
  /** Called with each answer that is tried again (not with the last one). */
  onRetry?: (err: unknown) => void,
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
    {
      retries,
      factor: 2,
      minTimeout: 100,
      maxTimeout: 3000,
      randomize: true,
      signal,
      // A throttled (429) or unavailable answer that says when to come back is honoured: the
      // next try waits that long first (capped), then the jittered backoff as for any error.
      onFailedAttempt: async ({ error, retriesLeft }) => {
        if (retriesLeft > 0) onRetry?.(error);
        const wait = retriesLeft > 0 ? retryAfterMs(error, Date.now()) : undefined;
        if (wait) await abortableDelay(wait, signal);
      },
    },
    // p-retry rethrows the original error of an AbortError: callers see what the API said.
  );
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
