import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../log.js';
import type { BridgeMetrics } from '../../metrics.js';
import type { Sink } from '../types.js';

export const SERVICE_ENTRY_VERSIONS = [
  'networking.istio.io/v1',
  'networking.istio.io/v1beta1',
  'networking.istio.io/v1alpha3',
] as const;

export interface KubeSinkOptions {
  readonly kc: KubeConfig;
  /** Namespaces the bridge writes to (every source's targetNamespace). */
  readonly namespaces: readonly string[];
  /** `auto` = discover from the API server. */
  readonly apiVersion: 'auto' | (typeof SERVICE_ENTRY_VERSIONS)[number];
  readonly fieldManager: string;
  /** Writes per second (client-side rate limit). */
  readonly qps: number;
  readonly concurrency: number;
  readonly logger: Logger;
  readonly metrics: BridgeMetrics;
  /** Retries of one write (jittered exponential backoff, capped). */
  readonly retries?: number;
  readonly pageSize?: number;
}

export interface KubeSink extends Sink {
  /** The ServiceEntry apiVersion in use (after discovery). */
  apiVersion(signal?: AbortSignal): Promise<string>;
  /**
   * Checks at start what every run needs: the API server answers, accepts the credentials,
   * serves ServiceEntries, and lets the bridge list and apply them in each target namespace.
   * Throws a SinkError whose one-line message names the cause; logs a warning for a missing
   * permission a run can do without (watch, delete).
   */
  preflight(signal: AbortSignal): Promise<void>;
}
