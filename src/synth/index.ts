import { compareServiceKeys, serviceKeyString, type RegistryService } from '../model/service.js';
import { synthServiceEntry, type SynthOptions } from './service-entry.js';
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
 * Synthesizes every service of every source. Two services that would share a host (or an
 * object name) cannot both be published: the service that already owns the object keeps it
 * (`currentOwners`: host → service key string, from what the sink holds), else the one whose
 * key sorts first; the other is reported invalid, naming the winner. Istio misbehaves with two
 * entries for one host, and a newcomer must never take a working host away.
 */
export function synthAll(
  inputs: readonly SynthInput[],
  currentOwners: ReadonlyMap<string, string> = new Map(),
): SynthOutcome {
  const results: SynthResult[] = [];
  for (const input of inputs) {
    for (const service of input.services) results.push(synthOne(service, input.options));
  }
  results.sort((a, b) => compareServiceKeys(keyOf(a), keyOf(b)));

  const byHost = new Map<string, string>();
  const byName = new Map<string, string>();
  const publishing = new Set<string>();
  const final: SynthResult[] = [];
  /** Notes of results left out (an empty service whose host another publishes): still reported. */
  const leftOutNotes: { source: string; service: string; note: SynthNote }[] = [];
  const hostOf = (r: SynthResult) => (r.kind === 'ok' ? r.entry.host : r.kind === 'empty' ? r.host : undefined);
  const incumbent = (r: SynthResult) => {
    const host = hostOf(r);
    return host !== undefined && currentOwners.get(host) === serviceKeyString(keyOf(r));
  };
  // Services that publish claim their hosts before services that exist but publish nothing (an
  // empty service never keeps a host from one that publishes it: ownership hands over), and
  // incumbents before newcomers; the order of the output stays by key.
  const isIncumbent = results.map(incumbent);
  const rank = (r: SynthResult, i: number) => (r.kind === 'ok' ? 0 : 2) + (isIncumbent[i] ? 0 : 1);
  const ordered = results
    .map((r, i) => ({ r, k: rank(r, i) }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.r);
  for (const r of ordered) {
    if (r.kind === 'invalid') {
      final.push(r);
      continue;
    }
    const host = r.kind === 'ok' ? r.entry.host : r.host;
    const nsName = r.kind === 'ok' ? `${r.entry.namespace}/${r.entry.name}` : `${r.namespace}/${r.name}`;
    const me = serviceKeyString(keyOf(r));
    const clash = byHost.get(host) ?? byName.get(nsName);
    if (clash !== undefined && r.kind === 'empty' && publishing.has(host)) {
      // Another service publishes the host; what synthesis dropped of this one is still named.
      for (const note of r.notes) leftOutNotes.push({ source: keyOf(r).source, service: me, note });
      continue;
    }
    if (clash !== undefined) {
      final.push({
        kind: 'invalid',
        key: keyOf(r),
        reason: `host ${host} is already produced by service ${clash}`,
        notes: r.notes,
      });
      continue;
    }
    byHost.set(host, me);
    byName.set(nsName, me);
    if (r.kind === 'ok') publishing.add(host);
    final.push(r);
  }

  final.sort((a, b) => compareServiceKeys(keyOf(a), keyOf(b)));
  const desired = sortByKey(
    final.flatMap((r) => (r.kind === 'ok' ? [r.entry] : [])),
    (e) => `${e.namespace}/${e.name}`,
  );
  return {
    desired,
    results: final,
    empty: final.filter((r): r is Extract<SynthResult, { kind: 'empty' }> => r.kind === 'empty'),
    invalid: final.filter((r): r is Extract<SynthResult, { kind: 'invalid' }> => r.kind === 'invalid'),
    notes: [
      ...final.flatMap((r) =>
        r.notes.map((note) => ({ source: keyOf(r).source, service: serviceKeyString(keyOf(r)), note })),
      ),
      ...leftOutNotes,
    ],
  };
}

function keyOf(r: SynthResult) {
  return r.kind === 'ok' ? r.entry.key : r.key;
}
