/**
 * The kube watch behind the informer's cache: per namespace, list, then watch from the list's
 * resourceVersion; hint at changes made outside the bridge. A watch that dies is resumed from the
 * last resourceVersion it saw, or (410 Gone) the namespace is listed again. Correctness never
 * depends on it: the periodic full run lists whenever a namespace's watch is down.
 */
import { Watch } from '@kubernetes/client-node';
import type { Logger } from '../../log.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../synth/service-entry.js';
import { onAbort, sleep } from '../../util/abort.js';
import type { ServiceEntryApi, ServiceEntryResource } from './api.js';
import { kubeErrorMessage } from './client.js';
import type { InformedEntry, InformedNamespace, Informer } from './informer.js';
import type { KubeSinkOptions } from './options.js';

export async function watchNamespaces(
  api: ServiceEntryApi,
  informer: Informer,
  options: KubeSinkOptions,
  log: Logger,
  onChange: () => void,
  signal: AbortSignal,
): Promise<void> {
  const version = await api.apiVersion();
  const [group, ver] = version.split('/') as [string, string];
  const watcher = new Watch(options.kc);
  for (const namespace of [...new Set(options.namespaces)]) {
    const ns: InformedNamespace = { live: false, entries: new Map() };
    informer.informed.set(namespace, ns);
    void watchLoop({
      api,
      log,
      watcher,
      version,
      namespace,
      path: `/apis/${group}/${ver}/namespaces/${namespace}/serviceentries`,
      ns,
      keyOf: (o) => o.metadata?.name,
      entryOf: (o, prev) => informer.entryOf(o, prev),
      onEvent: (o, deleted) => {
        informer.inform(namespace, o, deleted);
        // Only ours, and not our own writes (those come back here too).
        if (o?.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) return;
        if (deleted || lastManager(o) !== options.fieldManager) onChange();
      },
      onRelist: onChange,
      signal,
    });
  }
}

/** What a list-then-watch keeps and how (one namespace of the informer, or the cluster-wide view). */
export interface Loop {
  readonly api: ServiceEntryApi;
  readonly log: Logger;
  readonly watcher: Watch;
  readonly version: string;
  /** '' for every namespace. */
  readonly namespace: string;
  readonly path: string;
  /** Of the list and the watch (the cluster-wide view leaves the target namespaces out). */
  readonly fieldSelector?: string;
  readonly ns: InformedNamespace;
  /** The key of an object in ns.entries. */
  readonly keyOf: (o: ServiceEntryResource) => string | undefined;
  readonly entryOf: (o: ServiceEntryResource, prev: InformedEntry | undefined) => InformedEntry;
  /** A watch event (not a bookmark): into the cache, and a hint where it is one. */
  readonly onEvent: (o: ServiceEntryResource, deleted: boolean) => void;
  /** A list after the first: changes while no watch ran were not seen. */
  readonly onRelist: () => void;
  readonly signal: AbortSignal;
}

export async function watchLoop(l: Loop): Promise<void> {
  const { ns, signal } = l;
  let backoff = 500;
  let listedBefore = false;
  /** Lists the namespace into a fresh map; the watch goes on from the list's resourceVersion. */
  const prime = async (): Promise<void> => {
    const entries = new Map<string, InformedEntry>();
    const selectors = l.fieldSelector !== undefined ? { fieldSelector: l.fieldSelector } : {};
    const rv = await l.api.listAll(l.version, l.namespace, selectors, signal, (o) => {
      const key = l.keyOf(o);
      if (key !== undefined) entries.set(key, l.entryOf(o, ns.entries.get(key)));
    });
    ns.entries = entries;
    ns.rv = rv;
    // Changes while no watch ran were not hinted: a full run looks at everything.
    if (listedBefore) l.onRelist();
    listedBefore = true;
  };
  while (!signal.aborted) {
    try {
      if (ns.rv === undefined) await prime();
    } catch (err) {
      if (signal.aborted) return;
      l.log.debug(
        { namespace: l.namespace, err: kubeErrorMessage(err) },
        'listing ServiceEntries for the watch failed; retrying',
      );
      await sleep(backoff, signal).catch(() => undefined);
      backoff = Math.min(backoff * 2, 30_000);
      continue;
    }
    const { gone, events } = await watchOnce(l);
    if (events) backoff = 500;
    if (signal.aborted) return;
    if (gone) {
      ns.rv = undefined;
      continue;
    }
    await sleep(backoff, signal).catch(() => undefined);
    backoff = Math.min(backoff * 2, 30_000);
  }
}

/** One watch, from ns.rv until the server or the signal ends it. */
async function watchOnce(l: Loop): Promise<{ gone: boolean; events: boolean }> {
  const { ns, signal } = l;
  // Each watch's abort link is removed when it ends: the server ends a watch every few
  // minutes, and a listener left on the process's signal would pile up.
  let unlink: (() => void) | undefined;
  let gone = false;
  let events = false;
  let finished = false;
  await new Promise<void>((resolve) => {
    l.watcher
      .watch(
        l.path,
        {
          resourceVersion: ns.rv,
          allowWatchBookmarks: true,
          ...(l.fieldSelector !== undefined ? { fieldSelector: l.fieldSelector } : {}),
        },
        (phase, obj: ServiceEntryResource & { code?: number }) => {
          if (phase === 'ERROR') {
            // 410 Gone: the resourceVersion is compacted away; list again.
            if (obj?.code === 410) gone = true;
            ns.live = false;
            return;
          }
          events = true;
          if (obj?.metadata?.resourceVersion) ns.rv = obj.metadata.resourceVersion;
          if (phase === 'BOOKMARK') return;
          l.onEvent(obj, phase === 'DELETED');
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
  ns.live = false;
  unlink?.();
  return { gone, events };
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
