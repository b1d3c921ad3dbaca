import { serviceKeyString, type ServiceKey, type SourceSnapshot } from '../model/service.js';
import type { ObservedEntry } from '../plan/plan.js';
import type { ApplyOutcome, Sink } from '../sinks/types.js';
import { synthAll } from '../synth/index.js';
import {
  observedOfWritten,
  planAndApply,
  type ConfiguredSource,
  type ReconcileDeps,
  type ReconcileOptions,
  type ReconcileReport,
} from './reconcile.js';

/**
 * What the controller remembers between runs so that a change hint for a few services needs
 * neither a full registry walk nor a full list of kube: the objects the sink held (as last
 * observed, updated by our own writes) and which object each service produced. A full
 * reconcile (every resync interval, and whenever the fast path is unsure) rebuilds it.
 */
export interface ControllerCache {
  /** `namespace/name` → observed entry (owned and foreign). */
  readonly observed: Map<string, ObservedEntry>;
  /** service key string → the object it produced. */
  readonly byKey: Map<string, { readonly namespace: string; readonly name: string; readonly host: string }>;
  /** host → service key string that owns it. */
  readonly hostOwner: Map<string, string>;
}

export function cacheFromReport(report: ReconcileReport): ControllerCache {
  const cache: ControllerCache = { observed: new Map(), byKey: new Map(), hostOwner: new Map() };
  for (const o of report.observed) cache.observed.set(`${o.namespace}/${o.name}`, o);
  recordResults(cache, report.synth.results);
  applyOutcomes(cache, report.outcomes);
  return cache;
}

/** Which object (and host) each service produced. */
function recordResults(cache: ControllerCache, results: ReconcileReport['synth']['results']): void {
  for (const r of results) {
    if (r.kind === 'invalid') continue;
    const key = serviceKeyString(r.kind === 'ok' ? r.entry.key : r.key);
    const ref =
      r.kind === 'ok'
        ? { namespace: r.entry.namespace, name: r.entry.name, host: r.entry.host }
        : { namespace: r.namespace, name: r.name, host: r.host };
    cache.byKey.set(key, ref);
    cache.hostOwner.set(ref.host, key);
  }
}

/** Records the effect of successful writes, so the cache matches the sink after them. */
export function applyOutcomes(cache: ControllerCache, outcomes: readonly ApplyOutcome[]): void {
  for (const o of outcomes) {
    if (!o.ok) continue;
    const id = `${o.change.namespace}/${o.change.name}`;
    if (o.change.action === 'delete') {
      cache.observed.delete(id);
      continue;
    }
    const d = o.change.desired;
    if (!d || (o.change.action !== 'create' && o.change.action !== 'update')) continue;
    cache.observed.set(id, observedOfWritten(d, o.resourceVersion, o.uid));
  }
}

/**
 * Reconciles only the services named by change hints, from the adapters' own views and the
 * cache. Returns `undefined` when it cannot decide safely (an adapter without a fast path or
 * not ready, a host that another service holds): the caller then runs a full reconcile.
 */
export async function reconcileKeys(
  keys: readonly ServiceKey[],
  sources: readonly ConfiguredSource[],
  sink: Sink,
  cache: ControllerCache,
  options: ReconcileOptions,
  deps: ReconcileDeps,
): Promise<ReconcileReport | undefined> {
  const started = (deps.now ?? Date.now)();
  const bySource = new Map<string, ServiceKey[]>();
  for (const k of keys) bySource.set(k.source, [...(bySource.get(k.source) ?? []), k]);

  const snapshots: SourceSnapshot[] = [];
  const inputs = [];
  for (const [name, sourceKeys] of bySource) {
    const source = sources.find((s) => s.name === name);
    if (!source?.adapter.readServices) return undefined;
    let snapshot: SourceSnapshot;
    try {
      snapshot = await source.adapter.readServices(sourceKeys, deps.signal);
    } catch {
      return undefined; // the full reconcile reports the source properly (and fences it)
    }
    // Application-level Dubbo services in merge mode are published through the interface-level
    // services of their application (other keys, other sources): only a full run sees those.
    if (snapshot.services.some((s) => s.applicationLevel?.mode === 'merge')) return undefined;
    snapshots.push(snapshot);
    inputs.push({ services: snapshot.services, options: source.synth });
  }
  const synth = synthAll(inputs);

  // A host or name another service holds: only the full run can decide who keeps it.
  const wanted = new Set(keys.map(serviceKeyString));
  for (const r of synth.results) {
    if (r.kind === 'invalid') continue;
    const host = r.kind === 'ok' ? r.entry.host : r.host;
    const owner = cache.hostOwner.get(host);
    if (owner !== undefined && !wanted.has(owner)) return undefined;
  }

  // Observed, as the plan needs it: every foreign object (conflicts) and our objects for these
  // services, both what they produced last time and what they would produce now.
  const names = new Set<string>();
  for (const k of wanted) {
    const prev = cache.byKey.get(k);
    if (prev) names.add(`${prev.namespace}/${prev.name}`);
  }
  for (const d of synth.desired) names.add(`${d.namespace}/${d.name}`);
  const observed: ObservedEntry[] = [];
  for (const [id, o] of cache.observed) if (!o.owned || names.has(id)) observed.push(o);

  const report = await planAndApply(
    {
      scope: 'keys',
      snapshots,
      sourceErrors: [],
      sourceHealthy: new Map([...bySource.keys()].map((s) => [s, true])),
      synth,
      observed,
      started,
      keysRead: wanted,
    },
    sink,
    options,
    deps,
  );

  applyOutcomes(cache, report.outcomes);
  for (const k of wanted) {
    const prev = cache.byKey.get(k);
    if (prev) cache.hostOwner.delete(prev.host);
    cache.byKey.delete(k);
  }
  recordResults(cache, synth.results);
  return report;
}
