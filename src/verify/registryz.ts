/**
 * istiod `/debug/registryz`: the aggregated service registry as a JSON array of model.Service.
 * Shapes differ by Istio version (istio/istio pilot/pkg/model/service.go, `type Service` and
 * `ServiceAttributes`; pilot/pkg/xds/debug.go `registryz`):
 * - ≤ 1.10 the handler wrote the array by hand and ended it with a literal `{}` element;
 * - ≤ 1.11 `address` + `cluster-vips` (map cluster → VIP), `Attributes.UID`, `Mutex`;
 *   1.12+ `clusterVIPs: {"Addresses": {cluster: [ip…]}}` and `defaultAddress`;
 * - `autoAllocatedAddress` 1.8–1.13, then `autoAllocatedIPv4Address` / `…IPv6Address`;
 * - `Attributes.ExportTo` `{"*": true}` ≤ 1.19 (map[visibility.Instance]bool), `{"*": {}}` 1.20+
 *   (sets.Set), `null` when the object sets none;
 * - `Attributes.ObjectName` (the ServiceEntry's name) 1.24+; `Attributes.Name` is the host;
 * - `Resolution` is istiod's own enum (model.Resolution): 0 ClientSideLB (STATIC), 1 DNSLB,
 *   2 Passthrough (NONE), 3 DNSRoundRobinLB, 4 Alias, 5 DynamicDNS.
 * Each element is parsed on its own: a malformed one is counted and dropped, the rest go on.
 */
import { z } from 'zod';
import { readElements } from './elements.js';
import { parseJsonText } from './json-input.js';

const portSchema = z.object({
  name: z.string().optional(),
  port: z.number().int(),
  protocol: z.string().optional(),
});

const addressMapSchema = z
  .object({ Addresses: z.record(z.string(), z.array(z.string()).nullable()).nullable().optional() })
  .nullable();

const attributesSchema = z.object({
  ServiceRegistry: z.string().optional(),
  Name: z.string().optional(),
  Namespace: z.string().optional(),
  ObjectName: z.string().optional(),
  ExportTo: z.record(z.string(), z.unknown()).nullable().optional(),
  Labels: z.record(z.string(), z.string()).nullable().optional(),
});

export const registryServiceSchema = z.object({
  hostname: z.string().min(1),
  ports: z.array(portSchema).nullable().optional(),
  creationTime: z.string().optional(),
  // ≤ 1.11
  address: z.string().optional(),
  'cluster-vips': z.record(z.string(), z.string()).nullable().optional(),
  // 1.12+
  clusterVIPs: addressMapSchema.optional(),
  defaultAddress: z.string().optional(),
  autoAllocatedAddress: z.string().optional(),
  autoAllocatedIPv4Address: z.string().optional(),
  autoAllocatedIPv6Address: z.string().optional(),
  Resolution: z.number().int().optional(),
  MeshExternal: z.boolean().optional(),
  Attributes: attributesSchema.optional(),
});

export type RegistryResolution =
  'STATIC' | 'DNS' | 'NONE' | 'DNS_ROUND_ROBIN' | 'ALIAS' | 'DYNAMIC_DNS' | `UNKNOWN(${number})`;

/** model.Resolution (istiod) → the ServiceEntry resolution it came from. */
export function resolutionName(code: number): RegistryResolution {
  const names: readonly RegistryResolution[] = ['STATIC', 'DNS', 'NONE', 'DNS_ROUND_ROBIN', 'ALIAS', 'DYNAMIC_DNS'];
  return names[code] ?? `UNKNOWN(${code})`;
}

/** One registryz element, in one shape whatever the Istio version. */
export interface RegistryEntry {
  readonly hostname: string;
  readonly registry?: string;
  readonly namespace?: string;
  /** ServiceEntry name (1.24+ only). */
  readonly objectName?: string;
  readonly ports: readonly { readonly name?: string; readonly port: number; readonly protocol?: string }[];
  /** Absent when istiod left it out (0 = STATIC is never omitted: the field has no omitempty). */
  readonly resolution?: RegistryResolution;
  readonly meshExternal?: boolean;
  /** Every address istiod knows for the host (VIPs, auto-allocated), without 0.0.0.0. */
  readonly addresses: readonly string[];
  /** Namespaces the service is exported to; absent = istiod's default. */
  readonly exportTo?: readonly string[];
  readonly creationTime?: string;
}

/** A registryz element that could not be read: its index, host when it has one, and why. */
export interface DroppedElement {
  readonly index: number;
  readonly hostname?: string;
  readonly reason: string;
}

export interface RegistryzParse {
  readonly entries: readonly RegistryEntry[];
  /** Elements that did not match any known shape (the `{}` terminator of ≤ 1.10 not counted). */
  readonly dropped: number;
  /** Each dropped element, in order. */
  readonly droppedElements: readonly DroppedElement[];
}

/**
 * Parses the body of `/debug/registryz` (any version): an array of services, or one service
 * object (a single element saved on its own). Throws when it is not JSON (JsonSyntaxError with
 * line and column) or neither shape.
 */
export function parseRegistryz(body: string): RegistryzParse {
  const raw = parseJsonText(body, 'registryz');
  let elements: readonly unknown[];
  if (Array.isArray(raw)) elements = raw;
  else if (raw !== null && typeof raw === 'object' && 'hostname' in raw) elements = [raw];
  else throw new Error('registryz is neither a JSON array of services nor one service object (with "hostname")');
  // The {} terminator of ≤ 1.10 is neither an entry nor a dropped element.
  const isTerminator = (e: unknown) =>
    e !== null && typeof e === 'object' && !Array.isArray(e) && Object.keys(e).length === 0;
  const { read, dropped } = readElements(elements, registryServiceSchema, 'hostname', isTerminator);
  const droppedElements = dropped.map(({ index, id, reason }) => ({ index, ...(id ? { hostname: id } : {}), reason }));
  return { entries: read.map(normalize), dropped: droppedElements.length, droppedElements };
}

/** One line per dropped element, for the report and stderr. */
export function droppedText(d: DroppedElement): string {
  return `registryz element ${d.index}${d.hostname ? ` (host ${d.hostname})` : ''} skipped: ${d.reason}`;
}

function normalize(s: z.infer<typeof registryServiceSchema>): RegistryEntry {
  const addresses = new Set<string>();
  const add = (a: string | undefined | null) => {
    if (a && a !== '0.0.0.0' && a !== '::') addresses.add(a);
  };
  add(s.address);
  add(s.defaultAddress);
  for (const v of Object.values(s['cluster-vips'] ?? {})) add(v);
  for (const list of Object.values(s.clusterVIPs?.Addresses ?? {})) for (const a of list ?? []) add(a);
  add(s.autoAllocatedAddress);
  add(s.autoAllocatedIPv4Address);
  add(s.autoAllocatedIPv6Address);
  const attrs = s.Attributes;
  return {
    hostname: s.hostname,
    ...(attrs?.ServiceRegistry !== undefined ? { registry: attrs.ServiceRegistry } : {}),
    ...(attrs?.Namespace !== undefined ? { namespace: attrs.Namespace } : {}),
    ...(attrs?.ObjectName ? { objectName: attrs.ObjectName } : {}),
    ports: (s.ports ?? []).map((p) => ({
      port: p.port,
      ...(p.name !== undefined ? { name: p.name } : {}),
      ...(p.protocol !== undefined ? { protocol: p.protocol } : {}),
    })),
    ...(s.Resolution !== undefined ? { resolution: resolutionName(s.Resolution) } : {}),
    ...(s.MeshExternal !== undefined ? { meshExternal: s.MeshExternal } : {}),
    addresses: [...addresses].sort(),
    ...(attrs?.ExportTo ? { exportTo: Object.keys(attrs.ExportTo).sort() } : {}),
    ...(s.creationTime !== undefined ? { creationTime: s.creationTime } : {}),
  };
}
