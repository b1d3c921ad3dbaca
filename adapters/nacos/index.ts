import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { BridgeError, SourceUnavailableError, describeError } from '../../src/errors.js';
import {
  compareServiceKeys,
  serviceKeyString,
  type ApplicationInterface,
  type Instance,
  type RegistryService,
  type RejectedEntry,
  type ServiceKey,
  type SourceSnapshot,
} from '../../src/model/service.js';
import {
  defineAdapter,
  type AdapterContext,
  type ChangeListener,
  type ServiceListener,
  type SourceAdapter,
} from '../../src/sources/adapter.js';
import { DUBBO_TEMPLATE_ATTRIBUTES } from '../dubbo/naming.js';
import { dubboShape, nacosModelService } from './dubbo.js';
import { DubboDefinitions } from './dubbo-metadata.js';
import { protectEmpty, type KnownService } from './empty-protection.js';
import { NacosHttp, type ResolvedAuth } from './http.js';
import { parseInstanceList, parseServiceListPage, stripGroupPrefix } from './parse.js';
import { GrpcPush, GrpcReads, NacosGrpcError, type Followed, type FuzzyWatchOptions } from './grpc.js';
import { parseServiceListResponse, serviceListBody, serviceQueryBody, type NacosMessage } from './grpc-wire.js';
import { PushSubscriptions } from './push.js';
import { mapLimit } from '../../src/util/concurrency.js';
import { shortHash } from '../../src/synth/hash.js';
import { nacosConfigSchema, type NacosConfig } from './schema.js';

export { nacosConfigSchema, type NacosConfig } from './schema.js';

/**
 * Nacos through its v1 HTTP OpenAPI (Nacos 1.x, 2.x, 3.0/3.1, r-nacos). Every list() pages
 * through `/v1/ns/service/list` of each configured namespace and group and reads every
 * service's `/v1/ns/instance/list`. watch() subscribes to every service read, by default through
 * the 2.x/3.x gRPC protocol (./grpc.ts: pushes within the server's push delay), or through the
 * nacos SDK (`push: sdk`, v1 UDP push or poll, for Nacos 1.x). While a gRPC subscription is
 * live, what it pushed stands for the HTTP read of that service (list() then costs the name
 * pages only), and watch()'s periodic re-list reads every service over HTTP to check the pushes
 * and to report what changed.
 */
export const nacosAdapter = defineAdapter<NacosConfig>({
  kind: 'nacos',
  configSchema: nacosConfigSchema,
  defaultHostTemplate: '{service}.{group}.{namespace}.nacos',
  templateAttributes: DUBBO_TEMPLATE_ATTRIBUTES,
  create(config, context) {
    return new NacosSource(config, context);
  },
});

/** A service as the v1 API names it. */
export interface NacosServiceRef {
  /** Namespace id as sent to the server. */
  readonly namespaceId: string;
  readonly group: string;
  readonly name: string;
}

/**
 * Java Nacos stops announcing new services of a fuzzy-watch pattern that matches this many
 * (its default limit of matched services a pattern), without a word.
 */
const FUZZY_MATCH_LIMIT = 500;

/**
 * An application whose metadata search found nothing or failed is searched again on a full read
 * this long after (an unchanged application that was found is not searched again at all).
 */
const METADATA_RETRY_MS = 10_000;

/** How services and instances are read from a server. */
type ReadPath = 'grpc' | 'v1';

interface RegistryRead {
  readonly services: readonly RegistryService[];
  readonly rejected: readonly RejectedEntry[];
  /** The services read, with the fingerprint of their instances (what pushes are compared to). */
  readonly followed: readonly Followed[];
}

/** One service's instance list, parsed: what a read or a push says of it. */
interface ServiceRead {
  readonly service?: RegistryService;
  readonly rejected: readonly RejectedEntry[];
  /** Of the instances (see fingerprintOf); undefined when the list could not be parsed. */
  readonly fingerprint?: string;
}

/** The last instance list the server pushed for a service, parsed. */
interface PushedEntry {
  readonly read: ServiceRead;
  /** When it arrived (a read sent before that is older). */
  readonly at: number;
  /** The fingerprint of a re-list that disagreed with it once (twice: the re-list wins). */
  disagreed?: string | undefined;
}

/** What brings re-reads forward between re-lists (gRPC subscription or the SDK). */
export interface Push {
  /** Follows exactly these services. */
  sync(followed: readonly Followed[]): void;
  /** Follows these as well (a service first read between two re-lists); the rest stay. */
  add(followed: readonly Followed[]): void;
  /** What it last delivered for `ref` is current (a live subscription that carries instances). */
  isLive(ref: NacosServiceRef): boolean;
  /** `ref` is followed on a connection that is up but not subscribed yet. */
  isPending(ref: NacosServiceRef): boolean;
  /** Its notices carry whole instance lists, which a re-list then checks (paced). */
  readonly carriesInstances: boolean;
  /** The server announces new services of `namespace`/`group` (fuzzy watch): no names poll there. */
  fuzzyLive(namespace: string, group: string): boolean;
  close(): void | Promise<void>;
}

export class NacosSource implements SourceAdapter {
  private http: Promise<NacosHttp> | undefined;
  private known: ReadonlyMap<string, KnownService> = new Map();
  private push: Push | undefined;
  /**
   * What the gRPC push said last, per ref key. While a service's subscription is live this is
   * its truth, as the Nacos SDK's own cache is: list() and readServices() answer from it, and
   * only the periodic re-list reads every service over HTTP, to check it.
   */
  private readonly pushed = new Map<string, PushedEntry>();
  /**
   * The last HTTP read of each service whose gRPC subscription is not live, per ref key. While
   * the subscription is pending on a connection that is up, this stands for the service in a
   * full list (see whilePending): the subscription's answer is compared with it and any
   * difference hinted, as a push would be. Empty once every subscription is live.
   */
  private readonly readWhilePending = new Map<string, PushedEntry>();
  /** Model key of each Nacos service of the last read (Dubbo services are keyed by interface). */
  private readonly keys = new Map<string, ServiceKey>();
  /** When each entry of `keys` was last learnt (see read's pruning). */
  private readonly learntAt = new Map<string, number>();
  /** Ref keys of the services whose protect threshold the server said is reached. */
  private readonly atThreshold = new Set<string>();

  private learn(ref: NacosServiceRef, key: ServiceKey): void {
    const k = refKeyString(ref);
    this.keys.set(k, key);
    this.learntAt.set(k, this.now());
  }

  /**
   * Nacos's own protection: when a service's share of healthy instances is at or below its
   * protectThreshold, the server returns every instance marked healthy and says so
   * (reachProtectionThreshold), and the bridge publishes them as a Nacos client would use them.
   * Said once per change in the log, and in a metric.
   */
  private noteProtectionThreshold(ref: NacosServiceRef, reached: boolean): void {
    const k = refKeyString(ref);
    if (reached === this.atThreshold.has(k)) return;
    if (reached) this.atThreshold.add(k);
    else this.atThreshold.delete(k);
    this.log.info(
      { namespace: ref.namespaceId, group: ref.group, service: ref.name },
      reached
        ? "nacos protect threshold reached: the server returns every instance as healthy, and they are published (the service's protectThreshold)"
        : 'nacos protect threshold no longer reached: unhealthy instances are left out again',
    );
    this.context.metrics.protectedServices.set(
      { source: this.context.source, by: 'nacos-protect-threshold' },
      this.atThreshold.size,
    );
  }
  private readonly log;

  constructor(
    private readonly config: NacosConfig,
    private readonly context: AdapterContext,
    private readonly now: () => number = Date.now,
  ) {
    this.log = context.logger.child({ component: 'nacos' });
  }

  async list(signal: AbortSignal, onService?: ServiceListener): Promise<SourceSnapshot> {
    const read = await this.read(signal, 'pushed-first', onService);
    const keepFor = this.config.emptyProtection?.keepFor ?? 0;
    const protectedRead = protectEmpty(read.services, this.known, this.now(), keepFor);
    this.known = protectedRead.known;
    const stale = protectedRead.kept.reduce((m, k) => Math.max(m, k.emptyForMs), 0);
    this.context.metrics.staleSeconds.set({ source: this.context.source }, stale / 1000);
    this.context.metrics.protectedServices.set(
      { source: this.context.source, by: 'empty-protection' },
      protectedRead.kept.length,
    );
    for (const k of protectedRead.kept)
      this.log.warn(
        { service: k.key, emptyForMs: k.emptyForMs, keepForMs: keepFor },
        'service reads empty; keeping its last known instances (emptyProtection.keepFor is configured)',
      );
    this.serviceFingerprints = fingerprintsOf(read.services);
    this.push?.sync(read.followed);
    return {
      source: this.context.source,
      services: [...protectedRead.services].sort((a, b) => compareServiceKeys(a.key, b.key)),
      rejected: read.rejected,
    };
  }

  /** Just these services: one instance-list call each (the push/relist fast path). */
  async readServices(keys: readonly ServiceKey[], signal: AbortSignal): Promise<SourceSnapshot> {
    const http = await this.client();
    const wanted = new Set(keys.map(serviceKeyString));
    const refs: NacosServiceRef[] = [];
    for (const [refKey, key] of this.keys) if (wanted.has(serviceKeyString(key))) refs.push(refOfKeyString(refKey));
    // A key this view cannot map to the Nacos services that publish it is not guessed: read as
    // a Nacos service name, a Dubbo interface key names a service that does not exist, which
    // the server answers as empty (a live entry was once deleted that way). It is left out of
    // the answer (absent), and a keys-scoped run never deletes: a full read decides. New plain
    // services found by the names poll are mapped when found.
    const services: RegistryService[] = [];
    const rejected: RejectedEntry[] = [];
    const unfollowed: Followed[] = [];
    await mapLimit(refs, this.config.concurrency, async (ref) => {
      // A push carries the whole instance list: use it (no read that could lag behind it).
      let got = this.livePushed(ref)?.read;
      if (got === undefined) {
        const readAt = Date.now();
        got = await this.instances(http, ref, signal);
        this.keepWhilePending(ref, got, readAt);
        if (got?.service && this.push && !this.push.isPending(ref))
          unfollowed.push({ ref, fingerprint: got.fingerprint, readAt });
      }
      if (!got) return;
      rejected.push(...got.rejected);
      if (got.service && wanted.has(serviceKeyString(got.service.key))) services.push(got.service);
    });
    // A service read here and not subscribed (a new one the names poll found) is subscribed now:
    // else its next changes (the rest of a new deployment's instances) would wait for the next
    // full list or re-list to subscribe it.
    if (unfollowed.length > 0) this.push?.add(unfollowed);
    return { source: this.context.source, services: services.map((s) => this.withInterfaces(s)), rejected };
  }

  /** What the push said of `ref`, when its subscription is live (else undefined: read it). */
  private livePushed(ref: NacosServiceRef): PushedEntry | undefined {
    return this.isLive(ref) ? this.pushed.get(refKeyString(ref)) : undefined;
  }

  private isLive(ref: NacosServiceRef): boolean {
    return this.push?.isLive(ref) ?? false;
  }

  /** Keeps an HTTP read of a service not subscribed (yet) for whilePending; gRPC push only. */
  private keepWhilePending(ref: NacosServiceRef, read: ServiceRead | undefined, readAt: number): void {
    if (!this.push?.carriesInstances || this.isLive(ref)) return;
    if (read === undefined) this.readWhilePending.delete(refKeyString(ref));
    else this.readWhilePending.set(refKeyString(ref), { read, at: readAt });
  }

  /**
   * What was last known of `ref` (its last push, or its last HTTP read) while its subscription
   * is pending on a connection that is up. At start-up the bridge subscribes every service it
   * has just read, which at 10,000 services takes the server a minute; a full run meanwhile
   * would read every service not yet subscribed over HTTP again (the first periodic resync cost
   * 20 s of CPU at 10,000). Nothing is lost by answering from the last read instead: the
   * subscription's answer is compared with it and a difference hinted, and the periodic re-list
   * reads these services over HTTP as before. A connection that is down answers nothing here.
   */
  private whilePending(ref: NacosServiceRef): PushedEntry | undefined {
    if (!this.push?.isPending(ref)) return undefined;
    const key = refKeyString(ref);
    const pushed = this.pushed.get(key);
    const read = this.readWhilePending.get(key);
    return pushed && (!read || pushed.at >= read.at) ? pushed : read;
  }

  /**
   * An HTTP read of `ref` sent at `readAt`, against what the push said. A push that arrived
   * after the read was sent is newer. A live push that disagrees is kept the first time (the
   * server's HTTP view can lag its pushes); the same disagreement on the next re-list, with no
   * push in between, means a push was lost: the read wins, and says so.
   */
  private withPushed(ref: NacosServiceRef, read: ServiceRead | undefined, readAt: number): ServiceRead | undefined {
    const key = refKeyString(ref);
    const entry = this.pushed.get(key);
    if (!entry) return read;
    if (entry.at >= readAt) return entry.read;
    if (!this.isLive(ref)) return read;
    const readFp = read === undefined ? 'gone' : (read.fingerprint ?? 'unparsable');
    if (readFp === entry.read.fingerprint) {
      entry.disagreed = undefined;
      return entry.read; // the same objects as before: the synthesis memo holds
    }
    if (entry.disagreed !== readFp) {
      entry.disagreed = readFp;
      return entry.read;
    }
    this.log.warn(
      { namespace: ref.namespaceId, group: ref.group, service: ref.name },
      'nacos re-list differs from the last gRPC push twice in a row; using the re-list (a push was lost)',
    );
    if (read === undefined) this.pushed.delete(key);
    else this.pushed.set(key, { read, at: readAt });
    return read;
  }

  async watch(onChange: ChangeListener, signal: AbortSignal): Promise<void> {
    const http = await this.client();
    const hint = (ref: NacosServiceRef) => onChange([this.keys.get(refKeyString(ref)) ?? this.keyOf(ref)]);
    await this.push?.close();
    this.push = undefined;
    this.pushed.clear();
    this.readWhilePending.clear();
    if (this.config.push === 'sdk') {
      this.push = new PushSubscriptions({
        http,
        config: this.config,
        context: this.context,
        auth: await this.auth(),
        onChange: hint,
      });
    } else if (this.config.push === 'grpc') {
      const grpcPush = new GrpcPush({
        http,
        ...(this.config.grpcPort !== undefined ? { grpcPort: this.config.grpcPort } : {}),
        requestTimeoutMs: this.config.requestTimeout,
        ...(this.ca ? { ca: this.ca } : {}),
        logger: this.log,
        received: (ref, info) => {
          const read = this.serviceOf(ref, info, true);
          this.pushed.set(refKeyString(ref), { read, at: Date.now() });
          this.readWhilePending.delete(refKeyString(ref));
          return read.fingerprint;
        },
        onChange: hint,
        ...(this.config.fuzzyWatch ? { fuzzy: this.fuzzyWatchOptions(onChange) } : {}),
      });
      this.push = grpcPush;
      if (this.config.fuzzyWatch) grpcPush.fuzzyWatch(this.groupsByNamespace());
    }
    const every = this.config.serviceListInterval;
    const pollEveryMs = every > 0 && every < this.config.relistInterval ? every : this.config.relistInterval;
    if (!(this.push instanceof GrpcPush) || !this.config.fuzzyWatch)
      this.log.info(
        { pollEveryMs, why: this.config.push !== 'grpc' ? `push: ${String(this.config.push)}` : 'fuzzyWatch: false' },
        'nacos new services: found by the names poll',
      );
    signal.addEventListener('abort', () => void this.push?.close(), { once: true });
    let ticking = false;
    const tick = async (): Promise<void> => {
      if (ticking) return; // the previous re-list is still under way
      ticking = true;
      try {
        const read = await this.read(signal, 'http');
        this.push?.sync(read.followed);
        // Name the services that changed, so the controller reconciles just those.
        const next = fingerprintsOf(read.services);
        const changed: ServiceKey[] = [];
        for (const [k, v] of next) if (this.serviceFingerprints.get(k)?.fp !== v.fp) changed.push(v.key);
        for (const [k, v] of this.serviceFingerprints) if (!next.has(k)) changed.push(v.key);
        this.serviceFingerprints = next;
        if (changed.length > 0) onChange(changed);
      } catch (err) {
        if (signal.aborted) return;
        // The next list() reports it as unavailable; a hint makes that come soon.
        this.log.warn({ err: describeError(err) }, 'periodic nacos re-list failed');
        onChange();
      } finally {
        ticking = false;
      }
    };
    const timer = setInterval(() => void tick(), this.config.relistInterval);
    timer.unref();
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
    if (every > 0 && every < this.config.relistInterval) {
      let polling = false;
      const names = setInterval(() => {
        if (polling) return;
        polling = true;
        void this.pollNames(http, onChange, signal).finally(() => (polling = false));
      }, every);
      names.unref();
      signal.addEventListener('abort', () => clearInterval(names), { once: true });
    }
  }

  /** Service names per `namespace\0group`, from the last full read or names poll. */
  private listedNames = new Map<string, Set<string>>();

  /**
   * Configured namespaces ('' as public) → configured groups, to fuzzy-watch. `groups: ["*"]`
   * watches `<ns>>>*>>*`; the namespaces of `namespaces: ["*"]` are not known up front: those
   * are found by the names poll.
   */
  private groupsByNamespace(): Map<string, readonly string[]> {
    const out = new Map<string, readonly string[]>();
    const groups = this.config.groups.includes('*') ? ['*'] : unique(this.config.groups);
    for (const ns of this.explicitNamespaces()) out.set(ns, groups);
    return out;
  }

  private explicitNamespaces(): string[] {
    return unique(this.config.namespaces.filter((n) => n !== '*').map((n) => (n === '' ? 'public' : n)));
  }

  /**
   * The namespaces and groups to read: as configured, with `namespaces: ["*"]` from the server's
   * namespace list and `groups: ["*"]` from its service list across groups (the Nacos 3 admin
   * API, which also names the services: `names`).
   */
  private async targets(
    http: NacosHttp,
    signal: AbortSignal,
  ): Promise<{ namespaceId: string; group: string; names?: string[] }[]> {
    const namespaces = this.config.namespaces.includes('*')
      ? unique([...this.explicitNamespaces(), ...(await this.allNamespaces(http, signal))])
      : this.explicitNamespaces();
    const out: { namespaceId: string; group: string; names?: string[] }[] = [];
    for (const ns of namespaces) {
      if (this.config.groups.includes('*')) {
        const byGroup = await this.servicesOfAllGroups(http, ns, signal);
        for (const g of this.config.groups) if (g !== '*' && !byGroup.has(g)) byGroup.set(g, []);
        for (const [group, names] of byGroup) out.push({ namespaceId: ns, group, names });
      } else for (const group of unique(this.config.groups)) out.push({ namespaceId: ns, group });
    }
    return out;
  }

  /** `GET /v3/admin/core/namespace/list` (Nacos 3; the admin role when auth is on). */
  private async allNamespaces(http: NacosHttp, signal: AbortSignal): Promise<string[]> {
    const data = await this.adminGet(http, '/v3/admin/core/namespace/list', {}, signal, 'namespaces: ["*"]');
    if (!Array.isArray(data))
      throw new SourceUnavailableError(this.context.source, 'GET /v3/admin/core/namespace/list: data is not a list');
    return data
      .map((n) => (n as { namespace?: unknown } | null)?.namespace)
      .filter((n): n is string => typeof n === 'string')
      .map((n) => (n === '' ? 'public' : n));
  }

  /** `GET /v3/admin/ns/service/list` of a namespace, every group: group → service names. */
  private async servicesOfAllGroups(http: NacosHttp, ns: string, signal: AbortSignal): Promise<Map<string, string[]>> {
    const byGroup = new Map<string, string[]>();
    const pageSize = this.config.pageSize;
    for (let pageNo = 1; ; pageNo++) {
      const data = (await this.adminGet(
        http,
        '/v3/admin/ns/service/list',
        {
          namespaceId: ns,
          groupNameParam: '',
          serviceNameParam: '',
          ignoreEmptyService: 'false',
          pageNo: String(pageNo),
          pageSize: String(pageSize),
        },
        signal,
        'groups: ["*"]',
      )) as { totalCount?: unknown; pageItems?: unknown } | null;
      const items = Array.isArray(data?.pageItems) ? (data.pageItems as { name?: unknown; groupName?: unknown }[]) : [];
      for (const it of items) {
        if (typeof it?.name !== 'string' || typeof it.groupName !== 'string') continue;
        let names = byGroup.get(it.groupName);
        if (!names) byGroup.set(it.groupName, (names = []));
        names.push(it.name);
      }
      const total = Number(data?.totalCount ?? 0);
      if (items.length < pageSize || pageNo * pageSize >= total || pageNo > 100_000) break;
    }
    return byGroup;
  }

  /** One v3 admin API read: its `data`, or an error naming what needs it and why it failed. */
  private async adminGet(
    http: NacosHttp,
    path: string,
    params: Record<string, string>,
    signal: AbortSignal,
    forWhat: string,
  ): Promise<unknown> {
    const res = await http.request('GET', path, params, signal);
    const source = this.context.source;
    const what = forWhat.startsWith('groups') ? 'groups' : 'namespaces';
    if (res.status === 404 || res.status === 410 || res.status === 501)
      throw new BridgeError(
        'unsupported-server',
        `source ${source}: ${forWhat} needs the Nacos 3 admin API (GET ${path}), which ${res.server} does not serve (HTTP ${res.status}); list the ${what} instead`,
      );
    if (res.status === 401 || res.status === 403)
      throw new SourceUnavailableError(
        source,
        `Nacos server ${res.server} refused GET ${path} (${forWhat}) with HTTP ${res.status}: ${
          what === 'namespaces'
            ? 'listing namespaces needs a user with the admin role'
            : 'listing every group needs read permission on the namespace'
        }`,
      );
    const body = parseJson(res.body) as { code?: unknown; data?: unknown } | undefined;
    if (res.status !== 200 || body?.code !== 0)
      throw new SourceUnavailableError(
        source,
        `Nacos server ${res.server}: GET ${path} (${forWhat}) answered HTTP ${res.status}${short(http.redact(res.body))}`,
      );
    return body.data;
  }

  /**
   * Fuzzy watch (Nacos 3.x): the server announces services that appear in or leave a watched
   * group. A new one is hinted at once (the controller reads just it) and subscribed, so its
   * next instances are pushed; a vanished one asks for a full run, as the names poll does.
   */
  private fuzzyWatchOptions(onChange: ChangeListener): FuzzyWatchOptions {
    const pollEvery = this.config.serviceListInterval;
    return {
      known: (ns, group) => {
        const out: { group: string; name: string }[] = [];
        for (const [key, names] of this.listedNames) {
          const [n = '', g = ''] = key.split('\u0000');
          if (n === ns && (group === '*' || g === group)) for (const name of names) out.push({ group: g, name });
        }
        return out;
      },
      onState: (namespace, group, live, why) => {
        if (live)
          this.log.info(
            { namespace, group },
            'nacos new services: announced by fuzzy watch (NamingFuzzyWatchRequest); no names poll for this group',
          );
        else
          this.log.info(
            { namespace, group, why, pollEveryMs: pollEvery > 0 ? pollEvery : this.config.relistInterval },
            'nacos new services: found by the names poll (fuzzy watch not live)',
          );
      },
      onServices: (added, removed) => {
        const fresh: NacosServiceRef[] = [];
        let gone = false;
        for (const ref of added) {
          // A group not listed yet is read whole by the first list: nothing to announce.
          const key = `${ref.namespaceId}\u0000${ref.group}`;
          let names = this.listedNames.get(key);
          // A group first seen here (groups: ["*"]) is new, once the first list has run.
          if (!names && this.config.groups.includes('*') && this.listedNames.size > 0)
            this.listedNames.set(key, (names = new Set()));
          if (!names || names.has(ref.name)) continue;
          names.add(ref.name);
          fresh.push(ref);
        }
        for (const ref of removed)
          gone = this.listedNames.get(`${ref.namespaceId}\u0000${ref.group}`)?.delete(ref.name) || gone;
        if (fresh.length === 0 && !gone) return;
        this.log.debug(
          { added: fresh.map((r) => `${r.namespaceId}/${r.group}/${r.name}`), removed: gone },
          'nacos fuzzy watch: services changed',
        );
        if (fresh.length > 0) this.push?.add(fresh.map((ref) => ({ ref, fingerprint: undefined, readAt: 0 })));
        if (gone || fresh.some((r) => r.name.startsWith('providers:'))) onChange();
        else onChange(fresh.map((r) => this.keyOf(r)));
      },
    };
  }

  /**
   * New or vanished service names → a hint: plain new services by key (the controller reads
   * just those), anything else (a Dubbo-named service, whose key is its interface; a removal)
   * as a full run. A failed poll says nothing: the re-list reports the server's state.
   */
  private async pollNames(http: NacosHttp, onChange: ChangeListener, signal: AbortSignal): Promise<void> {
    const added: NacosServiceRef[] = [];
    let full = false;
    if (this.listedNames.size === 0) return; // no baseline before the first list
    try {
      const seen = new Set<string>();
      for (const t of await this.targets(http, signal)) {
        const groupKey = `${t.namespaceId}\u0000${t.group}`;
        seen.add(groupKey);
        const before = this.listedNames.get(groupKey) ?? new Set<string>();
        // The server announces them; but past its match limit (500 a pattern by default) it
        // drops new services silently, so a group that large stays polled.
        if (before.size < FUZZY_MATCH_LIMIT && this.push?.fuzzyLive(t.namespaceId, t.group)) continue;
        const now = new Set(t.names ?? (await this.serviceNames(http, t.namespaceId, t.group, signal)));
        for (const name of now) if (!before.has(name)) added.push({ namespaceId: t.namespaceId, group: t.group, name });
        for (const name of before) if (!now.has(name)) full = true;
        this.listedNames.set(groupKey, now);
      }
      // A group or namespace that is gone (with groups or namespaces "*").
      for (const [groupKey, before] of this.listedNames)
        if (!seen.has(groupKey)) {
          this.listedNames.delete(groupKey);
          if (before.size > 0) full = true;
        }
    } catch (err) {
      if (!signal.aborted) this.log.debug({ err: describeError(err) }, 'nacos service-name poll failed');
      return;
    }
    if (added.length === 0 && !full) return;
    this.log.debug(
      { added: added.map((r) => `${r.namespaceId}/${r.group}/${r.name}`), removed: full },
      'nacos service names changed',
    );
    if (full || added.some((r) => r.name.startsWith('providers:'))) onChange();
    else {
      // A plain name is its own key: readServices reads these refs when hinted.
      for (const r of added) this.learn(r, this.keyOf(r));
      onChange(added.map((r) => this.keyOf(r)));
    }
  }

  /** Dubbo's metadata report in the config service (made on first use; see dubbo-metadata.ts). */
  private definitions: DubboDefinitions | undefined;

  /**
   * Application-level services (`merge`) of a full read with the interfaces Dubbo's metadata
   * report in the config service says their applications provide: searched for applications
   * whose revisions are new, from the cache for the others. A failed search never fails the
   * read: the application keeps what was last read, else stays on its own entry (with a note).
   */
  private async mapApplications(
    http: NacosHttp,
    services: RegistryService[],
    signal: AbortSignal,
  ): Promise<RegistryService[]> {
    if (!this.config.dubbo.metadataReport) return services;
    const apps = services.filter((s) => s.applicationLevel?.mode === 'merge');
    if (apps.length === 0 && this.definitions === undefined) return services;
    this.definitions ??= new DubboDefinitions(
      async (path, params, sig) => {
        const res = await http.request('GET', path, params, sig);
        return { status: res.status, body: http.redact(res.body), server: res.server };
      },
      {
        source: this.context.source,
        group: this.config.dubbo.metadataGroup,
        log: this.log,
        now: this.now,
        retryMs: METADATA_RETRY_MS,
        concurrency: Math.min(4, this.config.concurrency),
      },
    );
    await this.definitions.refresh(apps, signal);
    this.definitions.retain(new Set(apps.map((s) => `${s.key.namespace}\u0000${s.applicationLevel!.application}`)));
    return services.map((s) => this.withInterfaces(s));
  }

  /** The same object again while what the cache says of its application is unchanged. */
  private readonly withDefinitions = new WeakMap<
    RegistryService,
    { readonly signature: string; readonly service: RegistryService }
  >();

  /** An application-level service (`merge`) with what the cache knows of its interfaces. */
  private withInterfaces(s: RegistryService): RegistryService {
    const level = s.applicationLevel;
    if (level?.mode !== 'merge' || this.definitions === undefined) return s;
    const known = this.definitions.known(s.key.namespace, level.application);
    if (known === undefined || (known.interfaces.length === 0 && known.error === undefined)) return s;
    const signature = JSON.stringify([known.interfaces, known.error ?? '']);
    const before = this.withDefinitions.get(s);
    if (before?.signature === signature) return before.service;
    const interfaces: ApplicationInterface[] = [];
    for (const id of known.interfaces) {
      const shape = dubboShape(
        `providers:${id.interface}:${id.version}:${id.group}`,
        { application: level.application },
        { source: s.key.source, namespace: s.key.namespace },
        this.config.dubboHostTemplate,
      );
      if (shape === undefined || shape === 'not-a-service' || shape instanceof Error) continue;
      interfaces.push({
        key: { ...s.key, group: shape.group, name: shape.name },
        host: shape.host,
        attributes: shape.attributes,
        protocol: 'dubbo',
      });
    }
    const service: RegistryService = {
      ...s,
      applicationLevel: {
        ...level,
        ...(interfaces.length > 0 ? { interfaces } : {}),
        ...(interfaces.length === 0 && known.error !== undefined ? { metadataError: known.error } : {}),
      },
    };
    this.withDefinitions.set(s, { signature, service });
    return service;
  }

  async close(): Promise<void> {
    await this.push?.close();
    this.grpcReadsClient?.close();
    this.grpcReadsClient = undefined;
    if (this.http) await (await this.http.catch(() => undefined))?.close();
  }

  /** CA of the servers' certificate (tls.caFile), for the gRPC push too. */
  private ca: Buffer | undefined;

  /** Instances as the read sees them (healthyOnly applied), in a stable order. */
  private fingerprintOf(instances: readonly Instance[]): string {
    const seen = this.config.healthyOnly ? instances.filter((i) => i.healthy !== false) : instances;
    return shortHash(
      seen
        .map((i) => JSON.stringify(i))
        .sort()
        .join('\n'),
      32,
    );
  }

  /** Per-service fingerprints of the last full read, to name what a re-list changed. */
  private serviceFingerprints = new Map<string, { readonly fp: string; readonly key: ServiceKey }>();

  private keyOf(ref: NacosServiceRef): ServiceKey {
    return { source: this.context.source, namespace: ref.namespaceId, group: ref.group, name: ref.name };
  }

  private client(): Promise<NacosHttp> {
    this.http ??= (async () => {
      const tls = this.config.tls;
      let ca: Buffer | undefined;
      if (tls?.caFile !== undefined) {
        const path = isAbsolute(tls.caFile) ? tls.caFile : resolve(this.context.baseDir, tls.caFile);
        try {
          ca = await readFile(path);
        } catch (err) {
          throw new BridgeError(
            'config',
            `source ${this.context.source}: cannot read tls.caFile ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          );
        }
      }
      this.ca = ca;
      const auth = await this.auth();
      return new NacosHttp({
        source: this.context.source,
        servers: this.config.servers,
        ...(auth ? { auth } : {}),
        ...(ca ? { ca } : {}),
        insecureSkipVerify: tls?.insecureSkipVerify ?? false,
        timeoutMs: this.config.requestTimeout,
        logger: this.log,
        now: this.now,
      });
    })();
    // A failed setup (missing secret) is retried on the next list.
    this.http.catch(() => (this.http = undefined));
    return this.http;
  }

  private async auth(): Promise<ResolvedAuth | undefined> {
    const a = this.config.auth;
    if (!a) return undefined;
    const field = `sources.${this.context.source}.nacos.auth`;
    if ('username' in a)
      return {
        kind: 'password',
        username: a.username,
        password: await this.context.resolveSecret(a.password, `${field}.password`),
      };
    return {
      kind: 'signature',
      accessKey: await this.context.resolveSecret(a.accessKey, `${field}.accessKey`),
      secretKey: await this.context.resolveSecret(a.secretKey, `${field}.secretKey`),
      ...(a.appName !== undefined ? { appName: a.appName } : {}),
    };
  }

  /**
   * One full read of every configured namespace and group: the service names over HTTP, and
   * each service's instances from its live push (`pushed-first`) or over HTTP (`http`, the
   * periodic re-list that checks the push). Throws when the server can't be read.
   */
  private async read(
    signal: AbortSignal,
    mode: 'pushed-first' | 'http',
    onService?: ServiceListener,
  ): Promise<RegistryRead> {
    const http = await this.client();
    const listedAt = this.now();
    const refs: NacosServiceRef[] = [];
    const listed = new Map<string, Set<string>>();
    for (const t of await this.targets(http, signal)) {
      const names = t.names ?? (await this.serviceNames(http, t.namespaceId, t.group, signal));
      listed.set(`${t.namespaceId}\u0000${t.group}`, new Set(names));
      for (const name of names) refs.push({ namespaceId: t.namespaceId, group: t.group, name });
    }
    // The names poll hints the services new since its last poll. A re-list (mode 'http') must
    // not move that baseline: it hints its new services only when it ends, which, paced by
    // relistRate, is up to a whole re-list later (200 s at 10,000 services). A full list by the
    // controller may: the controller reconciles every service it returns.
    if (mode === 'pushed-first') this.listedNames = listed;
    const services: RegistryService[] = [];
    const rejected: RejectedEntry[] = [];
    const live: Followed[] = [];
    // A re-list that checks live pushes is spread over half its interval, and over longer when
    // relistRate asks for it: a burst of every service's read would hold up the server's pushes
    // (and so the changes it checks), and at 10,000 services cost the bridge seconds of CPU.
    const pace =
      mode === 'http' && this.push?.carriesInstances
        ? pacer(refs.length, relistSpreadMs(refs.length, this.config.relistInterval, this.config.relistRate))
        : undefined;
    await mapLimit(refs, this.config.concurrency, async (ref) => {
      const known = mode === 'pushed-first' ? (this.livePushed(ref) ?? this.whilePending(ref)) : undefined;
      let readAt = known?.at ?? Date.now();
      let got = known?.read;
      if (got !== undefined && !hasUsable(got)) {
        // A push that leaves a service nothing usable would delete its entry: the server's
        // HTTP view is read first. Pushes trail it by the server's push delay, and a service
        // whose last instance was replaced within that delay must not be deleted by a full run
        // that starts while the server lists the new one.
        readAt = Date.now();
        got = (await this.instances(http, ref, signal)) ?? got;
      } else if (got === undefined) {
        if (pace && this.isLive(ref)) readAt = await pace();
        got = this.withPushed(ref, await this.instances(http, ref, signal), readAt);
        this.keepWhilePending(ref, got, readAt);
      }
      if (got === undefined) return;
      rejected.push(...got.rejected);
      if (got.service) {
        services.push(got.service);
        live.push({ ref, fingerprint: got.fingerprint, readAt });
        onService?.(got.service);
      }
    });
    // Forget the keys of services no longer listed (readServices maps refs through them), but
    // only what was learnt before this read listed the names: a service registered after that
    // (found meanwhile by a names poll, a push or another read) is not in this listing and is
    // not gone. A re-list takes up to half its interval, and forgetting such a service made a
    // later keys-scoped read of it guess a wrong ref.
    const listedRefs = new Set(refs.map(refKeyString));
    const forget = (k: string) => !listedRefs.has(k) && (this.learntAt.get(k) ?? 0) < listedAt;
    for (const k of [...this.keys.keys()])
      if (forget(k)) {
        this.keys.delete(k);
        this.learntAt.delete(k);
      }
    for (const [k, e] of [...this.pushed]) if (forget(k) && e.at < listedAt) this.pushed.delete(k);
    for (const [k, e] of [...this.readWhilePending]) if (forget(k) && e.at < listedAt) this.readWhilePending.delete(k);
    return { services: await this.mapApplications(http, services, signal), rejected, followed: live };
  }

  /** The service names of a namespace and group, over the read path of this server. */
  private async serviceNames(
    http: NacosHttp,
    namespaceId: string,
    group: string,
    signal: AbortSignal,
  ): Promise<string[]> {
    if ((await this.readPath(http, signal)) === 'grpc') return this.grpcServiceNames(namespaceId, group, signal);
    return this.v1ServiceNames(http, namespaceId, group, signal);
  }

  /** `ServiceListRequest` pages (1-based); the server matches the group exactly. */
  private async grpcServiceNames(namespaceId: string, group: string, signal: AbortSignal): Promise<string[]> {
    const names: string[] = [];
    const pageSize = this.config.pageSize;
    for (let pageNo = 1; ; pageNo++) {
      signal.throwIfAborted();
      const res = await this.grpcRead(
        'ServiceListRequest',
        serviceListBody(namespaceId, group, pageNo, pageSize),
        'ServiceListResponse',
        `namespace ${namespaceId}, group ${group}`,
      );
      const page = parseServiceListResponse(res.body);
      if (page instanceof Error) throw new SourceUnavailableError(this.context.source, page.message);
      names.push(...page.names);
      // `count` is the total on Java Nacos; stop on a short page too, for servers that count the page.
      if (page.names.length < pageSize || (page.count > page.names.length && pageNo * pageSize >= page.count)) break;
      if (pageNo > 100_000) throw new SourceUnavailableError(this.context.source, 'service list paging does not end');
    }
    return unique(names);
  }

  /**
   * One request of the gRPC read path; a refusal becomes SourceUnavailableError naming the call,
   * what it asked for and (403) the permission to check.
   */
  private async grpcRead(
    type: string,
    body: Record<string, unknown>,
    expected: string,
    what: string,
    ref?: NacosServiceRef,
  ): Promise<NacosMessage> {
    try {
      return await this.grpcReads().request(type, body, expected, ref);
    } catch (err) {
      throw this.grpcFailure(err, type, what);
    }
  }

  private grpcFailure(err: unknown, type: string, what: string): Error {
    if (err instanceof BridgeError) return err;
    const why = this.httpClient?.redact((err as Error).message) ?? (err as Error).message;
    const auth =
      err instanceof NacosGrpcError && (err.errorCode === 403 || err.errorCode === 401)
        ? ": check auth (username/password or accessKey/secretKey) and the user's read permission on the namespace"
        : '';
    return new SourceUnavailableError(
      this.context.source,
      `Nacos server ${this.grpcReadsClient?.server ?? this.config.servers[0]} (gRPC): ${type} (${what}): ${why}${auth}`,
    );
  }

  private grpcReadsClient: GrpcReads | undefined;

  /** The gRPC path's connection (made on first use). */
  private grpcReads(): GrpcReads {
    if (!this.grpcReadsClient) {
      if (!this.httpClient) throw new Error('nacos: the gRPC reads need the HTTP client set up first');
      this.grpcReadsClient = new GrpcReads({
        http: this.httpClient,
        ...(this.config.grpcPort !== undefined ? { grpcPort: this.config.grpcPort } : {}),
        requestTimeoutMs: this.config.requestTimeout,
        ...(this.ca ? { ca: this.ca } : {}),
        logger: this.log,
      });
    }
    return this.grpcReadsClient;
  }

  /** The read path, decided once (see detectReadPath). */
  private readPath(http: NacosHttp, signal: AbortSignal): Promise<ReadPath> {
    this.httpClient = http;
    if (!this.detected) {
      const detecting = this.detectReadPath(http, signal);
      this.detected = detecting;
      // A server that could not be asked is asked again on the next read.
      detecting.catch(() => {
        if (this.detected === detecting) this.detected = undefined;
      });
    }
    return this.detected;
  }

  private detected: Promise<ReadPath> | undefined;
  private httpClient: NacosHttp | undefined;

  /**
   * `api: auto`: a v1 service list (page 1 of the first namespace and group) that answers 200
   * means the v1 path, which every server that still serves it has long been read through; one
   * that answers 404, 410 or 501 (Nacos 3.2, 3.0/3.1 with the v1 client API off) means the gRPC
   * path, when a `ServiceListRequest` answers. No server answering is an error, not a decision:
   * the next read asks again. `api: grpc` goes straight to gRPC. Logged once.
   */
  private async detectReadPath(http: NacosHttp, signal: AbortSignal): Promise<ReadPath> {
    const api = this.config.api;
    const ns = this.explicitNamespaces()[0] ?? 'public';
    const group = this.config.groups.find((g) => g !== '*') ?? 'DEFAULT_GROUP';
    if (api === 'v1') {
      this.log.info({ path: 'v1', why: 'api: v1' }, 'nacos read path: v1 HTTP OpenAPI');
      return 'v1';
    }
    const params = { pageNo: '1', pageSize: '1', namespaceId: ns, groupName: group };
    let v1Why = 'api: grpc';
    if (api === 'auto') {
      // No server answering at all throws here: no decision, the next read asks again.
      const res = await http.request('GET', '/v1/ns/service/list', params, signal);
      if (res.status === 200) {
        this.log.info(
          { path: 'v1', server: res.server, why: 'the server serves the v1 API' },
          'nacos read path: v1 HTTP OpenAPI',
        );
        return 'v1';
      }
      if (![404, 410, 501].includes(res.status))
        throw this.httpError(
          res.server,
          'GET /v1/ns/service/list',
          res.status,
          res.body,
          `namespace ${ns}, group ${group}`,
        );
      v1Why = `${res.server}: GET /v1/ns/service/list answered HTTP ${res.status}`;
      try {
        await this.grpcReads().request('ServiceListRequest', serviceListBody(ns, group, 1, 1), 'ServiceListResponse');
      } catch (err) {
        if (err instanceof BridgeError) throw err; // login refused, a missing secret
        if (err instanceof NacosGrpcError && (err.errorCode === 403 || err.errorCode === 401))
          throw this.grpcFailure(err, 'ServiceListRequest', `namespace ${ns}, group ${group}`);
        throw this.httpError(
          res.server,
          'GET /v1/ns/service/list',
          res.status,
          res.body,
          `namespace ${ns}, group ${group}; the gRPC path did not answer either: ${http.redact((err as Error).message)}`,
        );
      }
    } else {
      try {
        await this.grpcReads().request('ServiceListRequest', serviceListBody(ns, group, 1, 1), 'ServiceListResponse');
      } catch (err) {
        throw this.grpcFailure(err, 'ServiceListRequest', `namespace ${ns}, group ${group}`);
      }
    }
    this.log.info(
      { path: 'grpc', server: this.grpcReads().server, why: v1Why },
      'nacos read path: gRPC (ServiceListRequest, ServiceQueryRequest); no v1 HTTP needed',
    );
    return 'grpc';
  }

  private async v1ServiceNames(
    http: NacosHttp,
    namespaceId: string,
    group: string,
    signal: AbortSignal,
  ): Promise<string[]> {
    const names: string[] = [];
    const pageSize = this.config.pageSize;
    for (let pageNo = 1; ; pageNo++) {
      const params = { pageNo: String(pageNo), pageSize: String(pageSize), namespaceId, groupName: group };
      const res = await http.request('GET', '/v1/ns/service/list', params, signal);
      if (res.status !== 200)
        throw this.httpError(
          res.server,
          'GET /v1/ns/service/list',
          res.status,
          http.redact(res.body),
          `namespace ${namespaceId}, group ${group}`,
        );
      const page = parseServiceListPage(parseJson(res.body));
      if (page instanceof Error)
        throw new SourceUnavailableError(
          this.context.source,
          `${res.server}: GET /v1/ns/service/list: ${page.message}`,
        );
      names.push(...page.names.map(stripGroupPrefix));
      // `count` is the total. Stop on a short page too, in case a server counts differently.
      if (page.names.length < pageSize || pageNo * pageSize >= page.count) break;
      if (pageNo > 100_000)
        throw new SourceUnavailableError(this.context.source, `${res.server}: service list paging does not end`);
    }
    return unique(names);
  }

  /** One service's instances over the read path; undefined when it is gone. */
  private async instances(
    http: NacosHttp,
    ref: NacosServiceRef,
    signal: AbortSignal,
  ): Promise<ServiceRead | undefined> {
    if ((await this.readPath(http, signal)) === 'grpc') return this.grpcInstances(ref);
    return this.v1Instances(http, ref, signal);
  }

  /**
   * `ServiceQueryRequest`: the same serviceInfo a push carries. A service without instances
   * answers an empty list (a deleted one drops out of the next names list).
   */
  private async grpcInstances(ref: NacosServiceRef): Promise<ServiceRead | undefined> {
    const label = `${ref.namespaceId}/${ref.group}/${ref.name}`;
    let res: NacosMessage;
    try {
      res = await this.grpcReads().request(
        'ServiceQueryRequest',
        serviceQueryBody(ref, this.config.healthyOnly),
        'QueryServiceResponse',
        ref,
      );
    } catch (err) {
      // The server answered for this service alone: it is rejected, the others go on.
      if (err instanceof NacosGrpcError && err.errorCode !== 403 && err.errorCode !== 401)
        return { rejected: [{ ref: label, reason: this.httpClient?.redact(err.message) ?? err.message }] };
      throw this.grpcFailure(err, 'ServiceQueryRequest', label);
    }
    return this.serviceOf(ref, res.body.serviceInfo, true);
  }

  private async v1Instances(
    http: NacosHttp,
    ref: NacosServiceRef,
    signal: AbortSignal,
  ): Promise<ServiceRead | undefined> {
    const grouped = `${ref.group}@@${ref.name}`;
    const params = {
      serviceName: grouped,
      groupName: ref.group,
      namespaceId: ref.namespaceId,
      healthyOnly: String(this.config.healthyOnly),
    };
    const res = await http.request('GET', '/v1/ns/instance/list', params, signal, grouped);
    const label = `${ref.namespaceId}/${ref.group}/${ref.name}`;
    if (res.status === 404 || (res.status === 400 && /not found|not exist/i.test(res.body))) return undefined; // deleted since the list
    if (res.status !== 200) {
      if (res.status === 401 || res.status === 403 || res.status === 410)
        throw this.httpError(res.server, 'GET /v1/ns/instance/list', res.status, http.redact(res.body), label);
      return {
        rejected: [{ ref: label, reason: `instance list answered HTTP ${res.status}${short(http.redact(res.body))}` }],
      };
    }
    return this.serviceOf(ref, parseJson(res.body), false);
  }

  /**
   * A service from an instance list: the v1 HTTP answer, or the serviceInfo of a gRPC push
   * (same host shape; the server filtered healthy ones for HTTP, we do it for pushes).
   */
  private serviceOf(ref: NacosServiceRef, raw: unknown, pushed: boolean): ServiceRead {
    const label = `${ref.namespaceId}/${ref.group}/${ref.name}`;
    const parsed = parseInstanceList(raw, label);
    if (parsed instanceof Error) return { rejected: [{ ref: label, reason: parsed.message }] };
    const fingerprint = this.fingerprintOf(parsed.instances);
    const instances =
      pushed && this.config.healthyOnly ? parsed.instances.filter((i) => i.healthy !== false) : parsed.instances;
    const service = nacosModelService(this.keyOf(ref), instances, {
      hostTemplate: this.config.dubboHostTemplate,
      applicationLevel: this.config.dubbo.applicationLevel,
    });
    if (service === undefined) return { rejected: [...parsed.rejected], fingerprint };
    if (service instanceof Error)
      return { rejected: [...parsed.rejected, { ref: label, reason: service.message }], fingerprint };
    this.learn(ref, service.key);
    this.noteProtectionThreshold(ref, parsed.protectionThresholdReached);
    return { service, rejected: [...parsed.rejected], fingerprint };
  }

  private httpError(server: string, call: string, status: number, body: string, what: string): BridgeError {
    const source = this.context.source;
    if (status === 404 || status === 410 || status === 501) {
      const why =
        status === 410
          ? 'Nacos 3.0/3.1 answers 410 when its v1 client API is switched off: set nacos.core.api.compatibility.client.enabled=true on the server'
          : "this server does not serve the Nacos v1 naming OpenAPI, which this adapter needs: Nacos >= 3.2 removed it (install the nacos-api-legacy-adapter plugin there, or use Nacos 2.x-3.1 or r-nacos); also check the URL's context path (default /nacos)";
      return new BridgeError(
        'unsupported-server',
        `source ${source}: Nacos server ${server}: ${call} (${what}) answered HTTP ${status}: ${why}`,
      );
    }
    if (status === 401 || status === 403) {
      return new SourceUnavailableError(
        source,
        `Nacos server ${server} refused ${call} (${what}) with HTTP ${status}${short(body)}: check auth (username/password or accessKey/secretKey) and the user's permissions on the namespace`,
      );
    }
    return new SourceUnavailableError(
      source,
      `Nacos server ${server}: ${call} (${what}) answered HTTP ${status}${short(body)}`,
    );
  }
}

/**
 * How long a re-list of `n` services with live pushes is spread over: half the re-list
 * interval, or longer when that would read more than `ratePerS` services a second.
 */
export function relistSpreadMs(n: number, intervalMs: number, ratePerS: number): number {
  return Math.max(intervalMs / 2, (n / ratePerS) * 1000);
}

/**
 * Spreads `n` calls evenly over `spreadMs`: each call waits for its slot and returns the time it
 * started. Slots are at least `spreadMs / n` apart; a caller that comes late starts at once and
 * the next slot is counted from it, so a stall is never made up with a burst.
 */
export function pacer(n: number, spreadMs: number): () => Promise<number> {
  const step = spreadMs / Math.max(1, n);
  let free = Date.now();
  return async () => {
    const slot = Math.max(free, Date.now());
    free = slot + step;
    const wait = slot - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    return Date.now();
  };
}

/** The read names an instance that can be published (enabled, healthy, weight above 0). */
function hasUsable(read: ServiceRead): boolean {
  return (read.service?.instances ?? []).some((i) => i.enabled && i.healthy && i.weight > 0);
}

function refKeyString(r: NacosServiceRef): string {
  return `${r.namespaceId}\u0000${r.group}\u0000${r.name}`;
}

function fingerprintsOf(services: readonly RegistryService[]): Map<string, { fp: string; key: ServiceKey }> {
  return new Map(
    services.map((svc) => [serviceKeyString(svc.key), { fp: serviceFingerprint(svc), key: svc.key }] as const),
  );
}

/**
 * Services are immutable, and a full list answered from pushes returns the same objects run
 * after run: hash each once (10,000 JSON serializations and hashes were 130 ms of every resync).
 */
const fingerprints = new WeakMap<RegistryService, string>();
function serviceFingerprint(svc: RegistryService): string {
  let fp = fingerprints.get(svc);
  if (fp === undefined) fingerprints.set(svc, (fp = shortHash(JSON.stringify(svc), 32)));
  return fp;
}

function refOfKeyString(s: string): NacosServiceRef {
  const [namespaceId = '', group = '', name = ''] = s.split('\u0000');
  return { namespaceId, group, name };
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function short(body: string): string {
  const t = body.replace(/\s+/g, ' ').trim();
  return t === '' ? '' : `: ${t.length > 160 ? `${t.slice(0, 160)}…` : t}`;
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}
