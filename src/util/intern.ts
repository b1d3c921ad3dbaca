import type { Instance } from '../model/service.js';

/**
 * String interning for registry data kept in memory (the watched views).
 *
 * Registry values repeat a lot (`true`, `provider`, a Dubbo version, an application name) and
 * V8 keeps every parsed copy: a substring is a "sliced string" that pins the whole text it was
 * cut from (a 250-character provider URL behind every `version=1.0.0`). `intern` returns one
 * shared, flat copy per distinct value, so the text a value came from can be collected.
 *
 * Bounded: when the table holds `limit` strings it starts over, so a registry with endlessly
 * new values costs at most `limit` entries here; strings already handed out stay valid (they
 * are only no longer shared with later copies).
 */
export class Interner {
  private table = new Map<string, string>();

  constructor(private readonly limit = 100_000) {}

  intern(value: string): string {
    const known = this.table.get(value);
    if (known !== undefined) return known;
    if (this.table.size >= this.limit) this.table = new Map();
    const flat = flatCopy(value);
    this.table.set(flat, flat);
    return flat;
  }

  get size(): number {
    return this.table.size;
  }
}

/**
 * A copy of `value` that shares no storage with the string it may have been sliced from.
 * Short strings are already copied by V8 when sliced (below 13 characters), so they are kept.
 */
export function flatCopy(value: string): string {
  if (value.length < 13) return value;
  // A JSON round trip always allocates a new string and is lossless for any UTF-16 text.
  return JSON.parse(JSON.stringify(value)) as string;
}

/** The process-wide table the adapters share. */
export const registryStrings = new Interner();

/**
 * The instance with its metadata object shared with every instance seen before (in `seen`, one
 * map per service) that has equal metadata: instances of one service usually differ only in
 * address and port, so a view of 10,000 services × 5 instances holds one metadata object per
 * service. Metadata keys must be in a stable order (adapters sort them or keep the registry's).
 */
export function withSharedMetadata(instance: Instance, seen: Map<string, Instance['metadata']>): Instance {
  const key = JSON.stringify(instance.metadata);
  const known = seen.get(key);
  if (known === undefined) {
    seen.set(key, instance.metadata);
    return instance;
  }
  return known === instance.metadata ? instance : { ...instance, metadata: known };
}
