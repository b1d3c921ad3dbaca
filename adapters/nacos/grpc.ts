import type * as GrpcModule from '@grpc/grpc-js';
import type { Logger } from '../../src/log.js';
import {
  decodePayload,
  encodePayload,
  fuzzyWatchBody,
  fuzzyWatchPattern,
  parseFuzzyNotice,
  responseError,
  serviceKeyOf,
  BI_STREAM_PATH,
  UNARY_PATH,
  type NacosMessage,
} from './grpc-wire.js';
import type { NacosHttp } from './http.js';
import type { NacosServiceRef } from './index.js';
import { stripGroupPrefix } from './parse.js';
import { mapLimit } from '../../src/util/concurrency.js';
import { grpcJs as grpc } from '../../src/util/lazy-modules.js';

/** The server answered a request, with an error (`errorCode` as it says, e.g. 403). */
export class NacosGrpcError extends Error {
  constructor(
    message: string,
    readonly errorCode: number,
  ) {
    super(message);
    this.name = 'NacosGrpcError';
  }
}

/** A service to follow, with the fingerprint of its instances as last read over HTTP. */
export interface Followed {
  readonly ref: NacosServiceRef;
  readonly fingerprint: string | undefined;
  /** When the HTTP read of this service was sent (a push after it is newer than the read). */
  readonly readAt: number;
}

export interface GrpcPushOptions {
  readonly http: NacosHttp;
  /** gRPC port; default: each server's HTTP port + 1000 (the Nacos convention). */
  readonly grpcPort?: number;
  readonly requestTimeoutMs: number;
  /** CA of the server certificate when the servers are https. */
  readonly ca?: Buffer;
  readonly logger: Logger;
  /**
   * Every serviceInfo the server pushed or answered a subscription with: the caller keeps it
   * (parsed) and returns its fingerprint (same projection as the HTTP read).
   */
  readonly received: (ref: NacosServiceRef, serviceInfo: unknown) => string | undefined;
  readonly onChange: (ref: NacosServiceRef) => void;
  /** Subscribe calls in flight per connection. */
  readonly concurrency?: number;
  /**
   * Fuzzy watch (Nacos 3.x): services appearing in or leaving the watched groups of a namespace,
   * announced by the server. Unset: no fuzzy watch.
   */
  readonly fuzzy?: FuzzyWatchOptions;
  /** What the connection is for, in its log lines: `push` (default) or `reads`. */
  readonly role?: 'push' | 'reads';
  /** Tests: shorter reconnect backoff and keepalive. */
  readonly timings?: { readonly keepAliveMs?: number; readonly maxBackoffMs?: number };
}

export interface FuzzyWatchOptions {
  /** Services the caller knows in `namespace`/`group` (`*`: every group), sent so the server's sync sends the rest. */
  readonly known: (namespace: string, group: string) => Iterable<{ readonly group: string; readonly name: string }>;
  /** Services the server says appeared (`added`) or vanished (`removed`). */
  readonly onServices: (added: readonly NacosServiceRef[], removed: readonly NacosServiceRef[]) => void;
  /** The fuzzy watch of a namespace and group went live, or stopped (with why). */
  readonly onState: (namespace: string, group: string, live: boolean, why: string) => void;
}

/** Followed services per namespace (one gRPC connection each). */
function byNamespace(followed: readonly Followed[]): Map<string, Followed[]> {
  const byNs = new Map<string, Followed[]>();
  for (const f of followed) {
    let list = byNs.get(f.ref.namespaceId);
    if (!list) byNs.set(f.ref.namespaceId, (list = []));
    list.push(f);
  }
  return byNs;
}

/**
 * Push through the Nacos 2.x/3.x gRPC protocol (Java Nacos and r-nacos): one connection per
 * namespace (pushes do not name the namespace), a `SubscribeServiceRequest` per followed service,
 * and every `NotifySubscriberRequest` acknowledged, handed to the caller (`received`) and turned
 * into a change hint when the pushed instances differ from what was last seen. While a
 * subscription is live (`isLive`), what it pushed is current; the caller's periodic re-list over
 * HTTP checks it, so a lost push costs at most two re-list intervals.
 */
export class GrpcPush {
  readonly carriesInstances = true;
  private readonly connections = new Map<string, NamespaceConnection>();
  private closed = false;

  constructor(private readonly o: GrpcPushOptions) {}

  /** Namespace → groups fuzzy-watched there (their connections stay while nothing is followed). */
  private fuzzyGroups = new Map<string, readonly string[]>();

  /**
   * Fuzzy-watches these groups of these namespaces (`fuzzy` option): each namespace's connection
   * sends a `NamingFuzzyWatchRequest` per group, again after every reconnect.
   */
  fuzzyWatch(groupsByNamespace: ReadonlyMap<string, readonly string[]>): void {
    if (this.closed || !this.o.fuzzy) return;
    this.fuzzyGroups = new Map(groupsByNamespace);
    for (const [ns, groups] of this.fuzzyGroups) this.connection(ns).fuzzyWatch(groups);
  }

  /** The fuzzy watch of `namespace`/`group` is live: the server announces its new services. */
  fuzzyLive(namespace: string, group: string): boolean {
    return this.connections.get(namespace)?.fuzzyLive(group) ?? false;
  }

  /** Follows exactly these services (new ones subscribed, vanished ones unsubscribed). */
  sync(followed: readonly Followed[]): void {
    if (this.closed) return;
    const byNs = byNamespace(followed);
    for (const ns of this.fuzzyGroups.keys()) if (!byNs.has(ns)) byNs.set(ns, []);
    for (const [ns, conn] of this.connections) {
      if (byNs.has(ns)) continue;
      conn.close();
      this.connections.delete(ns);
    }
    for (const [ns, list] of byNs) this.connection(ns).follow(list);
  }

  /**
   * Follows these services as well (the others stay followed): a service first read between two
   * re-lists, such as a new one the names poll found, is pushed from then on. The next sync()
   * keeps it if it is still listed.
   */
  add(followed: readonly Followed[]): void {
    if (this.closed) return;
    for (const [ns, list] of byNamespace(followed)) this.connection(ns).add(list);
  }

  /** The namespace's connection, made (idle) when there is none yet. */
  private connection(ns: string): NamespaceConnection {
    let conn = this.connections.get(ns);
    if (!conn) this.connections.set(ns, (conn = new NamespaceConnection(ns, this.o)));
    return conn;
  }

  /**
   * `ref` is subscribed on a connection that is up: what it was last pushed (or answered the
   * subscription with) is current, since every change is pushed and a reconnect re-subscribes.
   */
  isLive(ref: NacosServiceRef): boolean {
    return this.connections.get(ref.namespaceId)?.isLive(ref) ?? false;
  }

  /**
   * `ref` is followed on a connection that is up but not subscribed yet (subscribing 10,000
   * services takes the server a minute): its subscription's answer will be compared with what
   * the caller last read, and a difference hinted.
   */
  isPending(ref: NacosServiceRef): boolean {
    return this.connections.get(ref.namespaceId)?.isPending(ref) ?? false;
  }

  /** Connection states per namespace (diagnostics, tests). */
  status(): Record<string, { state: string; subscribed: number; followed: number; server: string | undefined }> {
    const out: Record<string, { state: string; subscribed: number; followed: number; server: string | undefined }> = {};
    for (const [ns, c] of this.connections) out[ns] = c.status();
    return out;
  }

  close(): void {
    this.closed = true;
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }
}

/**
 * The gRPC path's reads (ServiceListRequest, ServiceQueryRequest): one connection, whatever the
 * namespace (the requests name it), made on the first request and kept.
 */
export class GrpcReads {
  private readonly conn: NamespaceConnection;

  constructor(o: Omit<GrpcPushOptions, 'received' | 'onChange'>) {
    this.conn = new NamespaceConnection('*', { ...o, role: 'reads', received: () => undefined, onChange: () => {} });
  }

  /** The server (host:gRPC port) of the connection. */
  get server(): string | undefined {
    return this.conn.status().server;
  }

  /** Throws when the connection cannot be made or the server answers anything but `expected`. */
  request(type: string, body: Record<string, unknown>, expected: string, ref?: NacosServiceRef): Promise<NacosMessage> {
    return this.conn.request(type, body, expected, ref);
  }

  close(): void {
    this.conn.close();
  }
}

interface Subscription {
  readonly ref: NacosServiceRef;
  /** What we last knew (pushed, or read over HTTP): a push that differs is a change. */
  fingerprint: string | undefined;
  /** When the server last pushed (or answered the subscription). */
  pushedAt?: number;
  /** Subscribed on the current connection. */
  subscribed: boolean;
}

type Stream = GrpcModule.ClientDuplexStream<NacosMessage, NacosMessage>;

class NamespaceConnection {
  private readonly subs = new Map<string, Subscription>();
  private client: GrpcModule.Client | undefined;
  private stream: Stream | undefined;
  private state: 'idle' | 'connecting' | 'ready' | 'closed' = 'idle';
  private server: string | undefined;
  private serverIndex = 0;
  private failures = 0;
  private lastActive = 0;
  private setupAck: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private subscribing: Promise<void> | undefined;
  private resubscribe = false;
  /** Callers of whenReady() waiting for the connection to come up (or fail). */
  /** Fuzzy-watched groups of this namespace, and the state of each on this connection. */
  private fuzzy = new Map<string, 'pending' | 'live' | 'failed'>();
  /** A connect() is under way. */
  private attempting = false;
  private waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private readonly log: Logger;
  private readonly keepAliveMs: number;
  private readonly maxBackoffMs: number;

  constructor(
    private readonly namespace: string,
    private readonly o: GrpcPushOptions,
  ) {
    this.log = o.logger.child({ component: 'nacos-grpc', namespace });
    this.keepAliveMs = o.timings?.keepAliveMs ?? 5_000;
    this.maxBackoffMs = o.timings?.maxBackoffMs ?? 30_000;
  }

  status() {
    return {
      state: this.state,
      subscribed: [...this.subs.values()].filter((s) => s.subscribed).length,
      followed: this.subs.size,
      server: this.server,
    };
  }

  isLive(ref: NacosServiceRef): boolean {
    return this.state === 'ready' && this.subs.get(subKey(ref.group, ref.name))?.subscribed === true;
  }

  isPending(ref: NacosServiceRef): boolean {
    return this.state === 'ready' && this.subs.get(subKey(ref.group, ref.name))?.subscribed === false;
  }

  follow(list: readonly Followed[]): void {
    if (this.state === 'closed') return;
    const want = new Map(list.map((f) => [subKey(f.ref.group, f.ref.name), f]));
    for (const [key, sub] of this.subs) {
      if (want.has(key)) continue;
      this.subs.delete(key);
      if (sub.subscribed && this.state === 'ready') void this.unsubscribe(sub.ref);
    }
    for (const [key, f] of want) {
      const sub = this.subs.get(key);
      // A read sent after the last push is at least as new: compare pushes with it from now
      // on. A push that came after the read was sent is newer than the read: keep it (else the
      // next push, back to what the stale read saw, would look like no change).
      if (!sub) {
        this.subs.set(key, { ref: f.ref, fingerprint: f.fingerprint, subscribed: false });
      } else if (sub.pushedAt === undefined || sub.pushedAt < f.readAt) {
        sub.fingerprint = f.fingerprint;
      }
    }
    if (this.state === 'idle') this.connectSoon(0);
    else if (this.state === 'ready') this.subscribeAll();
  }

  /** Fuzzy-watches these groups (instead of those before). */
  fuzzyWatch(groups: readonly string[]): void {
    if (this.state === 'closed') return;
    const want = new Set(groups);
    for (const g of [...this.fuzzy.keys()])
      if (!want.has(g)) {
        if (this.fuzzy.get(g) === 'live' && this.state === 'ready') void this.sendFuzzyWatch(g, false);
        this.fuzzy.delete(g);
      }
    const added = groups.filter((g) => !this.fuzzy.has(g));
    for (const g of added) this.fuzzy.set(g, 'pending');
    if (this.state === 'idle') this.connectSoon(0);
    else if (this.state === 'ready') for (const g of added) void this.sendFuzzyWatch(g, true);
  }

  fuzzyLive(group: string): boolean {
    return this.state === 'ready' && (this.fuzzy.get(group) === 'live' || this.fuzzy.get('*') === 'live');
  }

  /** `group` is watched here, by name or by `*`. */
  private watches(group: string): boolean {
    return this.fuzzy.has(group) || this.fuzzy.has('*');
  }

  /** Sends one WATCH (or CANCEL_WATCH) of `<namespace>>><group>>>*`; its answer sets the state. */
  private async sendFuzzyWatch(group: string, watch: boolean): Promise<void> {
    const f = this.o.fuzzy;
    if (!f) return;
    const pattern = fuzzyWatchPattern(this.namespace, group);
    const known = watch
      ? [...f.known(this.namespace, group)].map((k) =>
          serviceKeyOf({ namespaceId: this.namespace, group: k.group, name: k.name }),
        )
      : [];
    try {
      await this.unary(
        'NamingFuzzyWatchRequest',
        fuzzyWatchBody(this.namespace, pattern, watch, known, true),
        'NamingFuzzyWatchResponse',
        true,
      );
      if (!watch || this.fuzzy.get(group) === undefined || this.state !== 'ready') return;
      this.setFuzzy(group, 'live', `server accepted ${pattern}`);
    } catch (err) {
      if (!watch || this.fuzzy.get(group) === undefined || this.state !== 'ready') return;
      this.setFuzzy(group, 'failed', this.o.http.redact((err as Error).message));
    }
  }

  private setFuzzy(group: string, state: 'pending' | 'live' | 'failed', why: string): void {
    const before = this.fuzzy.get(group);
    this.fuzzy.set(group, state);
    const live = state === 'live';
    if ((before === 'live') !== live || (state === 'failed' && before !== 'failed'))
      this.o.fuzzy?.onState(this.namespace, group, live, why);
  }

  /** A server request of the fuzzy watch: acknowledged, then handed on. */
  private onFuzzyNotice(m: NacosMessage): void {
    const n = parseFuzzyNotice(m);
    const f = this.o.fuzzy;
    if (!f) return;
    switch (n.kind) {
      case 'malformed':
        this.log.warn({ type: m.type, why: n.why }, 'nacos fuzzy watch: ignoring a malformed notice');
        return;
      case 'over-limit': {
        const group = n.pattern.split('>>')[1];
        for (const g of group !== undefined && this.fuzzy.has(group) ? [group] : [...this.fuzzy.keys()])
          this.setFuzzy(g, 'failed', `the server's fuzzy-watch limit is reached (${n.syncType})`);
        return;
      }
      case 'change':
        if (n.ref.namespaceId !== this.namespace || !this.watches(n.ref.group)) return;
        if (n.change === 'add') f.onServices([n.ref], []);
        else if (n.change === 'delete') f.onServices([], [n.ref]);
        return;
      case 'sync': {
        const mine = (r: NacosServiceRef) => r.namespaceId === this.namespace && this.watches(r.group);
        const added = n.added.filter(mine);
        const removed = n.removed.filter(mine);
        if (added.length > 0 || removed.length > 0) f.onServices(added, removed);
        return;
      }
    }
  }

  /** Follows these services too; those followed already keep their state. */
  add(list: readonly Followed[]): void {
    if (this.state === 'closed') return;
    let added = false;
    for (const f of list) {
      const key = subKey(f.ref.group, f.ref.name);
      if (this.subs.has(key)) continue;
      this.subs.set(key, { ref: f.ref, fingerprint: f.fingerprint, subscribed: false });
      added = true;
    }
    if (!added) return;
    if (this.state === 'idle') this.connectSoon(0);
    else if (this.state === 'ready') this.subscribeAll();
  }

  close(): void {
    this.state = 'closed';
    clearTimeout(this.timer);
    clearInterval(this.keepAlive);
    this.teardown();
    this.settleWaiters(new Error('connection closed'));
  }

  /**
   * Resolves when the connection is up (connecting it when idle); rejects with the reason when
   * the next attempt fails or `timeoutMs` passes, so a caller never waits out the backoff.
   */
  whenReady(timeoutMs: number): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new Error('connection closed'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no gRPC connection to ${this.target().address} within ${timeoutMs} ms`));
      }, timeoutMs);
      // Not unref'd: a caller waiting for the connection keeps the process up (the connect timer is unref'd).
      const waiter = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (err: Error) => (clearTimeout(timer), reject(err)),
      };
      this.waiters.push(waiter);
      // A connection in its backoff is tried again now: a caller waits for an answer, not a timer.
      if (!this.attempting && (this.state === 'idle' || this.failures > 0)) this.connectSoon(0);
    });
  }

  /** One request on this connection, once it is up (see unary). */
  async request(
    type: string,
    body: Record<string, unknown>,
    expected: string,
    ref?: NacosServiceRef,
  ): Promise<NacosMessage> {
    await this.whenReady(this.o.requestTimeoutMs);
    return this.unary(type, body, expected, true, ref);
  }

  private settleWaiters(err?: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters)
      if (err) w.reject(err);
      else w.resolve();
  }

  /** (A method, so that TypeScript does not narrow the state across awaits.) */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private connectSoon(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), delayMs);
    this.timer.unref();
  }

  private target(): { address: string; secure: boolean } {
    const bases = this.o.http.bases;
    const base = new URL(bases[this.serverIndex % bases.length]!);
    const secure = base.protocol === 'https:';
    const httpPort = Number(base.port || (secure ? 443 : 80));
    return {
      address: `${base.hostname.includes(':') ? `[${base.hostname}]` : base.hostname}:${this.o.grpcPort ?? httpPort + 1000}`,
      secure,
    };
  }

  private async connect(): Promise<void> {
    if (this.state === 'closed' || this.attempting) return;
    this.attempting = true;
    try {
      await this.attempt();
    } finally {
      this.attempting = false;
    }
  }

  private async attempt(): Promise<void> {
    this.state = 'connecting';
    const { address, secure } = this.target();
    this.server = address;
    const g = grpc();
    const credentials = secure ? g.credentials.createSsl(this.o.ca ?? null) : g.credentials.createInsecure();
    // No HTTP/2 keepalive pings: Nacos answers pings more often than every 5 minutes with GOAWAY
    // (too_many_pings). Liveness is the protocol's own HealthCheckRequest below.
    // Its own TCP connection per namespace (a local subchannel pool): the servers key a
    // connection by its transport, and grpc-js would otherwise share one between clients.
    const client = new g.Client(address, credentials, {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.use_local_subchannel_pool': 1,
    });
    this.client = client;
    try {
      const check = await this.unary('ServerCheckRequest', { module: 'internal' }, 'ServerCheckResponse', false);
      const stream = client.makeBidiStreamRequest(
        BI_STREAM_PATH,
        encodePayload,
        decodePayload,
        new g.Metadata(),
      ) as Stream;
      this.stream = stream;
      // A throw inside grpc-js's 'data' event would end the process: drop the stream instead.
      stream.on('data', (m: NacosMessage) => {
        try {
          this.onServerMessage(stream, m);
        } catch (err) {
          this.lost(stream, `a server message could not be handled: ${this.o.http.redact(String(err))}`);
        }
      });
      stream.on('error', (err: Error) => this.lost(stream, `stream error: ${this.o.http.redact(err.message)}`));
      stream.on('end', () => this.lost(stream, 'stream ended by the server'));
      const acked = new Promise<void>((resolve) => (this.setupAck = resolve));
      stream.write({
        type: 'ConnectionSetupRequest',
        headers: {},
        body: {
          headers: {},
          clientVersion: 'Nacos-Node-Client:registry-bridge',
          labels: { source: 'sdk', module: 'naming', AppName: 'registry-bridge' },
          abilityTable: {},
          module: 'internal',
        },
      });
      // Java Nacos >= 2.3 acknowledges the setup (SetupAckRequest) when it negotiates abilities;
      // older servers and r-nacos register the connection without a word.
      const waitMs = check.body.supportAbilityNegotiation === true ? 3_000 : 100;
      await Promise.race([acked, new Promise((r) => setTimeout(r, waitMs))]);
      if (this.isClosed() || this.stream !== stream) return;
      this.state = 'ready';
      this.failures = 0;
      this.lastActive = Date.now();
      this.log.info(
        { server: address, connectionId: String(check.body.connectionId ?? '') },
        `nacos gRPC ${this.o.role ?? 'push'} connected`,
      );
      clearInterval(this.keepAlive);
      this.keepAlive = setInterval(() => void this.checkAlive(), this.keepAliveMs);
      this.keepAlive.unref();
      for (const s of this.subs.values()) s.subscribed = false;
      this.settleWaiters();
      this.subscribeAll();
      for (const g of this.fuzzy.keys()) void this.sendFuzzyWatch(g, true);
    } catch (err) {
      this.fail(`cannot connect: ${this.o.http.redact((err as Error).message)}`);
    }
  }

  private fail(why: string): void {
    if (this.state === 'closed') return;
    this.teardown();
    this.state = 'connecting';
    this.failures += 1;
    this.serverIndex += 1;
    const backoff = Math.min(this.maxBackoffMs, 500 * 2 ** Math.min(this.failures - 1, 10));
    const delay = Math.round(backoff * (0.5 + Math.random() * 0.5));
    const level = this.failures === 1 || this.failures % 10 === 0 ? 'warn' : 'debug';
    this.log[level](
      { server: this.server, failures: this.failures, retryInMs: delay },
      `nacos gRPC ${this.o.role ?? 'push'} connection: ${why}${this.o.role === 'reads' ? '' : '; the periodic re-list still applies changes'}`,
    );
    this.settleWaiters(new Error(`${this.server ?? 'nacos'}: ${why}`));
    this.connectSoon(delay);
  }

  private lost(stream: Stream, why: string): void {
    if (stream !== this.stream || this.state === 'closed') return;
    this.fail(why);
  }

  private teardown(): void {
    clearInterval(this.keepAlive);
    const stream = this.stream;
    this.stream = undefined;
    this.setupAck = undefined;
    try {
      stream?.cancel();
    } catch {
      /* already gone */
    }
    this.client?.close();
    this.client = undefined;
    for (const s of this.subs.values()) s.subscribed = false;
    for (const g of this.fuzzy.keys()) if (this.fuzzy.get(g) === 'live') this.setFuzzy(g, 'pending', 'connection lost');
  }

  private async checkAlive(): Promise<void> {
    if (this.state !== 'ready' || Date.now() - this.lastActive < this.keepAliveMs) return;
    try {
      await this.unary('HealthCheckRequest', { module: 'internal' }, 'HealthCheckResponse', false);
    } catch (err) {
      if (this.state === 'ready') this.fail(`health check failed: ${this.o.http.redact((err as Error).message)}`);
    }
  }

  private onServerMessage(stream: Stream, m: NacosMessage): void {
    if (stream !== this.stream) return;
    this.lastActive = Date.now();
    const requestId =
      typeof m.body.requestId === 'string' || typeof m.body.requestId === 'number' ? String(m.body.requestId) : '';
    const reply = (type: string) =>
      stream.write({ type, headers: {}, body: { resultCode: 200, errorCode: 0, requestId } });
    switch (m.type) {
      case 'SetupAckRequest':
        this.setupAck?.();
        return;
      case 'NotifySubscriberRequest':
        reply('NotifySubscriberResponse');
        this.onServiceInfo(m.body.serviceInfo, 'push');
        return;
      case 'ClientDetectionRequest':
        reply('ClientDetectionResponse');
        return;
      case 'NamingFuzzyWatchSyncRequest':
        reply('NamingFuzzyWatchSyncResponse');
        this.onFuzzyNotice(m);
        return;
      case 'NamingFuzzyWatchChangeNotifyRequest':
        reply('NamingFuzzyWatchChangeNotifyResponse');
        this.onFuzzyNotice(m);
        return;
      case 'ConnectResetRequest':
        reply('ConnectResetResponse');
        this.fail('reset by the server (ConnectResetRequest)');
        return;
      default:
        this.log.debug({ type: m.type }, 'nacos gRPC: ignoring a server request of an unknown type');
    }
  }

  private onServiceInfo(info: unknown, via: 'push' | 'subscribe'): void {
    const i = info as { name?: unknown; groupName?: unknown } | null | undefined;
    if (typeof i?.name !== 'string') return;
    const rawName = i.name;
    const group =
      typeof i.groupName === 'string' && i.groupName !== ''
        ? i.groupName
        : rawName.includes('@@')
          ? rawName.slice(0, rawName.indexOf('@@'))
          : 'DEFAULT_GROUP';
    const sub = this.subs.get(subKey(group, stripGroupPrefix(rawName)));
    if (!sub) return;
    const fp = this.o.received(sub.ref, info);
    sub.pushedAt = Date.now();
    if (fp !== undefined && fp === sub.fingerprint) return;
    sub.fingerprint = fp;
    this.log.debug({ group: sub.ref.group, service: sub.ref.name, via }, 'nacos gRPC: instances changed');
    this.o.onChange(sub.ref);
  }

  /** Subscribes every followed service not yet subscribed on this connection. */
  private subscribeAll(): void {
    if (this.subscribing) {
      this.resubscribe = true;
      return;
    }
    this.subscribing = (async () => {
      do {
        this.resubscribe = false;
        const todo = [...this.subs.values()].filter((s) => !s.subscribed);
        await mapLimit(todo, this.o.concurrency ?? 16, async (sub) => {
          if (this.state !== 'ready' || sub.subscribed || this.subs.get(subKey(sub.ref.group, sub.ref.name)) !== sub)
            return;
          try {
            const res = await this.unary(
              'SubscribeServiceRequest',
              subscribeBody(sub.ref, true),
              'SubscribeServiceResponse',
              true,
              sub.ref,
            );
            sub.subscribed = true;
            this.onServiceInfo(res.body.serviceInfo, 'subscribe');
          } catch (err) {
            if (this.state === 'ready')
              this.log.warn(
                { group: sub.ref.group, service: sub.ref.name, err: this.o.http.redact((err as Error).message) },
                'nacos gRPC subscribe failed; retried on the next re-list',
              );
          }
        });
      } while (this.resubscribe && this.state === 'ready');
      // Said only of something to subscribe (a fuzzy-watch or read connection follows nothing).
      if (this.state === 'ready' && this.subs.size > 0)
        this.log.debug(
          { subscribed: this.status().subscribed, followed: this.subs.size },
          'nacos gRPC subscriptions up to date',
        );
    })().finally(() => (this.subscribing = undefined));
  }

  private async unsubscribe(ref: NacosServiceRef): Promise<void> {
    try {
      await this.unary('SubscribeServiceRequest', subscribeBody(ref, false), 'SubscribeServiceResponse', true, ref);
    } catch (err) {
      this.log.debug(
        { group: ref.group, service: ref.name, err: this.o.http.redact((err as Error).message) },
        'nacos gRPC unsubscribe failed',
      );
    }
  }

  /**
   * One unary request on this connection's channel (the server ties it to the bi-stream by the
   * transport). A "Connection is unregistered" (301) right after the setup is retried briefly;
   * a 403 with password auth logs in again once.
   */
  private async unary(
    type: string,
    body: Record<string, unknown>,
    expected: string,
    secured: boolean,
    ref?: NacosServiceRef,
  ): Promise<NacosMessage> {
    const base = this.o.http.bases[this.serverIndex % this.o.http.bases.length]!;
    for (let attempt = 0; ; attempt++) {
      const client = this.client;
      if (!client) throw new Error('connection closed');
      const headers = secured
        ? await this.o.http.grpcHeaders(
            base,
            AbortSignal.timeout(this.o.requestTimeoutMs),
            ref ? `${ref.group}@@${ref.name}` : undefined,
          )
        : {};
      const res = await new Promise<NacosMessage>((resolve, reject) => {
        client.makeUnaryRequest(
          UNARY_PATH,
          encodePayload,
          decodePayload,
          { type, headers, body: { headers: {}, ...body } },
          new (grpc().Metadata)(),
          { deadline: Date.now() + this.o.requestTimeoutMs },
          (err, value) =>
            err || !value
              ? reject(new Error(`${type}: ${err?.details || err?.message || 'no answer'}`))
              : resolve(value),
        );
      });
      const problem = responseError(res, expected);
      if (problem === undefined) {
        this.lastActive = Date.now();
        return res;
      }
      const errorCode = Number(res.body.errorCode ?? 0);
      if (errorCode === 301 && attempt < 20) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (errorCode === 403 && secured && attempt === 0) {
        this.o.http.forgetToken(base);
        continue;
      }
      throw new NacosGrpcError(`${type} answered ${problem}`, errorCode);
    }
  }
}

function subKey(group: string, name: string): string {
  return `${group}\u0000${name}`;
}

function subscribeBody(ref: NacosServiceRef, subscribe: boolean): Record<string, unknown> {
  return {
    namespace: ref.namespaceId,
    serviceName: ref.name,
    groupName: ref.group,
    clusters: '',
    subscribe,
    module: 'naming',
  };
}
