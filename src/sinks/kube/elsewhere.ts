/**
 * The ServiceEntries of every namespace the bridge does not write to, for the plan's check of
 * hosts declared elsewhere (src/plan/elsewhere.ts) and of TCP ports they serve without addresses
 * (src/plan/collisions.ts): what Istio builds listeners from, kept compact (./informer.ts, toElsewhere). One cluster-wide list, or the cache a
 * cluster-wide watch keeps (continuous mode), both with a field selector that leaves the target
 * namespaces out (the namespace informer has those). Only where RBAC lets the bridge list
 * ServiceEntries cluster-wide: otherwise it says so once and the check is off; never fatal.
 */
import { AuthorizationV1Api, Watch } from '@kubernetes/client-node';
import { SinkError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ObservedEntry } from '../../plan/plan.js';
import type { ServiceEntryApi, ServiceEntryResource } from './api.js';
import { kubeErrorMessage, statusOf } from './client.js';
import { olderThan, toElsewhere, type InformedEntry, type InformedNamespace } from './informer.js';
import type { KubeSinkOptions } from './options.js';
import { watchLoop } from './watch.js';

const OFF =
  'hosts and TCP ports that ServiceEntries in other namespaces declare are not checked (grant get/list/watch of ' +
  "serviceentries cluster-wide, the chart's rbac.otherNamespaces, to check them)";

const informed = (o: ServiceEntryResource): InformedEntry => ({
  entry: toElsewhere(o),
  ...(o.metadata?.resourceVersion ? { rv: o.metadata.resourceVersion } : {}),
});

export class Elsewhere {
  /** undefined: not known yet (a list finds out); false: off for this process. */
  private allowed: boolean | undefined;
  /** RBAC lets it list but not watch: every full run lists. */
  private watchDenied = false;
  private readonly cache: InformedNamespace = { live: false, entries: new Map() };
  private readonly stopWatch = new AbortController();
  /** `metadata.namespace!=<target>,...`: the target namespaces are the informer's. */
  readonly fieldSelector: string;

  constructor(
    private readonly api: ServiceEntryApi,
    private readonly options: KubeSinkOptions,
    private readonly log: Logger,
  ) {
    this.fieldSelector = [...new Set(options.namespaces)]
      .sort()
      .map((n) => `metadata.namespace!=${n}`)
      .join(',');
  }

  /**
   * At start: may the bridge list and watch ServiceEntries in every namespace? Denied: one
   * warning, the check is off. A review that cannot run leaves it to the first list.
   */
  async check(group: string): Promise<void> {
    const authz = this.options.kc.makeApiClient(AuthorizationV1Api);
    const denied: string[] = [];
    for (const verb of ['list', 'watch']) {
      const review = await authz
        .createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { group, resource: 'serviceentries', verb } },
          },
        })
        .catch((err: unknown) => {
          this.log.debug({ verb, err: kubeErrorMessage(err) }, 'cannot review the cluster-wide permissions');
          return undefined;
        });
      if (review?.status?.allowed === false) denied.push(verb);
    }
    if (denied.includes('list')) this.off(`RBAC denies list of serviceentries.${group} in all namespaces`);
    else if (denied.includes('watch')) {
      this.watchDenied = true;
      this.log.warn(
        { denied },
        `RBAC denies watch of serviceentries.${group} in all namespaces: other namespaces are listed at every full run`,
      );
    }
  }

  /** The entries elsewhere now: from the watch's cache while it is live, else one list. */
  async observe(signal: AbortSignal): Promise<ObservedEntry[]> {
    if (this.allowed === false) return [];
    if (this.cache.live) return [...this.cache.entries.values()].map((c) => c.entry);
    const version = await this.api.apiVersion();
    const out: ObservedEntry[] = [];
    try {
      await this.api.listAll(version, '', { fieldSelector: this.fieldSelector }, signal, (o) =>
        out.push(toElsewhere(o)),
      );
    } catch (err) {
      const status = statusOf(err instanceof SinkError && err.cause !== undefined ? err.cause : err);
      if (status === 403) {
        this.off(`listing serviceentries in all namespaces is forbidden (403): ${kubeErrorMessage(err)}`);
        return [];
      }
      throw new SinkError(`list serviceentries in other namespaces failed: ${kubeErrorMessage(err)}`, {
        cause: err,
        ...(status !== undefined ? { status } : {}),
      });
    }
    this.allowed = true;
    return out;
  }

  /** Keeps the cache by a cluster-wide watch (continuous mode), unless the check is off. */
  async watch(signal: AbortSignal): Promise<void> {
    if (this.allowed === false || this.watchDenied) return;
    const version = await this.api.apiVersion();
    const [group, ver] = version.split('/') as [string, string];
    const both = AbortSignal.any([signal, this.stopWatch.signal]);
    const { cache } = this;
    void watchLoop({
      api: this.api,
      log: this.log,
      watcher: new Watch(this.options.kc),
      version,
      namespace: '',
      path: `/apis/${group}/${ver}/serviceentries`,
      fieldSelector: this.fieldSelector,
      ns: cache,
      keyOf: (o) => (o.metadata?.name !== undefined ? `${o.metadata.namespace ?? ''}/${o.metadata.name}` : undefined),
      entryOf: informed,
      onEvent: (o, deleted) => {
        if (o?.metadata?.name === undefined) return;
        const key = `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
        const prev = cache.entries.get(key);
        if (prev && olderThan(o.metadata.resourceVersion, prev.rv)) return;
        if (deleted) cache.entries.delete(key);
        else cache.entries.set(key, informed(o));
      },
      // Entries elsewhere change what a full run decides, never what it must repair: no hints.
      onRelist: () => undefined,
      signal: both,
    });
  }

  private off(why: string): void {
    if (this.allowed === false) return;
    this.allowed = false;
    this.cache.live = false;
    this.cache.entries.clear();
    this.stopWatch.abort();
    this.log.warn({ check: 'hosts-in-other-namespaces' }, `${why}: ${OFF}`);
  }
}
