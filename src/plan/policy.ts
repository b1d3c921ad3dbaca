import { formatDuration } from '../config/duration.js';
import { serviceKeyString } from '../model/service.js';
import { sortByKey } from '../util/sort.js';
import type { Change, PlanInput, Shrink } from './plan.js';

/**
 * One decision rule over the diff: takes the changes so far and the plan's input, returns them
 * with some turned into `keep` or `conflict` (never adds a write). `needsFullRun` says a
 * keys-scoped run left something to a full run.
 */
export interface PlanFilter {
  readonly name: string;
  apply(
    changes: readonly Change[],
    input: PlanInput,
  ): { changes: Change[]; needsFullRun?: boolean; shrinks?: readonly Shrink[] };
}

const keep = (c: Change, reason: string): Change => ({ ...c, action: 'keep', reason });
const isHandOver = (c: Change) =>
  c.action === 'update' &&
  c.observed !== undefined &&
  c.desired !== undefined &&
  c.observed.source !== c.desired.key.source;

/**
 * A source whose read failed says nothing about its services: its objects are neither deleted
 * nor handed over this run. An object whose source label names no configured source is left
 * for a human.
 */
export const fenceSources: PlanFilter = {
  name: 'fence sources whose read failed',
  apply: (changes, input) => ({
    changes: changes.map((c) => {
      if (c.action !== 'delete' && !isHandOver(c)) return c;
      const source = c.observed?.source;
      const healthy = source === undefined ? undefined : input.sourceHealthy.get(source);
      if (healthy === false)
        return keep(
          c,
          `source "${source}" could not be read this run; its objects are neither deleted nor handed over`,
        );
      if (healthy === undefined && c.action === 'delete')
        return keep(c, `source "${source ?? '(none)'}" is not configured; orphaned objects are left for a human`);
      return c;
    }),
  }),
};

/**
 * A keys-scoped run reads a few services from the adapters' views; a service missing from such
 * a read may be one the view lost track of, not one the registry removed. It never deletes: it
 * asks for a full run, which reads every service and decides.
 */
export const deleteOnlyInFullRuns: PlanFilter = {
  name: 'keys-scoped runs leave deletions to a full run',
  apply: (changes, input) => {
    if (input.scope?.kind !== 'keys') return { changes: [...changes] };
    let needsFullRun = false;
    const out = changes.map((c) => {
      if (c.action !== 'delete') return c;
      needsFullRun = true;
      return keep(c, `${c.reason ?? 'not desired'}; a keys-scoped run never deletes: a full run decides, now`);
    });
    return { changes: out, needsFullRun };
  },
};

/** Objects protected by the caller (a service that turned invalid keeps its last good object). */
export const protectObjects: PlanFilter = {
  name: 'protected objects',
  apply: (changes, input) => {
    const reasons = new Map((input.protectedObjects ?? []).map((p) => [`${p.namespace}/${p.name}`, p.reason]));
    return {
      changes: changes.map((c) => {
        const reason = c.action === 'delete' ? reasons.get(`${c.namespace}/${c.name}`) : undefined;
        return reason === undefined ? c : keep(c, reason);
      }),
    };
  },
};

/**
 * Ownership: an object of one of this bridge's sources goes to whichever source publishes its
 * host now (the diff's hand-over update stands). An object labelled with a source this bridge
 * does not configure belongs to another bridge: a conflict, never taken.
 */
export const ownership: PlanFilter = {
  name: 'ownership hand-over',
  apply: (changes, input) => ({
    changes: changes.map((c) => {
      if (!isHandOver(c)) return c;
      const previous = c.observed?.source;
      if (previous !== undefined && input.sourceHealthy.has(previous)) return c;
      return {
        ...c,
        action: 'conflict',
        reason: `${c.namespace}/${c.name} is managed by registry-bridge source "${previous ?? '(none)'}", which this bridge does not configure`,
      };
    }),
  }),
};

/**
 * A Dubbo application in `merge` mode that the registries show at application level only
 * (no interface-level provider of the application at its addresses, no metadata naming its
 * interfaces) is published on an entry of its own. That is the truth for `register-mode=instance`
 * without a metadata report, and a transient for a `register-mode=all` provider: Dubbo writes
 * its two levels one after the other (a starting provider may be read between them, and a
 * stopping or expiring one loses its interface level first), and the entry would be created
 * for one run and deleted by the next. A NEW such entry is therefore created only once the
 * application has been seen at application level only for `settleMs`; an existing one is
 * updated as usual. Continuous mode only (`sync --once` has no earlier run to compare with).
 */
export const settleApplicationLevel: PlanFilter = {
  name: 'application-level settle',
  apply: (changes, input) => {
    const s = input.applicationSettle;
    if (s === undefined || s.settleMs <= 0) return { changes: [...changes] };
    return {
      changes: changes.map((c) => {
        if (c.action !== 'create' || c.desired === undefined || c.applied === true) return c;
        const since = s.unmappedSince.get(serviceKeyString(c.desired.key));
        if (since === undefined || s.now - since >= s.settleMs) return c;
        return keep(
          c,
          `Dubbo application registered at application level only, seen so for ${s.now - since} ms: a new entry of its own waits ${s.settleMs} ms (controller.applicationSettle), as the interface level of a register-mode=all provider is written and removed beside it`,
        );
      }),
    };
  },
};

/** `sync` writes everything; `upsert-only` never deletes; `create-only` never updates or deletes. */
export const policyMode: PlanFilter = {
  name: 'policy mode',
  apply: (changes, input) => ({
    changes: changes.map((c) => {
      if (c.action === 'delete' && input.policy !== 'sync')
        return keep(c, `${c.reason ?? 'not desired'}; policy ${input.policy} never deletes`);
      if (c.action === 'update' && input.policy === 'create-only')
        return keep(c, `${c.reason ?? 'differs'}; policy create-only never updates`);
      return c;
    }),
  }),
};

/**
 * The sharp-shrink hold. A registry restarted empty or without all of its data (ZooKeeper on an
 * empty data dir, r-nacos right after a restart, Java Nacos before its naming data is loaded)
 * answers successfully with few or no services; believed at once, it would delete every entry
 * of its source. So when a healthy source's read would delete, in one run, entries whose
 * services are gone or empty, and it lists no service at all, or those deletions are at least
 * `minEntries` and more than `percent` % of the entries it owns, its deletions are held (kept,
 * reason given) until the shrink is confirmed: in continuous mode by persisting for the
 * confirmation window, read again by a full run (a hold goes on, whatever the share, until no
 * entry of the source would go any more, or until it is confirmed); `sync --once` never
 * confirms it by itself (`--allow-shrink` does). Hand-overs to another source that publishes the host are updates,
 * never held. Entries that move to another name of the same service are not a shrink.
 */
export const shrinkHold: PlanFilter = {
  name: 'sharp-shrink hold',
  apply: (changes, input) => {
    const settings = input.shrink;
    if (settings === undefined || input.scope?.kind === 'keys') return { changes: [...changes] };
    const gone = new Set((input.empty ?? []).map((e) => `${e.namespace}/${e.name}`));
    const present = input.present ?? new Set(input.desired.map((d) => serviceKeyString(d.key)));
    // A deletion because the service is gone or has nothing usable: what a registry that lost
    // its data causes. One whose service still publishes (under another name) is not.
    const lost = (c: Change) =>
      c.action === 'delete' &&
      c.observed !== undefined &&
      c.observed.early !== true &&
      (c.observed.service === undefined || !present.has(c.observed.service) || gone.has(`${c.namespace}/${c.name}`));
    const owned = new Map<string, number>();
    for (const o of input.observed)
      if (o.owned && !o.elsewhere && o.early !== true && o.source !== undefined)
        owned.set(o.source, (owned.get(o.source) ?? 0) + 1);
    const deleting = new Map<string, number>();
    for (const c of changes)
      if (lost(c)) deleting.set(c.observed!.source!, (deleting.get(c.observed!.source!) ?? 0) + 1);

    const shrinks: Shrink[] = [];
    const held = new Map<string, string>();
    for (const [source, n] of sortByKey([...deleting], ([s]) => s)) {
      if (input.sourceHealthy.get(source) !== true) continue;
      const total = owned.get(source) ?? n;
      const listed = input.listed?.get(source);
      // A hold already running (continuous mode) goes on while any of the source's entries
      // would still go: a registry refilling bit by bit does not lose the rest in the
      // in-between runs where only a few are missing.
      const holding = settings.confirm.kind === 'window' && settings.confirm.since.has(source);
      const sharp = listed === 0 || holding || (n >= settings.minEntries && n * 100 > settings.percent * total);
      if (!sharp) continue;
      const what = `source "${source}" would lose ${n} of its ${total} entries in one run${
        listed !== undefined ? ` (it lists ${listed} service${listed === 1 ? '' : 's'})` : ''
      }`;
      const confirm = settings.confirm;
      if (confirm.kind === 'once') {
        shrinks.push({ source, owned: total, deleting: n, listed: listed ?? 0, held: true });
        held.set(
          source,
          `held: ${what}, a sharp shrink (policy.shrinkHold): sync --once keeps them and exits 4; run it with --allow-shrink to accept the shrink`,
        );
        continue;
      }
      const heldForMs = Math.max(0, confirm.now - (confirm.since.get(source) ?? confirm.now));
      const confirmInMs = Math.max(0, confirm.ms - heldForMs);
      shrinks.push({
        source,
        owned: total,
        deleting: n,
        listed: listed ?? 0,
        held: confirmInMs > 0,
        heldForMs,
        confirmInMs,
      });
      if (confirmInMs > 0)
        held.set(
          source,
          `held: ${what}, a sharp shrink (policy.shrinkHold): deleted only if it persists for ${formatDuration(confirm.ms)} (confirmFor; seen for ${formatDuration(heldForMs)} so far), kept if the services come back`,
        );
    }
    return {
      changes: changes.map((c) => {
        const reason = lost(c) ? held.get(c.observed!.source!) : undefined;
        return reason === undefined ? c : keep(c, `${c.reason ?? 'not desired'}; ${reason}`);
      }),
      shrinks,
    };
  },
};

/** At most `maxDeletes` deletions per run, the first by namespace/name; the rest wait. */
export const deletionCap: PlanFilter = {
  name: 'deletion cap',
  apply: (changes, input) => {
    const deletes = sortByKey(
      changes.filter((c) => c.action === 'delete'),
      (c) => `${c.namespace}/${c.name}`,
    );
    const over = new Set(deletes.slice(input.maxDeletes));
    return {
      changes: changes.map((c) =>
        over.has(c)
          ? keep(
              c,
              `${c.reason ?? 'not desired'}; deletion cap of ${input.maxDeletes} per run reached (${deletes.length} planned): deleting in a later run`,
            )
          : c,
      ),
    };
  },
};

/** The filters, in the order they apply. */
export const PLAN_FILTERS: readonly PlanFilter[] = [
  settleApplicationLevel,
  fenceSources,
  deleteOnlyInFullRuns,
  protectObjects,
  ownership,
  policyMode,
  shrinkHold,
  deletionCap,
];

export function applyPolicies(
  changes: readonly Change[],
  input: PlanInput,
  filters: readonly PlanFilter[] = PLAN_FILTERS,
): { changes: Change[]; needsFullRun: boolean; shrinks: Shrink[] } {
  let out = [...changes];
  let needsFullRun = false;
  const shrinks: Shrink[] = [];
  for (const f of filters) {
    const r = f.apply(out, input);
    out = r.changes;
    needsFullRun ||= r.needsFullRun ?? false;
    shrinks.push(...(r.shrinks ?? []));
  }
  return { changes: out, needsFullRun, shrinks };
}
