import type { Watcher } from 'node-zookeeper-client';
import { SourceUnavailableError } from '../../src/errors.js';
import {
  compareServiceKeys,
  serviceKeyString,
  type RegistryService,
  type RejectedEntry,
  type ServiceKey,
  type SourceSnapshot,
} from '../../src/model/service.js';
import { mapLimit } from '../../src/util/concurrency.js';
import { sortByKey } from '../../src/util/sort.js';
import {
  defineAdapter,
  type AdapterContext,
  type ChangeListener,
  type ServiceListener,
  type SourceAdapter,
} from '../../src/sources/adapter.js';
import { DUBBO_HOST_TEMPLATE } from '../dubbo/naming.js';
import {
  servicesOfDir,
  type LayoutOptions,
  servicesOfRoots,
  unitFingerprint,
  ZK_TEMPLATE_ATTRIBUTES,
  type DubboMetadataRead,
  type ParsedDirs,
  type RootRead,
  withApplicationInterfaces,
} from './layouts.js';
import { chrootOf, zookeeperConfigSchema, type ZooKeeperConfig } from './schema.js';
import { ZkSession, ZkUnavailableError } from './session.js';
import {
  joinPath,
  MissingRootError,
  readDir,
  readRoot,
  readRootChildren,
  type DirRead,
  type ReadOptions,
} from './tree.js';

export { zookeeperConfigSchema, type ZooKeeperConfig } from './schema.js';

/**
 * ZooKeeper: Dubbo interface-level providers and Curator ServiceDiscovery instances (Spring
 * Cloud Zookeeper, Dubbo 3 application level). `list` walks the configured roots (the truth);
 * `watch` keeps child and data watches armed on the same tree, turns each notification into
 * the keys that changed within milliseconds, and re-walks everything every relistInterval and
 * after a reconnect or a new session, so a lost watch costs at most one interval.
 *
 * Default host: `{service}.{versionLabel}.{groupLabel}.{kind}` — Dubbo services
 * `com.example.demoservice.v-1-0-0.g-blue.dubbo` (see adapters/dubbo/naming.ts, shared with the
 * Nacos adapter), Curator services `<name>.dubbo` for Dubbo 3 applications and `<name>.zk`
 * otherwise.
 */
export const zookeeperAdapter = defineAdapter<ZooKeeperConfig>({
  kind: 'zookeeper',
  configSchema: zookeeperConfigSchema,
  defaultHostTemplate: DUBBO_HOST_TEMPLATE,
  templateAttributes: ZK_TEMPLATE_ATTRIBUTES,
  create(config, context) {
    return new ZooKeeperSource(config, context);
  },
});

function layoutOptionsOf(config: ZooKeeperConfig): LayoutOptions {
  return {
    maxDataBytes: config.maxDataBytes,
    applicationLevel: config.dubbo.applicationLevel,
    ...(config.curatorProtocol !== undefined ? { curatorProtocol: config.curatorProtocol } : {}),
  };
}

/** ServiceKey.namespace of a root: chroot + root without the leading `/` (`dubbo`, `prod/dubbo`). */
export function namespaceOf(connect: string, root: string): string {
  return `${chrootOf(connect)}${root === '/' ? '' : root}`.replace(/^\/+/, '');
}

interface UnitState {
  readonly fingerprint: string;
  readonly keys: readonly ServiceKey[];
  /** The unit's services as last read (the view `readServices` and `list` answer from). */
  readonly services: readonly RegistryService[];
  readonly rejected: readonly RejectedEntry[];
  /** Dubbo 3 metadata (`<root>/mapping`, `<root>/metadata`) when the unit is one. */
  readonly metadata?: DubboMetadataRead;
}

export class ZooKeeperSource implements SourceAdapter {
  private readonly session: ZkSession;
  private readonly watchers = new Map<string, Watcher>();
  /** Per root: the child names last seen. Per unit (`/<root>/<child>`): its services. */
  private readonly rootChildren = new Map<string, Set<string>>();
  private readonly units = new Map<string, UnitState>();
  /** Service key string → the unit it was read from (readServices without a scan of all units). */
  private readonly unitOfKey = new Map<string, string>();
  private readonly refreshing = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  private onChange: ChangeListener | undefined;
  private watchSignal: AbortSignal | undefined;
  private relistTimer: NodeJS.Timeout | undefined;
  private everDisconnected = false;
  /**
   * Anything that may have made the watched view miss a change (a failed read, a disconnect, an
   * expiry) counts here; the view is complete while no miss happened since a clean re-walk.
   */
  private misses = 0;
  private missesAtCleanWalk = -1;

  constructor(
    private readonly config: ZooKeeperConfig,
    private readonly context: AdapterContext,
  ) {
    const auth = config.auth;
    this.session = new ZkSession({
      connect: config.connect,
      sessionTimeout: config.sessionTimeout,
      requestTimeout: config.requestTimeout,
      logger: context.logger,
      ...(auth
        ? {
            credentials: () =>
              context.resolveSecret(auth.credentials, `sources.${context.source}.zookeeper.auth.credentials`),
          }
        : {}),
    });
  }

  /**
   * All services. While watching with a complete view and a connected session, the answer comes
   * from the view the watches keep (no ZooKeeper reads: an unchanged resync of 10,000 services
   * costs no walk); otherwise, and whenever the view may have missed something, a full walk.
   */
  async list(signal: AbortSignal, onService?: ServiceListener): Promise<SourceSnapshot> {
    // The controller's first run lists while the watches are being armed: wait for that walk
    // and answer from it, instead of walking the whole tree a second time. The services are
    // then the very objects later resyncs get, so the synthesis memo holds from the first run.
    if (this.arming && !this.started) await this.arming;
    if (this.started && this.onChange && this.viewComplete() && this.session.currentState === 'connected') {
      // One round trip per root proves the session answers: a frozen or blackholed server
      // must read as unavailable, not as a registry that stopped changing.
      try {
        for (const root of this.config.roots)
          if (!(await this.session.exists(root, signal))) throw new MissingRootError(root);
      } catch (err) {
        this.misses += 1;
        throw this.unavailable(err);
      }
      if (this.viewComplete()) return this.snapshotOfView();
    }
    const reads: RootRead[] = [];
    const layoutOptions = layoutOptionsOf(this.config);
    // With a listener, each directory is parsed as soon as it is read and its services handed
    // on; the snapshot then takes those very objects.
    const parsed: ParsedDirs = new WeakMap();
    try {
      for (const root of this.config.roots) {
        const namespace = namespaceOf(this.config.connect, root);
        const onDir = (d: DirRead) => {
          const dir = d.dubbo ?? d.curator;
          if (!dir) return;
          const unit = servicesOfDir(dir, this.context.source, namespace, layoutOptions);
          parsed.set(dir, unit);
          for (const s of unit.services) onService!(s);
        };
        reads.push(
          await readRoot(this.session, root, namespace, {
            layout: this.config.layout,
            signal,
            ...(onService ? { onDir } : {}),
          }),
        );
      }
    } catch (err) {
      throw this.unavailable(err);
    }
    const { services, rejected } = servicesOfRoots(reads, this.context.source, layoutOptions, parsed);
    return { source: this.context.source, services, rejected };
  }

  async watch(onChange: ChangeListener, signal: AbortSignal): Promise<void> {
    this.onChange = onChange;
    this.watchSignal = signal;
    const off = this.session.onEvent((e) => {
      if (e.type !== 'connected') this.misses += 1;
      if (e.type === 'disconnected') this.everDisconnected = true;
      if (e.type === 'connected' && (e.newSession || this.everDisconnected)) {
        // A new session lost every watch; a reconnect may have missed changes: re-arm, resync.
        if (e.newSession) this.watchers.clear();
        this.everDisconnected = false;
        void this.rearmAll('reconnect').then(() => onChange());
      }
    });
    const schedule = () => {
      this.relistTimer = setTimeout(() => {
        void this.rearmAll('relist').finally(() => {
          if (!signal.aborted) schedule();
        });
      }, this.config.relistInterval);
      this.relistTimer.unref?.();
    };
    signal.addEventListener(
      'abort',
      () => {
        off();
        clearTimeout(this.relistTimer);
        this.onChange = undefined;
        this.misses += 1;
      },
      { once: true },
    );
    this.arming = this.rearmAll('start').then(() => {
      this.started = true;
    });
    await this.arming;
    schedule();
  }

  /**
   * The watched view of just these services: no ZooKeeper reads. Only while watching, after the
   * first walk, with a connected session; otherwise the caller falls back to a full list.
   */
  async readServices(keys: readonly ServiceKey[]): Promise<SourceSnapshot> {
    if (!this.started || !this.onChange) throw new Error('zookeeper view not armed (not watching)');
    if (this.session.currentState !== 'connected') throw this.unavailable(new ZkUnavailableError('not connected'));
    const wanted = new Set(keys.map(serviceKeyString));
    const services: RegistryService[] = [];
    const units = new Set<string>();
    for (const k of wanted) {
      const unit = this.unitOfKey.get(k);
      if (unit !== undefined) units.add(unit);
    }
    for (const unit of units)
      for (const svc of this.units.get(unit)?.services ?? [])
        if (wanted.has(serviceKeyString(svc.key))) services.push(svc);
    return { source: this.context.source, services: this.withMetadata(services), rejected: [] };
  }

  private viewComplete(): boolean {
    return this.missesAtCleanWalk === this.misses;
  }

  private snapshotOfView(): SourceSnapshot {
    const services: RegistryService[] = [];
    const rejected: RejectedEntry[] = [];
    for (const unit of this.units.values()) {
      services.push(...unit.services);
      rejected.push(...unit.rejected);
    }
    rejected.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
    // Keys compared as compareServiceKeys does, each key's string looked up once, not per comparison.
    const sorted = sortByKey(services, (s) => serviceKeyString(s.key));
    return { source: this.context.source, services: this.withMetadata(sorted), rejected };
  }

  /** Services of the watched view with the Dubbo metadata of their root (see withApplicationInterfaces). */
  private withMetadata(services: readonly RegistryService[]): RegistryService[] {
    if (!services.some((s) => s.applicationLevel)) return [...services];
    const out: RegistryService[] = [];
    for (const root of this.config.roots) {
      const namespace = namespaceOf(this.config.connect, root);
      const metadata: DubboMetadataRead[] = [];
      for (const name of ['mapping', 'metadata']) {
        const m = this.units.get(joinPath(root, name))?.metadata;
        if (m) metadata.push(m);
      }
      out.push(
        ...withApplicationInterfaces(
          services.filter((s) => s.key.namespace === namespace),
          metadata,
          this.context.source,
          namespace,
        ),
      );
    }
    const roots = new Set(this.config.roots.map((r) => namespaceOf(this.config.connect, r)));
    out.push(...services.filter((s) => !roots.has(s.key.namespace)));
    return out.sort((a, b) => compareServiceKeys(a.key, b.key));
  }

  /** The current ZooKeeper session (for diagnostics and the session-expiry test). */
  sessionIdentity(): { id: Buffer; password: Buffer } | undefined {
    return this.session.sessionIdentity();
  }

  async close(): Promise<void> {
    clearTimeout(this.relistTimer);
    this.onChange = undefined;
    this.session.close();
  }

  private unavailable(err: unknown): Error {
    if (err instanceof ZkUnavailableError || err instanceof MissingRootError)
      return new SourceUnavailableError(this.context.source, `zookeeper ${this.config.connect}: ${err.message}`, {
        cause: err,
      });
    return err instanceof Error ? err : new Error(String(err));
  }

  private readOptions(): ReadOptions {
    return {
      layout: this.config.layout,
      ...(this.watchSignal ? { signal: this.watchSignal } : {}),
      watcherFor: (path, kind, unit) => this.watcherFor(path, kind, unit),
    };
  }

  /** One stable function per watched path: node-zookeeper-client dedups by identity. */
  private watcherFor(path: string, kind: 'children' | 'data', unit: string): Watcher {
    const id = `${kind}:${path}`;
    let w = this.watchers.get(id);
    if (!w) {
      w = () => {
        if (!this.onChange) return;
        const root = this.config.roots.find((r) => r === unit);
        void (root !== undefined ? this.refreshRoot(root, false) : this.refreshUnit(unit));
      };
      this.watchers.set(id, w);
    }
    return w;
  }

  /** Re-walks every root with watches; reports units whose services changed. */
  private async rearmAll(reason: string): Promise<void> {
    const t0 = Date.now();
    const missesBefore = this.misses;
    try {
      await Promise.all(this.config.roots.map((r) => this.refreshRoot(r, true)));
      if (this.misses === missesBefore && this.session.currentState === 'connected')
        this.missesAtCleanWalk = missesBefore;
      this.context.logger.debug(
        { reason, durationMs: Date.now() - t0, units: this.units.size },
        'zookeeper watches armed',
      );
    } catch (err) {
      this.misses += 1;
      this.context.logger.warn(
        { reason, err: (err as Error).message },
        'zookeeper re-walk failed; retrying at the next relist or reconnect',
      );
    }
  }

  /** Root children changed (or a full pass): read new/all units, forget removed ones. */
  private async refreshRoot(root: string, all: boolean): Promise<void> {
    const opts = this.readOptions();
    let children: string[];
    try {
      children = (await readRootChildren(this.session, root, opts)) ?? [];
    } catch (err) {
      if (all) throw err;
      this.misses += 1;
      this.context.logger.warn({ root, err: (err as Error).message }, 'zookeeper read failed; the next relist retries');
      return;
    }
    const before = this.rootChildren.get(root) ?? new Set<string>();
    const now = new Set(children);
    this.rootChildren.set(root, now);
    const removed = [...before].filter((c) => !now.has(c));
    const changed: ServiceKey[] = [];
    for (const c of removed) {
      const unit = joinPath(root, c);
      changed.push(...(this.units.get(unit)?.keys ?? []));
      this.setUnit(unit, undefined);
    }
    if (changed.length > 0) this.emit(changed);
    const todo = all ? children : children.filter((c) => !before.has(c));
    // Bounded: a re-walk of 10,000 units must not put 10,000 reads in flight at once.
    await mapLimit(todo, 16, (c) => this.refreshUnit(joinPath(root, c), all));
  }

  /** Re-reads one unit (`/<root>/<child>`), coalescing concurrent notifications. */
  private refreshUnit(unit: string, rethrow = false): Promise<void> {
    const running = this.refreshing.get(unit);
    if (running) {
      this.dirty.add(unit);
      return running;
    }
    const run = (async () => {
      do {
        this.dirty.delete(unit);
        await this.readUnit(unit, rethrow);
      } while (this.dirty.has(unit));
    })().finally(() => this.refreshing.delete(unit));
    this.refreshing.set(unit, run);
    return run;
  }

  private async readUnit(unit: string, rethrow: boolean): Promise<void> {
    const root = this.config.roots.find(
      (r) => unit.startsWith(r === '/' ? '/' : `${r}/`) && !unit.slice(r === '/' ? 1 : r.length + 1).includes('/'),
    );
    if (root === undefined) return;
    const name = unit.slice(root === '/' ? 1 : root.length + 1);
    let dir;
    try {
      dir = await readDir(this.session, root, name, this.readOptions());
    } catch (err) {
      if (rethrow) throw err;
      this.misses += 1;
      this.context.logger.warn({ unit, err: (err as Error).message }, 'zookeeper read failed; the next relist retries');
      return;
    }
    const read: RootRead = {
      root,
      namespace: namespaceOf(this.config.connect, root),
      dubbo: dir.dubbo ? [dir.dubbo] : [],
      curator: dir.curator ? [dir.curator] : [],
      metadata: dir.metadata ? [dir.metadata] : [],
    };
    // Of what was read, not of what it parses into: parsing is a pure function of it, so an
    // unchanged unit is neither parsed nor copied again (at 10,000 units, a canonical JSON of
    // the parsed services cost ~0.3 GB of garbage per walk).
    const fingerprint = unitFingerprint(read);
    const before = this.units.get(unit);
    // Unchanged: keep the very same objects (consumers may memoize on their identity).
    if (before?.fingerprint === fingerprint) return;
    if (dir.metadata !== undefined || before?.metadata !== undefined) {
      // Which interfaces applications serve: any application-level service may map differently.
      this.setUnit(unit, {
        fingerprint,
        keys: [],
        services: [],
        rejected: [],
        ...(dir.metadata ? { metadata: dir.metadata } : {}),
      });
      if (this.onChange && this.started) this.onChange(undefined);
      return;
    }
    const { services, rejected } = servicesOfRoots([read], this.context.source, layoutOptionsOf(this.config));
    this.setUnit(unit, { fingerprint, keys: services.map((s) => s.key), services, rejected });
    const keys = new Map<string, ServiceKey>();
    for (const k of [...(before?.keys ?? []), ...services.map((s) => s.key)]) keys.set(serviceKeyString(k), k);
    // The first pass after start only fills the cache: the caller lists anyway.
    if ((before !== undefined || this.started) && keys.size > 0) this.emit([...keys.values()]);
  }

  private started = false;
  /** The first walk of `watch` (arming every watch), while it runs. */
  private arming: Promise<void> | undefined;

  /** Replaces (or, with undefined, forgets) a unit's state and its key index entries. */
  private setUnit(unit: string, state: UnitState | undefined): void {
    for (const k of this.units.get(unit)?.keys ?? []) {
      const ks = serviceKeyString(k);
      if (this.unitOfKey.get(ks) === unit) this.unitOfKey.delete(ks);
    }
    if (state === undefined) {
      this.units.delete(unit);
      return;
    }
    this.units.set(unit, state);
    for (const k of state.keys) this.unitOfKey.set(serviceKeyString(k), unit);
  }

  private emit(keys: readonly ServiceKey[]): void {
    if (!this.onChange) return;
    this.onChange(keys.length > 0 ? keys : undefined);
  }
}
