import { serviceKeyString, type RegistryService } from '../../src/model/service.js';

/** What empty protection remembers per service between reads. */
export interface KnownService {
  /** Last read with at least one instance. */
  readonly lastGood: RegistryService;
  /** When the service was first seen empty (or missing) after lastGood; undefined = not empty. */
  readonly emptySince?: number;
}

export interface ProtectionResult {
  readonly services: readonly RegistryService[];
  readonly known: ReadonlyMap<string, KnownService>;
  /** Keys served from memory this time, with how long (ms) they have been empty. */
  readonly kept: readonly { readonly key: string; readonly emptyForMs: number }[];
}

/**
 * Pure: a service that had instances and now reads empty (or vanished from the service list
 * while the server answered normally) keeps its last known instances for `keepForMs` after it
 * was first seen empty. After that the empty read is believed. `keepForMs = 0` disables it.
 */
export function protectEmpty(
  read: readonly RegistryService[],
  previous: ReadonlyMap<string, KnownService>,
  now: number,
  keepForMs: number,
): ProtectionResult {
  const known = new Map<string, KnownService>();
  const services: RegistryService[] = [];
  const kept: { key: string; emptyForMs: number }[] = [];
  const seen = new Set<string>();

  const protect = (key: string, current: RegistryService | undefined): void => {
    const prev = previous.get(key);
    if (keepForMs > 0 && prev) {
      const emptySince = prev.emptySince ?? now;
      if (now - emptySince < keepForMs) {
        services.push(prev.lastGood);
        known.set(key, { lastGood: prev.lastGood, emptySince });
        kept.push({ key, emptyForMs: now - emptySince });
        return;
      }
    }
    if (current) services.push(current);
  };

  for (const s of read) {
    const key = serviceKeyString(s.key);
    seen.add(key);
    if (s.instances.length > 0) {
      services.push(s);
      known.set(key, { lastGood: s });
    } else protect(key, s);
  }
  for (const key of previous.keys()) if (!seen.has(key)) protect(key, undefined);
  return { services, known, kept };
}
