import PQueue from 'p-queue';
import type { Logger } from '../log.js';
import { serviceKeyString, type RegistryService } from '../model/service.js';
import type { Change, ObservedEntry } from '../plan/plan.js';
import type { ApplyOutcome, Sink } from '../sinks/types.js';
import { synthOne, type SynthOptions } from '../synth/index.js';

/**
 * Creates written while the registries are still being read. A full run reads every service
 * before it plans, and on a cold sync that read (one request per Nacos service, a tree walk in
 * ZooKeeper) would otherwise come before the first write. A service offered here is created at
 * once when nothing can be in its way: the sink holds no object of its name or host, and no
 * service read earlier in this run claimed either. Only creates: anything that exists is left to
 * the plan.
 *
 * Host clashes are decided on the whole read (the service whose key sorts first wins), and a
 * service read later may win the host of one created here. The plan then writes the winner over
 * the same object (the name is the host's), or deletes the early object when the winner has no
 * object of its own; `settle` hands the plan what was written for that. So the run ends exactly
 * where a run without early creates would: only during the run, and only for two services that
 * clash on a host nobody held, did the loser's entry exist for a moment.
 */
export class EarlyCreates {
  private observed: { names: Set<string>; hosts: Set<string>; services: Set<string> } | undefined;
  /** What the sink holds, once observed; indexed into `observed` at the first offer that needs it. */
  private entries: readonly ObservedEntry[] | undefined;
  private readonly waiting: { service: RegistryService; source: string; options: SynthOptions }[] = [];
  private readonly claimedHosts = new Set<string>();
  private readonly claimedNames = new Set<string>();
  /** Object id → the outcome of its early create, for the creates that were sent. */
  private readonly writes = new Map<string, Promise<ApplyOutcome>>();
  /**
   * A few sends at a time: the sink's own queue limits the writes, and a read of 10,000
   * services must not leave 10,000 calls waiting on it. What is still queued at `settle` is
   * the plan's to write.
   */
  private readonly sends = new PQueue({ concurrency: 16 });
  private stopped = false;

  constructor(
    private readonly sink: Sink,
    observed: Promise<readonly ObservedEntry[]>,
    private readonly signal: AbortSignal,
    private readonly log: Logger,
  ) {
    observed.then(
      (entries) => {
        this.entries = entries;
        for (const w of this.waiting.splice(0)) this.consider(w.service, w.source, w.options);
      },
      () => {
        // The run fails on the observe itself; nothing is written early.
        this.stopped = true;
      },
    );
  }

  /** A service just read from `source` (whose synthesis options are `options`). */
  offer(service: RegistryService, source: string, options: SynthOptions): void {
    if (this.stopped) return;
    if (!this.entries) this.waiting.push({ service, source, options });
    else this.consider(service, source, options);
  }

  /**
   * Stops taking offers and sending, and waits for the writes in flight: object id → the
   * outcome of its create. Creates decided but not sent yet are the plan's to write.
   */
  async settle(): Promise<ReadonlyMap<string, ApplyOutcome>> {
    this.stopped = true;
    this.waiting.length = 0;
    this.sends.clear();
    await this.sends.onIdle();
    const done = new Map<string, ApplyOutcome>();
    for (const [id, p] of this.writes) done.set(id, await p);
    return done;
  }

  /**
   * The names, hosts and services the sink holds, indexed at the first offer: a run that reads
   * its registries from an adapter's watched view offers nothing and never needs them.
   */
  private index(): { names: Set<string>; hosts: Set<string>; services: Set<string> } {
    if (this.observed) return this.observed;
    const entries = this.entries ?? [];
    return (this.observed = {
      names: new Set(entries.map((o) => `${o.namespace}/${o.name}`)),
      hosts: new Set(entries.flatMap((o) => o.hosts)),
      // Services that have an object of ours already: never an early create (the plan
      // updates them), so they are not synthesized twice (a resync offers every service).
      services: new Set(entries.flatMap((o) => (o.owned && o.service !== undefined ? [o.service] : []))),
    });
  }

  private consider(service: RegistryService, source: string, options: SynthOptions): void {
    if (this.stopped || this.signal.aborted) return;
    const observed = this.index();
    if (observed.services.has(serviceKeyString(service.key))) return;
    // A Dubbo application in merge mode is published through other services (the interface-level
    // services of its application, or its interfaces' entries): only the whole read says where.
    if (service.applicationLevel?.mode === 'merge') return;
    const r = synthOne(service, options);
    if (r.kind !== 'ok') return;
    const e = r.entry;
    const id = `${e.namespace}/${e.name}`;
    // Claimed by an earlier offer (or held in the sink): the plan decides, on the whole read.
    const contested =
      this.claimedHosts.has(e.host) ||
      this.claimedNames.has(id) ||
      observed.hosts.has(e.host) ||
      observed.names.has(id);
    this.claimedHosts.add(e.host);
    this.claimedNames.add(id);
    if (contested) return;
    const change: Change = { action: 'create', namespace: e.namespace, name: e.name, host: e.host, source, desired: e };
    void this.sends.add(async () => {
      if (this.stopped || this.signal.aborted) return;
      const written = this.sink.apply([change], { dryRun: false }, this.signal).then(
        (outcomes): ApplyOutcome => outcomes[0] ?? { change, ok: false, error: 'the sink returned no outcome' },
        (err: unknown): ApplyOutcome => {
          this.log.debug({ name: id, err: String(err) }, 'early create failed; the plan writes it');
          return { change, ok: false, error: String(err) };
        },
      );
      this.writes.set(id, written);
      await written;
    });
  }
}
