/**
 * What the kube sink knows of the namespaces' ServiceEntries, as the plan needs it
 * (ObservedEntry, not the objects): the content hashes of a list, and the cache a list and a
 * watch keep, once the continuous controller watches.
 */
import type { CollisionPort } from '../../plan/collisions.js';
import type { ObservedEntry } from '../../plan/plan.js';
import {
  contentHash,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SERVICE_ANNOTATION,
  SOURCE_LABEL,
  SOURCES_ANNOTATION,
} from '../../synth/service-entry.js';
import type { ServiceEntryResource } from './api.js';

export interface InformedEntry {
  readonly entry: ObservedEntry;
  /** What the entry's hash covers (see stampOf); owned objects only. */
  readonly stamp?: string;
  readonly rv?: string;
}

export interface InformedNamespace {
  /** A watch is running and the entries are complete up to its last event. */
  live: boolean;
  entries: Map<string, InformedEntry>;
  /** Where the watch resumes; undefined: list first. */
  rv?: string | undefined;
}

/** Content hash by uid, with the stamp it covers. */
export type HashMemo = Map<string, { readonly stamp: string; readonly hash: string }>;

/**
 * The namespaces' ServiceEntries as a list and a watch keep them, once watch() runs (the
 * continuous controller): observe() then answers from here instead of listing every object
 * again on every full run, as controllers built on client-go informers do. At 10,000
 * objects a list is 19 MB of JSON and about a second of the bridge's CPU. The bridge's own
 * writes go in from their answers, so a run right after a write never sees the object as it
 * was before it. A namespace whose watch is down is listed as before.
 */
export class Informer {
  readonly informed = new Map<string, InformedNamespace>();
  /** Stamps are alike across objects (generation 1, the same labels): one string each. */
  private readonly stamps = new Map<string, string>();
  /**
   * Content hash of each owned object by uid and a stamp of what the hash covers: an object
   * whose spec and labels have not changed since the last list is not canonicalized and hashed
   * again. Pruned to the last full list.
   */
  private hashes: HashMemo = new Map();

  constructor(private readonly namespaces: readonly string[]) {}

  /** Every namespace's entries when every namespace's watch is live; else undefined (list). */
  cached(): ObservedEntry[] | undefined {
    const namespaces = [...new Set(this.namespaces)].sort();
    if (namespaces.length === 0 || !namespaces.every((ns) => this.informed.get(ns)?.live)) return undefined;
    this.hashes = new Map(); // the list's memo: the cache keeps its own hashes
    const owned: ObservedEntry[] = [];
    const foreign: ObservedEntry[] = [];
    for (const ns of namespaces)
      for (const c of this.informed.get(ns)!.entries.values()) (c.entry.owned ? owned : foreign).push(c.entry);
    return [...owned, ...foreign];
  }

  /** An owned object of a list, its hash taken from the memo when its stamp is unchanged. */
  observedOf(o: ServiceEntryResource, seen: HashMemo): ObservedEntry {
    const uid = o.metadata?.uid;
    const stamp = stampOf(o);
    if (uid === undefined || stamp === undefined) return toObserved(o, true);
    const known = this.hashes.get(uid);
    const hash = known?.stamp === stamp ? known.hash : contentHash(o.spec ?? {}, o.metadata?.labels ?? {});
    seen.set(uid, known?.stamp === stamp ? known : { stamp, hash });
    return toObserved(o, true, hash);
  }

  /** A full list ended: its memo is the one the next list uses. */
  listed(seen: HashMemo): void {
    this.hashes = seen;
  }

  /** The cache entry of a listed, watched or written object (its hash kept when unchanged). */
  entryOf(o: ServiceEntryResource, prev: InformedEntry | undefined): InformedEntry {
    const owned = o.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
    let stamp = owned ? stampOf(o) : undefined;
    if (stamp !== undefined) {
      const known = this.stamps.get(stamp);
      if (known !== undefined) stamp = known;
      else if (this.stamps.size < 10_000) this.stamps.set(stamp, stamp);
    }
    const hash = owned && stamp !== undefined && prev?.stamp === stamp ? prev.entry.hash : undefined;
    return {
      entry: toObserved(o, owned, hash),
      ...(stamp !== undefined ? { stamp } : {}),
      ...(o.metadata?.resourceVersion ? { rv: o.metadata.resourceVersion } : {}),
    };
  }

  /** A watched or written object into the cache, unless the cache holds a newer state of it. */
  inform(namespace: string, o: ServiceEntryResource, deleted: boolean): void {
    const ns = this.informed.get(namespace);
    const name = o.metadata?.name;
    if (!ns || name === undefined) return;
    const prev = ns.entries.get(name);
    if (prev && olderThan(o.metadata?.resourceVersion, prev.rv)) return; // our write's answer came first
    if (deleted) ns.entries.delete(name);
    else ns.entries.set(name, this.entryOf(o, prev));
  }

  /** A deleted object leaves the cache at once. */
  forget(namespace: string, name: string): void {
    this.informed.get(namespace)?.entries.delete(name);
  }
}

export function toObserved(o: ServiceEntryResource, owned: boolean, hash?: string): ObservedEntry {
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
    ...(owned && o.metadata?.annotations?.[SOURCES_ANNOTATION]
      ? { sources: o.metadata.annotations[SOURCES_ANNOTATION] }
      : {}),
    ...(o.metadata?.resourceVersion ? { resourceVersion: o.metadata.resourceVersion } : {}),
    ...(o.metadata?.uid ? { uid: o.metadata.uid } : {}),
    ...createdOf(o),
    // What Istio builds listeners from, for the plan's collision check. Only for objects the
    // bridge does not own: its own are checked as the plan wants them.
    ...(owned ? {} : listenerFieldsOf(o)),
  };
}

/**
 * An entry in a namespace the bridge does not write to (the cluster-wide view): never owned,
 * whoever manages it; its hosts, where it is visible, when it was created, and what Istio builds
 * listeners from (for ports shared without addresses).
 */
export function toElsewhere(o: ServiceEntryResource): ObservedEntry {
  const spec = o.spec ?? {};
  return {
    namespace: o.metadata?.namespace ?? '',
    name: o.metadata?.name ?? '',
    hosts: strings(spec.hosts),
    owned: false,
    elsewhere: true,
    ...(o.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? { managedByBridge: true as const } : {}),
    ...createdOf(o),
    ...listenerFieldsOf(o),
  };
}

/** metadata.creationTimestamp as an ISO string (the untyped client leaves it a string). */
function createdOf(o: ServiceEntryResource): Pick<ObservedEntry, 'created'> {
  const t = o.metadata?.creationTimestamp as unknown;
  if (typeof t === 'string' && t !== '') return { created: t };
  if (t instanceof Date && !Number.isNaN(t.getTime())) return { created: t.toISOString().replace(/\.000Z$/, 'Z') };
  return {};
}

const NONE: readonly never[] = Object.freeze([]);
const strings = (xs: unknown): readonly string[] => {
  if (!Array.isArray(xs) || xs.length === 0) return NONE;
  return xs.filter((x): x is string => typeof x === 'string');
};

/**
 * Ports as the collision check reads them, one shared object per (number, protocol): at 10,000
 * entries elsewhere most ports are alike (20880/TCP, 8080/HTTP), so an entry keeps references.
 */
const portObjects = new Map<string, CollisionPort>();
function portOf(number: number, protocol: string | undefined): CollisionPort {
  const key = `${number}/${protocol ?? ''}`;
  const known = portObjects.get(key);
  if (known) return known;
  const port: CollisionPort = Object.freeze({ number, ...(protocol !== undefined ? { protocol } : {}) });
  if (portObjects.size < 10_000) portObjects.set(key, port);
  return port;
}

/** One string per resolution, not one per entry. */
const RESOLUTIONS = new Map(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'].map((r) => [r, r]));

function listenerFieldsOf(
  o: ServiceEntryResource,
): Pick<ObservedEntry, 'ports' | 'addresses' | 'exportTo' | 'resolution' | 'endpointsOrSelector'> {
  const spec = o.spec ?? {};
  const ports = (Array.isArray(spec.ports) ? spec.ports : []).flatMap((p) =>
    typeof p?.number === 'number' ? [portOf(p.number, typeof p.protocol === 'string' ? p.protocol : undefined)] : [],
  );
  const selects =
    (Array.isArray(spec.endpoints) && spec.endpoints.length > 0) ||
    (typeof spec.workloadSelector === 'object' && spec.workloadSelector !== null);
  return {
    ports: ports.length > 0 ? ports : NONE,
    addresses: strings(spec.addresses),
    exportTo: strings(spec.exportTo),
    ...(typeof spec.resolution === 'string' ? { resolution: RESOLUTIONS.get(spec.resolution) ?? spec.resolution } : {}),
    ...(selects ? { endpointsOrSelector: true as const } : {}),
  };
}

/**
 * What an owned object's content hash covers: metadata.generation (bumped by every spec change,
 * never by istiod's status writes, which change the resourceVersion of all 10,000 objects after a
 * cold sync), else the resourceVersion; and the labels.
 */
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
