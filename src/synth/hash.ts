import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeysDeep(value));
}

export function sortKeysDeep<T>(value: T, copies = new Map<object, unknown>()): T {
  if (value === null || typeof value !== 'object') return value;
  // An object reached twice (endpoints sharing one labels object) stays shared in the copy.
  const known = copies.get(value);
  if (known !== undefined) return known as T;
  let out: unknown;
  if (Array.isArray(value)) out = value.map((v) => sortKeysDeep(v, copies));
  else {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) o[k] = sortKeysDeep(v, copies);
    }
    out = o;
  }
  copies.set(value, out);
  return out as T;
}

/** Short stable hash (hex) of a string. */
export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}
