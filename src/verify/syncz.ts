/**
 * istiod `/debug/syncz`: per connected proxy, the nonce last sent and last ACKed per xDS type
 * (istio/istio pilot/pkg/xds/debug.go `SyncStatus`: `proxy`, `cluster_sent`, `cluster_acked`,
 * `listener_*`, `route_*`, `endpoint_*`; `resources` by type URL from 1.22). Since 1.23 a
 * nonce starts with the push version (`<RFC3339>/<n>` + uuid), which is also the response's
 * `version_info` (pilot/pkg/xds/xdsgen.go: `Nonce: nonce(req.Push.PushVersion)`).
 */
import { z } from 'zod';
import { parseJsonText } from './json-input.js';
import { readElements } from './elements.js';

const statusSchema = z.object({
  proxy: z.string().min(1),
  cluster_id: z.string().optional(),
  proxy_type: z.string().optional(),
  istio_version: z.string().optional(),
  cluster_sent: z.string().optional(),
  cluster_acked: z.string().optional(),
  listener_sent: z.string().optional(),
  listener_acked: z.string().optional(),
  route_sent: z.string().optional(),
  route_acked: z.string().optional(),
  endpoint_sent: z.string().optional(),
  endpoint_acked: z.string().optional(),
});

export type XdsKind = 'cluster' | 'listener' | 'route' | 'endpoint';
export const xdsKinds: readonly XdsKind[] = ['cluster', 'listener', 'route', 'endpoint'];

export interface ProxySyncStatus {
  readonly proxy: string;
  readonly clusterId?: string;
  readonly sent: Readonly<Partial<Record<XdsKind, string>>>;
  readonly acked: Readonly<Partial<Record<XdsKind, string>>>;
}

/** A syncz element that could not be read: its index, the proxy id when it has one, and why. */
export interface DroppedSyncStatus {
  readonly index: number;
  readonly proxy?: string;
  readonly reason: string;
}

export interface SynczParse {
  readonly proxies: readonly ProxySyncStatus[];
  readonly dropped: number;
  /** Each dropped element, in order. */
  readonly droppedElements: readonly DroppedSyncStatus[];
}

export function parseSyncz(body: string): SynczParse {
  const raw = parseJsonText(body, 'syncz');
  if (!Array.isArray(raw)) throw new Error('syncz is not a JSON array of proxies');
  const { read, dropped } = readElements(raw, statusSchema, 'proxy');
  const proxies = read.map((p): ProxySyncStatus => {
    const sent: Partial<Record<XdsKind, string>> = {};
    const acked: Partial<Record<XdsKind, string>> = {};
    for (const k of xdsKinds) {
      const s = p[`${k}_sent`];
      const a = p[`${k}_acked`];
      if (s) sent[k] = s;
      if (a) acked[k] = a;
    }
    return { proxy: p.proxy, ...(p.cluster_id ? { clusterId: p.cluster_id } : {}), sent, acked };
  });
  const droppedElements = dropped.map(({ index, id, reason }) => ({ index, ...(id ? { proxy: id } : {}), reason }));
  return { proxies, dropped: droppedElements.length, droppedElements };
}

/** One line per dropped element, for the report and stderr. */
export function droppedSynczText(d: DroppedSyncStatus): string {
  return `syncz element ${d.index}${d.proxy ? ` (proxy ${d.proxy})` : ''} skipped: ${d.reason}`;
}

/**
 * The push version a nonce or version_info starts with: `2026-04-23T12:00:00Z/7` → its time
 * (ms) and counter. Undefined for nonces of older istiod (a bare uuid).
 */
export function pushVersionOf(nonceOrVersion: string): { readonly time: number; readonly counter: number } | undefined {
  // nonce = push version + uuid (pilot/pkg/xds/discovery.go `nonce`), no separator.
  const version = nonceOrVersion.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, '');
  const m = /^(\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d))\/(\d+)$/.exec(version);
  if (!m) return undefined;
  const time = Date.parse(m[1]!);
  if (Number.isNaN(time)) return undefined;
  return { time, counter: Number(m[2]) };
}

/** a is the same push as b or a later one (push versions compare by time, then counter). */
export function isSameOrLaterPush(a: string, b: string): boolean | undefined {
  if (a === b) return true;
  const pa = pushVersionOf(a);
  const pb = pushVersionOf(b);
  if (!pa || !pb) return undefined;
  return pa.time > pb.time || (pa.time === pb.time && pa.counter >= pb.counter);
}
