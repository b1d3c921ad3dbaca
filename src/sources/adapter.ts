import type { z } from 'zod';
import type { Logger } from '../log.js';
import type { RegistryService, ServiceKey, SourceSnapshot } from '../model/service.js';
import type { SecretRef } from '../config/secret.js';
import type { BridgeMetrics } from '../metrics.js';

/** What an adapter gets from the bridge: nothing global, everything passed in. */
export interface AdapterContext {
  /** Name of the configured source; goes into every ServiceKey the adapter makes. */
  readonly source: string;
  readonly logger: Logger;
  /** Directory of the config file: relative paths in adapter config resolve against it. */
  readonly baseDir: string;
  /** Reads a secret reference (env var or file). The value must never be logged. */
  readonly resolveSecret: (ref: SecretRef, field: string) => Promise<string>;
  /** The bridge's metrics; adapters count their own drops, staleness, reconnects. */
  readonly metrics: BridgeMetrics;
}

/** Called by a watching adapter when services changed; no keys = "anything may have changed". */
export type ChangeListener = (keys?: readonly ServiceKey[]) => void;

/**
 * Optional: each service of a `list` as soon as it is read, before the whole snapshot is (the
 * same object the snapshot will hold). Only an early look: the snapshot stays the truth, and an
 * adapter may call it for some services, all, or none.
 */
export type ServiceListener = (service: RegistryService) => void;

/**
 * One registry. `list` is the truth (a full read); `watch` only makes the next read come
 * sooner. An adapter keeps its own view of the registry and never decides what goes to kube.
 */
export interface SourceAdapter {
  /**
   * Reads every service. Throws SourceUnavailableError when the registry cannot be read:
   * an unreachable registry is never reported as an empty one.
   */
  list(signal: AbortSignal, onService?: ServiceListener): Promise<SourceSnapshot>;
  /**
   * Optional fast path: the current state of just these services, from the adapter's own view
   * (no full walk). A key missing from the result is a service that no longer exists. Throws
   * when the view cannot be trusted (disconnected): the controller then runs a full reconcile.
   */
  readServices?(keys: readonly ServiceKey[], signal: AbortSignal): Promise<SourceSnapshot>;
  /** Starts pushing change hints until the signal aborts. Optional. */
  watch?(onChange: ChangeListener, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export interface AdapterFactory<C = unknown> {
  /** The `kind` of a source in the config, and the key of its adapter-specific block. */
  readonly kind: string;
  /** Schema of the adapter-specific block (`sources[i].<kind>`). */
  readonly configSchema: z.ZodType<C>;
  /** Host template used when the source sets none. */
  readonly defaultHostTemplate: string;
  /** Template variables the adapter provides beyond service/group/namespace/source. */
  readonly templateAttributes?: readonly string[];
  create(config: C, context: AdapterContext): SourceAdapter;
}

/** Erases the config type for the registry list. */
export function defineAdapter<C>(factory: AdapterFactory<C>): AdapterFactory<unknown> {
  return factory as unknown as AdapterFactory<unknown>;
}
