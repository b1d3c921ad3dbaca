import {
  compareServiceKeys,
  serviceKeyString,
  type ApplicationInterface,
  type DeclaredPort,
  type Instance,
  type RegistryService,
  type ServiceKey,
} from '../model/service.js';
import { endpointAddress, SOURCES_ANNOTATION, synthServiceEntry, type SynthOptions } from './service-entry.js';
import { sortKeysDeep } from './hash.js';
import type { DesiredEntry, SynthNote, SynthResult } from './types.js';
import { sortByKey } from '../util/sort.js';

export * from './types.js';
export * from './service-entry.js';
export {
  renderHost,
  objectNameForHost,
  sanitizeHostValue,
  templateVariables,
  baseTemplateVariables,
} from './naming.js';
export { mapProtocol } from './protocol.js';
export { serviceEntryProblems } from './validate.js';

/**
 * Per options object, the result of each service object. Synthesis is pure and both are
 * immutable, so an adapter that hands back the same object for an unchanged service (the
 * ZooKeeper watched view does) gets its ServiceEntry without synthesizing, validating and
 * hashing it again: an unchanged resync of 10,000 services skips nearly all of it. Weak maps:
 * nothing is kept alive for the cache's sake.
 */
const memo = new WeakMap<SynthOptions, WeakMap<RegistryService, SynthResult>>();

/** One service's result, memoized per service object and options (what synthAll uses too). */
export function synthOne(service: RegistryService, options: SynthOptions): SynthResult {
  let byService = memo.get(options);
  if (!byService) memo.set(options, (byService = new WeakMap()));
  let r = byService.get(service);
  if (!r) byService.set(service, (r = weaklyHeld(synthServiceEntry(service, options), service, options)));
  return r;
}

/**
 * The memo keeps what a resync compares (name, host, hash) and only a weak reference to the
 * ServiceEntry object itself, which a run needs just for the few objects it writes: 10,000
 * objects (≈ 15 MiB) would otherwise stay in memory for as long as their services do. An
 * object that was collected is synthesized again (pure, same result) when asked for.
 */
function weaklyHeld(r: SynthResult, service: RegistryService, options: SynthOptions): SynthResult {
  if (r.kind !== 'ok') return r;
  const { object, ...rest } = r.entry;
  let ref = new WeakRef(object);
  const entry = Object.defineProperty({ ...rest }, 'object', {
    enumerable: true,
    get(): DesiredEntry['object'] {
      const held = ref.deref();
      if (held) return held;
      const again = synthServiceEntry(service, options);
      if (again.kind !== 'ok') throw new Error(`synthesis of ${serviceKeyString(service.key)} is not deterministic`);
      ref = new WeakRef(again.entry.object);
      return again.entry.object;
    },
  }) as DesiredEntry;
  return { ...r, entry };
}

export interface SynthInput {
  readonly services: readonly RegistryService[];
  readonly options: SynthOptions;
}

export interface SynthOutcome {
  /** Desired objects, ordered by namespace then name. */
  readonly desired: readonly DesiredEntry[];
  /** Every per-service result, ordered by service key (for reports). */
  readonly results: readonly SynthResult[];
  /** Services that exist but had nothing to publish: the plan keeps their objects. */
  readonly empty: readonly Extract<SynthResult, { kind: 'empty' }>[];
  readonly invalid: readonly Extract<SynthResult, { kind: 'invalid' }>[];
  readonly notes: readonly { source: string; service: string; note: SynthNote }[];
}

/**
 * Synthesizes every service of every source (inputs in configuration order).
 *
 * One host is one mesh service. Services that render the same host and have the same identity
 * (Dubbo: interface + version + group; any other service: namespace, group, name) are ONE mesh
 * service, whichever source or registration mode publishes them: their endpoints merge into one
 * ServiceEntry, deduplicated by address and port (the first source in configuration order wins
 * an address:port), labelled with the first publishing source and annotated with all of them
 * (`registry-bridge.io/sources`). Dubbo application-level services in `merge` mode join the
 * interface-level services of their application (see RegistryService.applicationLevel).
 *
 * Services with the same host but a different identity cannot both be published: the service
 * that already owns the object keeps it (`currentOwners`: host → service key string, from what
 * the sink holds), else the one whose key sorts first; the other is reported invalid, naming
 * the winner. A newcomer must never take a working host away.
 */
export function synthAll(
  inputs: readonly SynthInput[],
  currentOwners: ReadonlyMap<string, string> = new Map(),
): SynthOutcome {
  const items: Item[] = [];
  inputs.forEach((input, order) => {
    for (const service of input.services)
      items.push({ service, options: input.options, order, result: synthOne(service, input.options) });
  });
  const extraNotes: { source: string; service: string; note: SynthNote }[] = [];
  // By service key (each key's string looked up once per sort, not once per comparison).
  const published = sortByKey(applicationJoins(items, extraNotes), (it) => serviceKeyString(keyOf(it.result)));

  // Services that publish claim their hosts before services that exist but publish nothing (an
  // empty service never keeps a host from one that publishes it: ownership hands over), and
  // incumbents before newcomers; the order of the output stays by key.
  const incumbent = (it: Item) => {
    const host = hostOf(it.result);
    return host !== undefined && currentOwners.get(host) === serviceKeyString(keyOf(it.result));
  };
  const rank = (it: Item) => (it.result.kind === 'ok' ? 0 : 2) + (incumbent(it) ? 0 : 1);
  const ordered = published
    .map((it) => ({ it, k: rank(it) }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.it);
  const groups = new Map<string, { identity: string; winner: string; members: Item[]; publishes: boolean }>();
  const final: SynthResult[] = [];
  for (const it of ordered) {
    const r = it.result;
    if (r.kind === 'invalid') {
      final.push(r);
      continue;
    }
    const host = hostOf(r)!;
    const gk = `${namespaceOf(r)}\u0000${host}`;
    const identity = identityOf(it.service);
    const group = groups.get(gk);
    if (!group) {
      groups.set(gk, { identity, winner: serviceKeyString(keyOf(r)), members: [it], publishes: r.kind === 'ok' });
    } else if (group.identity === identity) {
      group.members.push(it);
    } else if (r.kind === 'empty' && group.publishes) {
      // Another service publishes the host; what synthesis dropped of this one is still named.
      const me = serviceKeyString(keyOf(r));
      for (const note of r.notes) extraNotes.push({ source: keyOf(r).source, service: me, note });
      continue;
    } else {
      final.push({
        kind: 'invalid',
        key: keyOf(r),
        reason: `host ${host} is already produced by service ${group.winner}`,
        notes: r.notes,
      });
    }
  }

  const byName = new Map<string, string>();
  const merged: SynthResult[] = [];
  for (const { members } of groups.values()) {
    const r = publishGroup(members);
    // The notes of members merged into another's entry (rejected instances...) are still named.
    for (const m of members) {
      if (m.result === r || m.result.kind === 'invalid' || m.service.key === keyOf(r)) continue;
      const key = serviceKeyString(m.service.key);
      for (const note of m.result.notes) extraNotes.push({ source: m.service.key.source, service: key, note });
    }
    const nsName = r.kind === 'ok' ? `${r.entry.namespace}/${r.entry.name}` : `${namespaceOf(r)}/${nameOf(r)}`;
    const me = serviceKeyString(keyOf(r));
    const clash = byName.get(nsName);
    if (clash !== undefined) {
      final.push({
        kind: 'invalid',
        key: keyOf(r),
        reason: `object name ${nsName} is already produced by service ${clash}`,
        notes: r.notes,
      });
      continue;
    }
    byName.set(nsName, me);
    merged.push(r);
  }
  final.push(...merged);

  const sorted = sortByKey(final, (r) => serviceKeyString(keyOf(r)));
  const desired = sortByKey(
    sorted.flatMap((r) => (r.kind === 'ok' ? [r.entry] : [])),
    (e) => `${e.namespace}/${e.name}`,
  );
  const notes: { source: string; service: string; note: SynthNote }[] = [];
  for (const r of sorted)
    for (const note of r.notes) notes.push({ source: keyOf(r).source, service: serviceKeyString(keyOf(r)), note });
  notes.push(...extraNotes);
  return {
    desired,
    results: sorted.map(forIncrementalOwnership),
    empty: sorted.filter((r): r is Extract<SynthResult, { kind: 'empty' }> => r.kind === 'empty'),
    invalid: sorted.filter((r): r is Extract<SynthResult, { kind: 'invalid' }> => r.kind === 'invalid'),
    notes,
  };
}

interface Item {
  readonly service: RegistryService;
  readonly options: SynthOptions;
  /** Index of the source in configuration order. */
  readonly order: number;
  readonly result: SynthResult;
  /** Made from application-level instances for an interface their application serves (never published alone as-is). */
  readonly derived?: true;
}

/** A merged entry and the contributors it was built from (by object identity of the result). */
const mergedFrom = new WeakMap<SynthResult, readonly ServiceKey[]>();

/**
 * The controller's fast path (incremental.ts) records the key of each result as the owner of
 * its host and falls back to a full run when a change names only some of a host's services. A
 * merged host is owned by the merge itself, a key no single service has, so a change in one
 * contributor is always decided by the full run, which sees every source.
 */
function forIncrementalOwnership(r: SynthResult): SynthResult {
  const from = mergedFrom.get(r);
  if (r.kind !== 'ok' || from === undefined) return r;
  const key: ServiceKey = { ...r.entry.key, name: `${r.entry.key.name} (merged with ${from.length - 1} more)` };
  return { ...r, entry: { ...r.entry, key } };
}

/**
 * What one mesh service is: for Dubbo, interface + version + group, wherever it is registered;
 * for any other service, its registry namespace, group and name (the key without the source),
 * so the same service in two sources (two clusters of one registry) is one mesh service, while
 * two services that a host template maps to one host stay a clash.
 */
export function identityOf(service: RegistryService): string {
  const a = service.attributes;
  if (a?.kind === 'dubbo' && a.interface)
    return `dubbo\u0000${a.interface}\u0000${a.version ?? ''}\u0000${a.dubboGroup ?? ''}`;
  const k = service.key;
  return `service\u0000${k.namespace}\u0000${k.group}\u0000${k.name}`;
}

/**
 * Application-level services in `merge` mode. Dubbo registers a provider in mode `all` at
 * both levels; the interface level says which interfaces (version, group) it serves, so an
 * application instance whose address an interface-level provider of the same application (its
 * `application` parameter; any source, same namespace) already lists adds nothing and is
 * dropped. What is left (providers registered at application level only, `register-mode=instance`)
 * is published on the entries of the interfaces Dubbo's metadata says the application serves
 * (`applicationLevel.interfaces` of any source in the same namespace: interface, version and
 * group), with every protocol port the instance announces; when no source knows them, on the
 * application's own entry, with a note (naming the interfaces `mapping` lists, if any). Without
 * any interface-level service of the application, the whole application is treated as
 * registered at application level only.
 */
function applicationJoins(
  items: readonly Item[],
  notes: { source: string; service: string; note: SynthNote }[],
): Item[] {
  if (!items.some((it) => it.service.applicationLevel?.mode === 'merge')) return [...items];
  const covered = new Map<string, Set<string>>(); // namespace \0 application → addresses
  for (const t of items) {
    const a = t.service.attributes;
    if (t.service.applicationLevel !== undefined || a?.kind !== 'dubbo' || !a.interface) continue;
    // Per provider: the providers of one interface may belong to several applications (a
    // Dubbo 2.7 and a Dubbo 3 application serving it), while the service names only one.
    for (const i of t.service.instances) {
      const application = i.metadata.application || a.application;
      if (!application) continue;
      const k = `${t.options.namespace}\u0000${application}`;
      let set = covered.get(k);
      if (!set) covered.set(k, (set = new Set()));
      set.add(normalAddress(i.address));
    }
  }
  // namespace \0 application → the interface-level services it provides (host rendered by the
  // source whose metadata named them), from any source.
  const provided = new Map<string, Map<string, { template: ApplicationInterface; host: string }>>();
  const mappedNames = new Map<string, Set<string>>();
  for (const t of items) {
    const level = t.service.applicationLevel;
    if (level === undefined) continue;
    const k = `${t.options.namespace}\u0000${level.application}`;
    for (const name of level.mappedInterfaces ?? []) {
      let set = mappedNames.get(k);
      if (!set) mappedNames.set(k, (set = new Set()));
      set.add(name);
    }
    for (const template of level.interfaces ?? []) {
      const host = hostOf(synthOne({ ...template, instances: [] }, t.options));
      if (host === undefined) continue;
      let byId = provided.get(k);
      if (!byId) provided.set(k, (byId = new Map()));
      const id = identityOf({ ...template, instances: [] });
      if (!byId.has(id)) byId.set(id, { template, host });
    }
  }
  return items.flatMap((it): Item[] => {
    const level = it.service.applicationLevel;
    if (level?.mode !== 'merge') return [it];
    const key = serviceKeyString(it.service.key);
    const k = `${it.options.namespace}\u0000${level.application}`;
    const addresses = covered.get(k);
    const rest =
      addresses === undefined
        ? it.service.instances
        : it.service.instances.filter((i) => !addresses.has(normalAddress(i.address)));
    if (rest.length === 0) return [];
    const targets = [...(provided.get(k)?.values() ?? [])];
    if (targets.length > 0)
      return targets.map(({ template, host }) => {
        const service: RegistryService = {
          ...template,
          key: { ...template.key, source: it.service.key.source },
          host,
          instances: rest,
        };
        return { ...it, service, result: synthOne(service, it.options), derived: true as const };
      });
    const mapped = [...(mappedNames.get(k) ?? [])].sort();
    const serves =
      (mapped.length > 0 ? ` (mapping names ${mapped.join(', ')}; their version and group are unknown)` : '') +
      (level.metadataError !== undefined ? ` (Dubbo metadata not read: ${level.metadataError})` : '');
    if (addresses === undefined) {
      notes.push({
        source: it.service.key.source,
        service: key,
        note: {
          code: 'application-level-unmapped',
          detail: `no interface-level Dubbo service or metadata names application "${level.application}"${serves}: published on its own`,
        },
      });
      return [it];
    }
    notes.push({
      source: it.service.key.source,
      service: key,
      note: {
        code: 'application-level-unmapped',
        detail: `${[...new Set(rest.map((i) => i.address))].join(', ')} registered at application level only${serves}: published on the application's own entry`,
      },
    });
    const service = { ...it.service, instances: rest };
    return [{ ...it, service, result: synthOne(service, it.options) }];
  });
}

function normalAddress(address: string): string {
  const a = endpointAddress(address);
  return 'address' in a ? a.address : address;
}

/**
 * One group of services with one host and identity → one result. A single publishing service
 * keeps its own (memoized) result; otherwise the usable instances of every member, filtered by
 * its own source's options, are merged in configuration order.
 */
function publishGroup(members: readonly Item[]): SynthResult {
  // Configuration order, then by key.
  // A service alone on its host (nearly every one) keeps its own result: its instances are not
  // filtered again.
  if (members.length === 1 && !members[0]!.derived) return members[0]!.result;
  const all = [...members].sort((a, b) => a.order - b.order || compareServiceKeys(a.service.key, b.service.key));
  const publishing = all.filter((it) => it.result.kind !== 'invalid' && usableInstances(it).length > 0);
  if (publishing.length === 0) return (members.find((m) => m.result.kind === 'ok') ?? members[0]!).result;
  // An entry made of application-level instances is always a merge: a keys-scoped run that reads
  // one of its contributors alone must leave it to a full run (forIncrementalOwnership).
  if (publishing.length === 1 && !publishing[0]!.derived) return publishing[0]!.result;
  const first = publishing[0]!;
  const sources = [...new Set(publishing.map((it) => it.service.key.source))];
  const host = hostOf(members[0]!.result)!;
  const seen = new Set<string>();
  const instances: Instance[] = [];
  const ports: DeclaredPort[] = [];
  for (const it of publishing) {
    for (const inst of usableInstances(it)) {
      const k = `${normalAddress(inst.address)}|${inst.port}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const protocol = inst.protocol ?? it.service.protocol;
      instances.push({ ...inst, healthy: true, ...(protocol !== undefined ? { protocol } : {}) });
    }
    for (const p of it.service.ports ?? []) if (!ports.some((q) => q.number === p.number)) ports.push(p);
  }
  const service: RegistryService = {
    key: first.service.key,
    host,
    ...(first.service.attributes ? { attributes: first.service.attributes } : {}),
    ...(ports.length > 0 ? { ports } : {}),
    instances,
  };
  const r = synthServiceEntry(service, { ...first.options, includeUnhealthy: true, excludeMetadata: [] });
  if (r.kind !== 'ok' || sources.length < 2) {
    if (r.kind === 'ok')
      mergedFrom.set(
        r,
        publishing.map((it) => it.service.key),
      );
    return r;
  }
  const object = sortKeysDeep({
    ...r.entry.object,
    metadata: {
      ...r.entry.object.metadata,
      annotations: { ...r.entry.object.metadata.annotations, [SOURCES_ANNOTATION]: sources.join(',') },
    },
  });
  const out: SynthResult = { ...r, entry: { ...r.entry, object } };
  mergedFrom.set(
    out,
    publishing.map((it) => it.service.key),
  );
  return out;
}

/** The instances of a member that its own source's options let through, metadata filtered. */
function usableInstances(it: Item): Instance[] {
  const excluded = new Set(it.options.excludeMetadata);
  return it.service.instances
    .filter((i) => i.enabled && (i.healthy || it.options.includeUnhealthy) && i.weight > 0)
    .map((i) => ({
      ...i,
      metadata: Object.fromEntries(Object.entries(i.metadata).filter(([k]) => !excluded.has(k))),
    }));
}

function hostOf(r: SynthResult): string | undefined {
  return r.kind === 'ok' ? r.entry.host : r.kind === 'empty' ? r.host : undefined;
}

function namespaceOf(r: SynthResult): string {
  return r.kind === 'ok' ? r.entry.namespace : r.kind === 'empty' ? r.namespace : '';
}

function nameOf(r: SynthResult): string {
  return r.kind === 'ok' ? r.entry.name : r.kind === 'empty' ? r.name : '';
}

function keyOf(r: SynthResult) {
  return r.kind === 'ok' ? r.entry.key : r.key;
}
