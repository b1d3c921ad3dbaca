import type { IstioProtocol, Location, Resolution } from '../synth/types.js';

/** The hops a change travels, in order. */
export type Hop = 'kube' | 'istiod' | 'proxy' | 'sync';
export const hopOrder: readonly Hop[] = ['kube', 'istiod', 'proxy', 'sync'];

/** What the bridge wrote for one host: the spec every hop is compared with. */
export interface Expectation {
  readonly host: string;
  /** Namespace and name of the ServiceEntry object. */
  readonly namespace: string;
  readonly name: string;
  /** `registry-bridge.io/content-hash` of the desired object, when known. */
  readonly hash?: string;
  readonly location: Location;
  readonly resolution: Resolution;
  readonly ports: readonly {
    readonly number: number;
    readonly name: string;
    readonly protocol: IstioProtocol | string;
  }[];
  readonly exportTo?: readonly string[];
  /** `spec.addresses` (VIPs): a sidecar gets a listener bound to each. */
  readonly addresses?: readonly string[];
  /** Endpoints in the spec (STATIC: what EDS should carry). */
  readonly endpoints: number;
}

/**
 * - `ok`: present and as expected
 * - `missing`: not there (yet)
 * - `differs`: there, but not what the bridge wrote
 * - `unauthorized` / `forbidden`: the hop answered 401 / 403
 * - `error`: the hop could not be read
 * - `skipped`: no source configured for this hop
 */
export type HopStatus = 'ok' | 'missing' | 'differs' | 'unauthorized' | 'forbidden' | 'error' | 'skipped';

export interface HopCheck {
  readonly hop: Hop;
  readonly status: HopStatus;
  /** What differs or why it is missing, one sentence each; empty when ok. */
  readonly detail: readonly string[];
  /** Where it was seen: `kube networking.istio.io/v1`, `xds 127.0.0.1:15010 as default`, a file. */
  readonly source?: string;
  /** When the hop says it got the change (creation time, last_updated, push time), ISO 8601. */
  readonly since?: string;
  /** now − since, ms. */
  readonly ageMs?: number;
  /** Time from the write to the first observation at this hop, ms (trace / continuous mode). */
  readonly latencyMs?: number;
  /**
   * Waiting will not change this failure (401/403, a bad local file, a closed xDS stream, an
   * object the bridge does not own, an exportTo that hides the host): trace and verify stop.
   */
  readonly final?: boolean;
}

export interface HostReport {
  readonly host: string;
  readonly namespace: string;
  readonly name: string;
  readonly ok: boolean;
  readonly hops: readonly HopCheck[];
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Ordered by host. */
  readonly hosts: readonly HostReport[];
  readonly checkedAt: string;
}

/** A failed read of a hop's source; the status says 401/403 when the server said so. */
export class HopReadError extends Error {
  readonly status: number | undefined;
  /** Reading again will not help (a closed stream, a bad local file). */
  readonly final: boolean;
  constructor(message: string, options?: { cause?: unknown; status?: number | undefined; final?: boolean }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.status = options?.status;
    this.final = options?.final ?? false;
    this.name = 'HopReadError';
  }
}

/** A read failure that no retry repairs: 401, 403, or a HopReadError marked final. */
export function isFinalError(err: unknown): boolean {
  if (!(err instanceof HopReadError)) return false;
  return err.final || err.status === 401 || err.status === 403;
}

export function hopStatusOfError(err: unknown): HopStatus {
  const status = err instanceof HopReadError ? err.status : undefined;
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  return 'error';
}
