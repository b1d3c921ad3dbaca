/**
 * The xDS probe of continuous mode, kept connected: when the stream to istiod fails or istiod
 * closes it (istiod restarted, a rollout, a network cut), a new stream is opened with a bounded,
 * jittered backoff, as the same proxy id. While there is none, `snapshot()` throws why, so the
 * proxy hop fails with the reason instead of passing or being skipped. One warning per outage,
 * one info line when the stream is back (`onReconnect` then lets the caller check again what
 * failed meanwhile).
 */
import { randomBytes } from 'node:crypto';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BridgeMetrics } from '../metrics.js';
import { onAbort, sleep as abortableSleep } from '../util/abort.js';
import type { XdsKind } from './syncz.js';
import { HopReadError } from './types.js';
import { XdsProbe, type XdsProbeOptions, type XdsSnapshot, type XdsView } from './xds-probe.js';

export interface ReconnectOptions {
  /** First wait after a failed attempt; doubles per attempt up to maxBackoffMs (±20 % jitter). */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** How long one attempt may take to receive the initial CDS/LDS/RDS. */
  readonly connectTimeoutMs: number;
}

export interface ReconnectDeps {
  readonly logger: Logger;
  readonly metrics?: BridgeMetrics;
  /** Called each time a stream opens after one was lost or could not be opened. */
  readonly onReconnect?: () => void;
  readonly connect?: (options: XdsProbeOptions, signal: AbortSignal, timeoutMs: number) => Promise<XdsProbe>;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  readonly now?: () => number;
}

export const defaultReconnectOptions: ReconnectOptions = {
  initialBackoffMs: 500,
  maxBackoffMs: 15_000,
  connectTimeoutMs: 10_000,
};

/** The wait before attempt `n` (1-based) after a failure: bounded exponential, jittered. */
export function reconnectDelayMs(n: number, options: ReconnectOptions, random: () => number): number {
  const base = Math.min(options.maxBackoffMs, options.initialBackoffMs * 2 ** Math.max(0, n - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export class ReconnectingXdsProbe implements XdsView {
  readonly proxyId: string;
  readonly namespace: string;
  readonly address: string;
  private probe: XdsProbe | undefined;
  /** Why there is no open stream (undefined before the first attempt ends, and while one is open). */
  private down: { reason: Error; since: number; attempts: number } | undefined;
  private everConnected = false;
  private readonly log: Logger;
  private readonly now: () => number;
  private firstAttempt: Promise<void> | undefined;

  constructor(
    private readonly probeOptions: XdsProbeOptions,
    private readonly deps: ReconnectDeps,
    private readonly signal: AbortSignal,
    private readonly options: ReconnectOptions = defaultReconnectOptions,
  ) {
    // The same node id on every stream: istiod's syncz and config_dump know the probe by it.
    const pod = probeOptions.podName ?? `registry-bridge-probe-${randomBytes(3).toString('hex')}`;
    this.probeOptions = { ...probeOptions, podName: pod };
    this.proxyId = `${pod}.${probeOptions.namespace}`;
    this.namespace = probeOptions.namespace;
    this.address = probeOptions.address;
    this.now = deps.now ?? Date.now;
    this.log = deps.logger.child({ component: 'xds-probe', xds: probeOptions.address });
  }

  /** Starts the connection loop; resolves once the first attempt has succeeded or failed. */
  start(): Promise<void> {
    if (!this.firstAttempt) {
      let firstDone: () => void = () => undefined;
      this.firstAttempt = new Promise<void>((r) => (firstDone = r));
      void this.run(firstDone);
    }
    return this.firstAttempt;
  }

  get connected(): boolean {
    return this.probe !== undefined;
  }

  snapshot(): XdsSnapshot {
    if (this.probe) return this.probe.snapshot();
    const d = this.down;
    throw new HopReadError(
      d
        ? `xDS stream to ${this.address}: ${d.reason.message}; reconnecting (down for ${this.now() - d.since} ms, ${d.attempts} attempts)`
        : `xDS stream to ${this.address}: not open yet`,
      d ? { cause: d.reason } : undefined,
    );
  }

  versionOf(kind: XdsKind, name: string): string | undefined {
    return this.probe?.versionOf(kind, name);
  }

  close(): void {
    this.probe?.close();
    this.probe = undefined;
  }

  private async run(firstDone: () => void): Promise<void> {
    const connect = this.deps.connect ?? ((o, s, t) => XdsProbe.connect(o, s, t));
    const sleep = this.deps.sleep ?? ((ms: number, s: AbortSignal) => abortableSleep(ms, s).catch(() => undefined));
    const random = this.deps.random ?? Math.random;
    while (!this.signal.aborted) {
      let probe: XdsProbe;
      try {
        probe = await connect(this.probeOptions, this.signal, this.options.connectTimeoutMs);
      } catch (err) {
        if (this.signal.aborted) break;
        this.lost(err instanceof Error ? err : new Error(describeError(err)), true);
        firstDone();
        await sleep(reconnectDelayMs(this.down!.attempts, this.options, random), this.signal);
        continue;
      }
      if (this.signal.aborted) {
        probe.close();
        break;
      }
      this.opened(probe);
      firstDone();
      let unlink = () => undefined as void;
      const stopped = new Promise<undefined>((r) => (unlink = onAbort(this.signal, () => r(undefined))));
      const err = await Promise.race([probe.whenFailed(), stopped]).finally(unlink);
      if (!err || this.signal.aborted) break;
      probe.close();
      this.probe = undefined;
      this.lost(err, false);
      await sleep(reconnectDelayMs(1, this.options, random), this.signal);
    }
    this.close();
    this.deps.metrics?.xdsUp.set(0);
    firstDone();
  }

  private opened(probe: XdsProbe): void {
    this.probe = probe;
    this.deps.metrics?.xdsUp.set(1);
    const d = this.down;
    this.down = undefined;
    if (!this.everConnected) {
      this.everConnected = true;
      this.log.info({ proxyId: this.proxyId }, 'xDS probe connected');
      // Failed attempts before the first stream: what was checked meanwhile is checked again.
      if (d) this.deps.onReconnect?.();
      return;
    }
    this.deps.metrics?.xdsReconnects.inc();
    this.log.info(
      { proxyId: this.proxyId, downMs: d ? this.now() - d.since : 0, attempts: d?.attempts ?? 0 },
      'xDS stream to istiod open again',
    );
    this.deps.onReconnect?.();
  }

  /** Notes a failure; the first of an outage is logged at warn, the rest at debug. */
  private lost(reason: Error, attempt: boolean): void {
    this.deps.metrics?.xdsUp.set(0);
    if (this.down) {
      this.down = { ...this.down, reason, attempts: this.down.attempts + (attempt ? 1 : 0) };
      this.log.debug({ err: reason.message, attempts: this.down.attempts }, 'xDS reconnect attempt failed');
      return;
    }
    this.down = { reason, since: this.now(), attempts: attempt ? 1 : 0 };
    this.log.warn(
      { err: reason.message },
      this.everConnected
        ? 'xDS stream to istiod lost; reconnecting with backoff (the proxy hop fails until it is back)'
        : 'xDS probe cannot connect; retrying with backoff (the proxy hop fails until it connects)',
    );
  }
}
