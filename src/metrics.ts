import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric of the bridge, on a registry passed in (never the global one). Counters with
 * known label values are initialised to zero so dashboards and alerts see them from the start.
 */
export class BridgeMetrics {
  readonly registry: Registry;
  readonly reconcileRuns: Counter<'result'>;
  readonly reconcileDuration: Histogram;
  readonly changes: Counter<'action'>;
  readonly conflicts: Gauge;
  readonly collisions: Gauge;
  readonly protectedServices: Gauge;
  readonly ownedObjects: Gauge;
  readonly sinkObserves: Counter<'via'>;
  readonly sourceErrors: Counter<'source'>;
  readonly sourceUp: Gauge<'source'>;
  readonly sourceServices: Gauge<'source'>;
  readonly rejectedEntries: Counter<'source'>;
  readonly invalidServices: Gauge;
  readonly lastSuccess: Gauge;
  readonly queueDepth: Gauge;
  readonly apiWrites: Counter<'verb' | 'code'>;
  readonly apiRetries: Counter<'verb' | 'code'>;
  readonly staleSeconds: Gauge<'source'>;
  readonly heldDeletions: Gauge<'source' | 'reason'>;
  readonly propagationSeconds: Histogram<'hop'>;
  readonly propagationFailures: Counter<'hop'>;
  readonly xdsUp: Gauge;
  readonly xdsReconnects: Counter;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const r = [registry];
    this.reconcileRuns = new Counter({
      name: 'registry_bridge_reconcile_runs_total',
      help: 'Reconcile runs by result (success, degraded, failed).',
      labelNames: ['result'],
      registers: r,
    });
    this.reconcileDuration = new Histogram({
      name: 'registry_bridge_reconcile_duration_seconds',
      help: 'Duration of a reconcile run.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: r,
    });
    this.changes = new Counter({
      name: 'registry_bridge_changes_total',
      help: 'Planned changes applied, by action.',
      labelNames: ['action'],
      registers: r,
    });
    this.conflicts = new Gauge({
      name: 'registry_bridge_conflicts',
      help: 'ServiceEntries not written because an object the bridge does not own has the name or host.',
      registers: r,
    });
    this.collisions = new Gauge({
      name: 'registry_bridge_collisions',
      help: 'Pairs of ServiceEntries Istio would merge or shadow (the same host twice, a TCP-like port shared without addresses), as the last full run found them.',
      registers: r,
    });
    this.protectedServices = new Gauge({
      name: 'registry_bridge_protected_services',
      help: 'Services published with instances a registry does not list as usable now, per source and by what: empty-protection (last known instances kept, configured per source) or nacos-protect-threshold (the Nacos server returns every instance because too few are healthy).',
      labelNames: ['source', 'by'],
      registers: r,
    });
    this.ownedObjects = new Gauge({
      name: 'registry_bridge_owned_objects',
      help: 'ServiceEntries owned by this bridge, as last observed.',
      registers: r,
    });
    this.sinkObserves = new Counter({
      name: 'registry_bridge_sink_observes_total',
      help: 'Full observes of the sink, by how they were answered: watch (the cache a watch keeps, continuous mode) or list (a full list of the API).',
      labelNames: ['via'],
      registers: r,
    });
    this.sourceErrors = new Counter({
      name: 'registry_bridge_source_errors_total',
      help: 'Failed full reads of a source.',
      labelNames: ['source'],
      registers: r,
    });
    this.sourceUp = new Gauge({
      name: 'registry_bridge_source_up',
      help: '1 when the last full read of the source succeeded.',
      labelNames: ['source'],
      registers: r,
    });
    this.sourceServices = new Gauge({
      name: 'registry_bridge_source_services',
      help: 'Services read from the source in the last successful read.',
      labelNames: ['source'],
      registers: r,
    });
    this.rejectedEntries = new Counter({
      name: 'registry_bridge_rejected_entries_total',
      help: 'Registry entries dropped as malformed: services and instances the source could not read, and instances whose address or port no ServiceEntry can carry (each logged with its service, instance and reason).',
      labelNames: ['source'],
      registers: r,
    });
    this.invalidServices = new Gauge({
      name: 'registry_bridge_invalid_services',
      help: 'Services that cannot become a ServiceEntry Istio accepts, as of the last run.',
      registers: r,
    });
    this.lastSuccess = new Gauge({
      name: 'registry_bridge_last_success_timestamp_seconds',
      help: 'Unix time of the last reconcile that converged.',
      registers: r,
    });
    this.queueDepth = new Gauge({
      name: 'registry_bridge_write_queue_depth',
      help: 'Writes handed to the sink and not finished yet (queued or in flight).',
      registers: r,
    });
    const api = apiMetricsOf(r);
    this.apiWrites = api.writes;
    this.apiRetries = api.retries;
    this.staleSeconds = new Gauge({
      name: 'registry_bridge_source_stale_seconds',
      help: 'Age of the oldest last-known data kept by empty protection, per source.',
      labelNames: ['source'],
      registers: r,
    });
    this.heldDeletions = heldDeletionsOf(r);
    this.propagationSeconds = new Histogram({
      name: 'registry_bridge_propagation_seconds',
      help: 'Time from the bridge writing a change to it being seen at a hop.',
      labelNames: ['hop'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: r,
    });
    this.propagationFailures = new Counter({
      name: 'registry_bridge_propagation_failures_total',
      help: 'Changes not seen at a hop within the deadline.',
      labelNames: ['hop'],
      registers: r,
    });
    const xds = xdsMetricsOf(registry);
    this.xdsUp = xds.up;
    this.xdsReconnects = xds.reconnects;

    for (const result of ['success', 'degraded', 'failed']) this.reconcileRuns.inc({ result }, 0);
    for (const action of ['create', 'update', 'delete']) this.changes.inc({ action }, 0);
    for (const hop of ['kube', 'istiod', 'proxy', 'sync']) this.propagationFailures.inc({ hop }, 0);
    for (const via of ['watch', 'list']) this.sinkObserves.inc({ via }, 0);
  }

  /** Zero the per-source series of a configured source. */
  initSource(source: string): void {
    this.sourceErrors.inc({ source }, 0);
    this.rejectedEntries.inc({ source }, 0);
    this.sourceUp.set({ source }, 0);
    this.protectedServices.set({ source, by: 'empty-protection' }, 0);
    this.protectedServices.set({ source, by: 'nacos-protect-threshold' }, 0);
    this.heldDeletions.set({ source, reason: 'shrink' }, 0);
  }
}

/** Deletions held by the plan, per source and why (see src/plan/policy.ts, shrinkHold). */
function heldDeletionsOf(registers: Registry[]): Gauge<'source' | 'reason'> {
  return new Gauge({
    name: 'registry_bridge_held_deletions',
    help: 'Deletions the last full run held, per source and why: shrink (the source would lose a large share of its entries at once; policy.shrinkHold).',
    labelNames: ['source', 'reason'],
    registers,
  });
}

/** The propagation checks' xDS stream (continuous mode with propagation.xds). */
function xdsMetricsOf(r: Registry): { up: Gauge; reconnects: Counter } {
  return {
    up: new Gauge({
      name: 'registry_bridge_xds_up',
      help: "1 while the propagation checks' xDS stream to istiod is open (propagation.xds), else 0.",
      registers: [r],
    }),
    reconnects: new Counter({
      name: 'registry_bridge_xds_reconnects_total',
      help: "Times the propagation checks' xDS stream to istiod was opened again after it was lost.",
      registers: [r],
    }),
  };
}

/** Calls to the sink API: writes by outcome, and calls tried again (see withRetry in sinks/kube/api.ts). */
function apiMetricsOf(r: Registry[]): { writes: Counter<'verb' | 'code'>; retries: Counter<'verb' | 'code'> } {
  return {
    writes: new Counter({
      name: 'registry_bridge_api_writes_total',
      help: 'Write calls made to the sink API, by verb and result code.',
      labelNames: ['verb', 'code'],
      registers: r,
    }),
    retries: new Counter({
      name: 'registry_bridge_api_retries_total',
      help: 'Calls to the sink API tried again after a retryable answer (429, 409, 5xx, transport error), by verb and that answer.',
      labelNames: ['verb', 'code'],
      registers: r,
    }),
  };
}
