/**
 * Runs the probes in rounds and checks every target host against what each hop shows. Each
 * round reads every source once (one kube list, one registryz, one syncz, the probe's current
 * view) whatever the number of hosts, so istiod's load does not grow with the change set.
 * The comparison is the pure `checkHost`; this file only reads, waits and measures.
 */
import type { Logger } from '../log.js';
import { linkedSignal, sleep as abortableSleep } from '../util/abort.js';
import type { BridgeMetrics } from '../metrics.js';
import {
  checkHost,
  clusterName,
  type HopInputs,
  type KubeServiceEntry,
  type Observed,
  type ProxyObservation,
  type SyncObservation,
} from './compare.js';
import type { IstiodDebugClient } from './istiod-http.js';
import type { KubeProbe } from './kube-probe.js';
import { droppedProxyText, parseConfigDump } from './proxy-config.js';
import {
  droppedText,
  parseRegistryz,
  type DroppedElement,
  type RegistryEntry,
  type RegistryzParse,
} from './registryz.js';
import { droppedSynczText, isSameOrLaterPush, parseSyncz, type SynczParse, type XdsKind } from './syncz.js';
import type { Expectation, Hop, HopCheck, HostReport, VerifyReport } from './types.js';
import type { XdsView } from './xds-probe.js';

export interface VerifyTarget {
  readonly expectation: Expectation;
  /** When the bridge wrote the change (epoch ms): hop latencies are measured from it. */
  readonly writtenAt?: number;
}

/** A local file read and parsed once (offline checks never re-read or wait), or why it could not be. */
export type Saved<T> = { readonly source: string } & (
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: Error }
);

/** Where the proxy hop looks, besides the live xDS probe. */
export type ProxySource = (signal: AbortSignal) => Promise<ProxyObservation>;

export interface VerifyDeps {
  readonly kube?: KubeProbe;
  /** istiod's debug endpoint (registryz, syncz, config_dump). */
  readonly istiod?: IstiodDebugClient;
  /** A saved registryz (offline), parsed once, used when `istiod` is absent. */
  readonly savedRegistryz?: Saved<RegistryzParse>;
  /** A saved syncz (offline), parsed once, used when `istiod` is absent; needs `proxyId`. */
  readonly savedSyncz?: Saved<SynczParse>;
  /** The live ADS probe: proxy hop, and with `istiod` the sync hop. */
  readonly xds?: XdsView;
  /** A config dump (Envoy admin, istiod config_dump, istioctl output), when there is no probe. */
  readonly proxy?: ProxySource;
  /** The istiod proxy id whose sync status to check when there is no probe (a real pod). */
  readonly proxyId?: string;
  readonly clock: () => number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly metrics?: BridgeMetrics;
  readonly logger?: Logger;
}

export interface VerifyOptions {
  /** Keep polling until every hop is ok or this much time has passed (0: one round). */
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
  /** Called after each round (trace prints progress). */
  readonly onRound?: (report: VerifyReport) => void;
}

const defaultSleep = (ms: number, signal: AbortSignal) => abortableSleep(ms, signal).catch(() => undefined);

async function observe<T>(source: string, read: () => Promise<T>): Promise<Observed<T> & { at: number }> {
  try {
    const value = await read();
    return { ok: true, source, value, at: Date.now() };
  } catch (error) {
    return { ok: false, source, error, at: Date.now() };
  }
}

interface Round {
  readonly inputs: HopInputs;
  /** When each hop's read completed (clock). */
  readonly readAt: Partial<Record<Hop, number>>;
}

/**
 * Logs, once per verification, each element of a live debug source that could not be read
 * (they stay in every round's hop details; the log names them once, not every round).
 */
function warnDropped(deps: VerifyDeps, warned: Set<string>, what: string, texts: readonly string[]): void {
  const fresh = texts.filter((t) => !warned.has(t));
  if (fresh.length === 0) return;
  for (const t of fresh) warned.add(t);
  deps.logger?.warn(
    { component: 'verify', dropped: texts.length, elements: fresh },
    `${what} in an unknown shape were skipped`,
  );
}

async function readRound(deps: VerifyDeps, signal: AbortSignal, warned: Set<string>): Promise<Round> {
  const readAt: Partial<Record<Hop, number>> = {};
  const stamp = <T>(hop: Hop, o: Observed<T>): Observed<T> => ((readAt[hop] = deps.clock()), o);
  const tasks: Promise<void>[] = [];
  let kube: Observed<readonly KubeServiceEntry[]> | undefined;
  let registry: Observed<readonly RegistryEntry[]> | undefined;
  let registryDropped: readonly DroppedElement[] = [];
  let proxy: Observed<ProxyObservation> | undefined;
  let sync: Observed<SyncObservation> | undefined;
  if (deps.kube) {
    const k = deps.kube;
    tasks.push(observe(k.source, () => k.listOwned(signal)).then((o) => void (kube = stamp('kube', o))));
  }
  if (deps.istiod) {
    const istiod = deps.istiod;
    tasks.push(
      observe(`${istiod.baseUrl}/debug/registryz`, async () => {
        const parsed = parseRegistryz(await istiod.get('/debug/registryz', signal));
        registryDropped = parsed.droppedElements;
        warnDropped(deps, warned, 'registryz elements', parsed.droppedElements.map(droppedText));
        return parsed.entries;
      }).then((o) => void (registry = stamp('istiod', o))),
    );
  } else if (deps.savedRegistryz) {
    const saved = deps.savedRegistryz;
    if (saved.ok) registryDropped = saved.value.droppedElements;
    registry = stamp(
      'istiod',
      saved.ok
        ? { ok: true, source: saved.source, value: saved.value.entries }
        : { ok: false, source: saved.source, error: saved.error },
    );
  }
  const proxyId = deps.xds?.proxyId ?? deps.proxyId;
  if (deps.istiod && proxyId) {
    const istiod = deps.istiod;
    tasks.push(
      observe(`${istiod.baseUrl}/debug/syncz`, async () => {
        const parsed = parseSyncz(await istiod.get('/debug/syncz', signal));
        warnDropped(deps, warned, 'syncz elements', parsed.droppedElements.map(droppedSynczText));
        return { proxyId, proxies: parsed.proxies, dropped: parsed.droppedElements };
      }).then((o) => void (sync = stamp('sync', o))),
    );
  } else if (deps.savedSyncz && proxyId) {
    const saved = deps.savedSyncz;
    sync = stamp(
      'sync',
      saved.ok
        ? {
            ok: true,
            source: saved.source,
            value: { proxyId, proxies: saved.value.proxies, dropped: saved.value.droppedElements },
          }
        : { ok: false, source: saved.source, error: saved.error },
    );
  }
  if (deps.xds) {
    const x = deps.xds;
    tasks.push(
      observe(`xds ${x.address} as ${x.proxyId}`, async () => {
        const snap = x.snapshot();
        return {
          namespace: x.namespace,
          view: snap.view,
          kinds: new Set<XdsKind>(['cluster', 'listener', 'route', 'endpoint']),
          received: snap.received,
        };
      }).then((o) => void (proxy = stamp('proxy', o))),
    );
  } else if (deps.proxy) {
    const p = deps.proxy;
    tasks.push(
      observe('config dump', async () => {
        const seen = await p(signal);
        warnDropped(deps, warned, 'config dump elements', seen.view.droppedElements.map(droppedProxyText));
        return seen;
      }).then((o) => void (proxy = stamp('proxy', o))),
    );
  }
  await Promise.all(tasks);
  return {
    inputs: {
      now: deps.clock(),
      ...(kube ? { kube } : {}),
      ...(registry ? { registry, registryDropped } : {}),
      ...(proxy ? { proxy } : {}),
      ...(sync ? { sync } : {}),
    },
    readAt,
  };
}

/** The push versions in which the probe got this host's resources (what syncz must show ACKed). */
function neededPushes(expect: Expectation, xds: XdsView | undefined): Partial<Record<XdsKind, string>> {
  if (!xds) return {};
  const snap = xds.snapshot();
  const needed: Partial<Record<XdsKind, string>> = {};
  const keep = (kind: XdsKind, version: string | undefined) => {
    if (!version) return;
    const cur = needed[kind];
    if (cur === undefined || isSameOrLaterPush(version, cur) === true) needed[kind] = version;
  };
  for (const p of expect.ports) {
    const cluster = clusterName(p.number, expect.host);
    keep('cluster', xds.versionOf('cluster', cluster));
    // `<port>` on 0.0.0.0, `<host>:<port>` on a VIP listener of a sniffed port
    keep('route', xds.versionOf('route', String(p.number)) ?? xds.versionOf('route', `${expect.host}:${p.number}`));
    for (const l of snap.view.listeners)
      if (l.filterChains.some((fc) => fc.tcpClusters.includes(cluster)))
        keep('listener', xds.versionOf('listener', l.name));
  }
  return needed;
}

/**
 * Verifies the given hosts through every configured hop, polling until all are ok or the
 * timeout passes. With `writtenAt`, each hop's latency (write → first seen) is measured and,
 * with metrics, observed in `registry_bridge_propagation_seconds{hop}`; hops still failing at
 * the deadline count in `registry_bridge_propagation_failures_total{hop}`. The continuous
 * controller calls this after an apply with the changed hosts.
 */
export async function verifyHosts(
  targets: readonly VerifyTarget[],
  deps: VerifyDeps,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  // Called after every apply in continuous mode, with the process's signal as the parent.
  const scoped = linkedSignal(options.signal);
  const signal = scoped.signal;
  const sleep = deps.sleep ?? defaultSleep;
  const start = deps.clock();
  const deadline = start + (options.timeoutMs ?? 0);
  const interval = options.intervalMs ?? 200;
  const sorted = [...targets].sort((a, b) =>
    a.expectation.host < b.expectation.host ? -1 : a.expectation.host > b.expectation.host ? 1 : 0,
  );
  /** Per target index and hop: the latency recorded when the hop first became ok. */
  const firstOk = sorted.map(() => new Map<Hop, number>());
  /** Dropped elements already logged in this verification. */
  const warned = new Set<string>();
  let report: VerifyReport;
  try {
    for (;;) {
      const round = await readRound(deps, signal, warned);
      const hosts: HostReport[] = sorted.map((t, i) => {
        const r = checkHost(t.expectation, round.inputs, { needed: neededPushes(t.expectation, deps.xds) });
        const hops = r.hops.map((h): HopCheck => {
          const seen = firstOk[i]!;
          if (h.status === 'ok' && t.writtenAt !== undefined && !seen.has(h.hop)) {
            // The probe knows when the resource arrived; other hops were seen by this read.
            const sinceMs = h.since !== undefined ? Date.parse(h.since) : NaN;
            const at =
              h.hop === 'proxy' && deps.xds && sinceMs >= t.writtenAt
                ? sinceMs
                : (round.readAt[h.hop] ?? round.inputs.now);
            const latency = Math.max(0, at - t.writtenAt);
            seen.set(h.hop, latency);
            deps.metrics?.propagationSeconds.observe({ hop: h.hop }, latency / 1000);
          }
          const latencyMs = seen.get(h.hop);
          return latencyMs !== undefined ? { ...h, latencyMs } : h;
        });
        return { ...r, hops };
      });
      report = { ok: hosts.every((h) => h.ok), hosts, checkedAt: new Date(round.inputs.now).toISOString() };
      options.onRound?.(report);
      // Stop early when every failing host has a failure that waiting cannot repair.
      const settled = hosts.every((h) => h.ok || h.hops.some((c) => c.final === true));
      if (report.ok || settled || deps.clock() + interval > deadline || signal.aborted) break;
      await sleep(interval, signal);
    }
  } finally {
    scoped.dispose();
  }
  if (deps.metrics) {
    for (const h of report.hosts)
      for (const hop of h.hops)
        if (hop.status !== 'ok' && hop.status !== 'skipped') deps.metrics.propagationFailures.inc({ hop: hop.hop });
  }
  deps.logger?.info(
    {
      component: 'verify',
      hosts: report.hosts.length,
      failed: report.hosts.filter((h) => !h.ok).map((h) => h.host),
      durationMs: deps.clock() - start,
    },
    report.ok ? 'propagation verified' : 'propagation incomplete',
  );
  return report;
}

/** A proxy source that parses config dump text (files, an admin URL, istiod's config_dump). */
export function configDumpSource(read: (signal: AbortSignal) => Promise<string[]>, namespace?: string): ProxySource {
  return async (signal) => {
    const bodies = await read(signal);
    const view = parseConfigDump(...bodies);
    const kinds = new Set<XdsKind>();
    if (view.clusters.size > 0) kinds.add('cluster');
    if (view.listeners.length > 0) kinds.add('listener');
    if (view.routes.size > 0) kinds.add('route');
    if (view.endpoints) kinds.add('endpoint');
    return { view, kinds, ...(namespace !== undefined ? { namespace } : {}) };
  };
}
