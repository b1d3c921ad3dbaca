import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { BridgeConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BridgeMetrics } from '../metrics.js';
import { startHttpServer } from '../server/http.js';
import { settleWithin } from '../util/abort.js';
import type { Sink } from '../sinks/types.js';
import type { KubeRequests } from '../sinks/kube/client.js';
import { Controller } from './controller.js';
import { LeaderElector } from './leader.js';
import type { ConfiguredSource, ReconcileReport } from './reconcile.js';
import { ExitCode } from './exit-code.js';
import { reconcileOptionsOf } from './wiring.js';
import type { PropagationChecker } from './propagation.js';
import type { VerifyDeps } from '../verify/index.js';

export interface ContinuousDeps {
  readonly config: BridgeConfig;
  readonly sources: readonly ConfiguredSource[];
  readonly sink: Sink;
  readonly kc?: KubeConfig;
  readonly logger: Logger;
  readonly metrics: BridgeMetrics;
  readonly dryRun: boolean;
  /** Aborted on SIGTERM/SIGINT. */
  readonly shutdown: AbortSignal;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The kube requests' deadline and abort (aborted when the shutdown grace passes). */
  readonly requests?: KubeRequests;
  readonly onListening?: (port: number) => void;
  readonly onReport?: (report: ReconcileReport) => void;
}

/**
 * `registry-bridge sync` without `--once`: serve health and metrics, take the lease when
 * configured, run the controller until shutdown. Losing the lease stops every write at once
 * and exits non-zero; a graceful shutdown finishes the run in progress and releases the lease.
 */
/** The propagation checker of continuous mode, when `propagation.enabled`. */
async function propagationChecker(
  deps: ContinuousDeps,
  signal: AbortSignal,
): Promise<{ checker: PropagationChecker; close(): void } | undefined> {
  const p = deps.config.propagation;
  if (!p.enabled) return undefined;
  // Loaded only when enabled: the verifier brings gRPC and the Envoy protos with it.
  const { istiodDebugClient, kubeProbe, tokenFromFile, ReconnectingXdsProbe } = await import('../verify/index.js');
  const { PropagationChecker } = await import('./propagation.js');
  let checker: PropagationChecker | undefined;
  // The probe reconnects on its own when istiod closes the stream or goes away; the hosts
  // listed as unpropagated meanwhile are checked again once it is back.
  const xds = p.xds
    ? new ReconnectingXdsProbe(
        { address: p.xds, namespace: p.probeNamespace, dnsCapture: p.probeDnsCapture },
        { logger: deps.logger, metrics: deps.metrics, onReconnect: () => checker?.recheck() },
        signal,
      )
    : undefined;
  // The first attempt is awaited (bounded by its connect timeout), so the first checks after
  // start do not fail only because the stream is still opening.
  await xds?.start();
  const verifyDeps: VerifyDeps = {
    ...(deps.kc ? { kube: kubeProbe(deps.kc) } : {}),
    ...(p.istiod ? { istiod: istiodDebugClient(p.istiod, p.tokenFile ? tokenFromFile(p.tokenFile) : undefined) } : {}),
    ...(xds ? { xds } : {}),
    clock: Date.now,
    metrics: deps.metrics,
    logger: deps.logger,
  };
  checker = new PropagationChecker(
    verifyDeps,
    { deadlineMs: p.deadline, maxHostsPerRound: p.maxHostsPerRound },
    deps.logger,
    signal,
  );
  return { checker, close: () => xds?.close() };
}

export async function runContinuous(deps: ContinuousDeps): Promise<number> {
  const { config, logger, metrics } = deps;
  const log = logger.child({ component: 'main' });
  for (const s of deps.sources) metrics.initSource(s.name);

  const le = config.leaderElection;
  const elector =
    le.enabled && deps.kc
      ? new LeaderElector({
          kc: deps.kc,
          namespace: le.namespace,
          name: le.name,
          identity: deps.env.POD_NAME ?? `${hostname()}-${process.pid}`,
          leaseDurationMs: le.leaseDuration,
          renewDeadlineMs: le.renewDeadline,
          retryPeriodMs: le.retryPeriod,
          logger,
        })
      : undefined;
  if (le.enabled && !deps.kc) log.warn('leaderElection.enabled needs the kube sink; running without election');

  const work = new AbortController();
  const stopWork = () => work.abort(new Error('stopping'));
  deps.shutdown.addEventListener('abort', stopWork, { once: true });
  elector?.lost.addEventListener('abort', stopWork, { once: true });

  const propagation = await propagationChecker(deps, work.signal);
  const checker = propagation?.checker;
  const onReport = (report: ReconcileReport) => {
    deps.onReport?.(report);
    checker?.onReport(report);
  };

  const controller = new Controller(
    deps.sources,
    deps.sink,
    {
      ...reconcileOptionsOf(config, { dryRun: deps.dryRun }),
      resyncMs: config.controller.resyncInterval,
      debounceMs: config.controller.debounce,
      applicationSettleMs: config.controller.applicationSettle,
    },
    { logger, metrics, onReport },
    work.signal,
  );

  const startedAt = Date.now();
  const window = config.controller.resyncInterval * config.controller.healthMultiplier;
  let http: Awaited<ReturnType<typeof startHttpServer>>;
  try {
    http = await startHttpServer({
      address: config.server.address,
      port: config.server.port,
      registry: metrics.registry,
      ...(checker ? { propagation: () => checker.unpropagated() } : {}),
      health: {
        healthy: () => {
          if (elector && !elector.isLeader()) return { ok: true, detail: 'standby: waiting for the lease' };
          const last = controller.status().lastRunAt ?? startedAt;
          const age = Date.now() - last;
          return age <= window
            ? { ok: true, detail: `last reconcile ${age} ms ago` }
            : { ok: false, detail: `no reconcile finished for ${age} ms (limit ${window} ms)` };
        },
        ready: () => {
          if (elector && !elector.isLeader()) return { ok: true, detail: 'standby: waiting for the lease' };
          const s = controller.status();
          return s.lastSuccessAt !== undefined
            ? { ok: true, detail: `${s.runs} runs` }
            : { ok: false, detail: 'no successful reconcile yet' };
        },
      },
    });
  } catch (err) {
    // Port in use, an address not of this machine: nothing started is left behind.
    propagation?.close();
    throw err;
  }
  log.info({ port: http.port }, 'serving /healthz /readyz /metrics');
  deps.onListening?.(http.port);

  try {
    if (elector) {
      log.info('waiting for the lease');
      try {
        await elector.acquire(work.signal);
      } catch {
        return ExitCode.Converged; // shut down while standing by
      }
    }
    controller.start();
    await new Promise<void>((resolve) =>
      work.signal.aborted ? resolve() : work.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    return await stopController(controller, elector, deps, log);
  } catch (err) {
    log.error({ err: describeError(err) }, 'controller failed');
    return ExitCode.Failed;
  } finally {
    propagation?.close();
    const cleanup = (async () => {
      await elector?.release();
      await http.close();
      await deps.sink.close?.();
    })();
    if (elector?.lost.aborted) await settleWithin(cleanup, LOST_LEASE_GRACE_MS);
    else await cleanup;
  }
}

/**
 * Stops the controller once its work signal aborted (shutdown, lost lease); the exit code. A
 * lost lease: no new write starts; one in flight gets a short grace, then it is aborted (one
 * that reached the API server cannot be recalled; it is reported as not written). A shutdown:
 * the run in progress finishes; a kube request still unanswered when shutdownGrace passes is
 * aborted (runSync), which ends the run; the margin covers what is not a kube request.
 */
async function stopController(
  controller: Controller,
  elector: LeaderElector | undefined,
  deps: ContinuousDeps,
  log: Logger,
): Promise<number> {
  if (elector?.lost.aborted) {
    if (!(await settleWithin(controller.stop(), LOST_LEASE_GRACE_MS))) {
      deps.requests?.abortAll('leadership lost');
      await settleWithin(controller.stop(), LOST_LEASE_GRACE_MS);
    }
    log.error('leadership lost: stopped writing, exiting');
    return ExitCode.Failed;
  }
  const grace = deps.config.controller.shutdownGrace;
  if (!(await settleWithin(controller.stop(), grace + STOP_MARGIN_MS))) {
    log.error({ shutdownGraceMs: grace }, 'the run in progress did not end; exiting');
    return ExitCode.Failed;
  }
  if (deps.requests?.aborted) {
    log.warn(
      { shutdownGraceMs: grace },
      'shut down: kube requests still in flight after the shutdown grace were aborted',
    );
    return ExitCode.Failed;
  }
  log.info('shut down gracefully');
  return ExitCode.Converged;
}

/** How long a replica that lost its lease waits for work in flight before it exits. */
const LOST_LEASE_GRACE_MS = 2_000;
/** Past the shutdown grace: what a run does after its kube requests were aborted. */
const STOP_MARGIN_MS = 2_000;
