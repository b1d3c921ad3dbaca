import type { Client, State, Watcher } from 'node-zookeeper-client';
import { zookeeperClient as zookeeper } from '../../src/util/lazy-modules.js';
import type { Logger } from '../../src/log.js';

/** ZooKeeper cannot be read right now (no connection, session expired, auth failed, timeout). */
export class ZkUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ZkUnavailableError';
  }
}

const NO_NODE: unique symbol = Symbol('no node');

/** The part of node-zookeeper-client's per-attempt net.Socket the session uses. */
export interface ClientSocket {
  readonly connecting: boolean;
  readonly destroyed: boolean;
  destroy(): void;
  cork(): void;
  uncork(): void;
}

/** The part of node-zookeeper-client 1.1.x's ConnectionManager the session reaches into. */
interface ConnectionManagerInternals {
  socket?: ClientSocket;
  /** Parses what the server sent; bound to each new socket's 'data' event by connect(). */
  onSocketData?: (buffer: Buffer) => void;
  /** Bytes of an incomplete frame, kept across sockets by the library. */
  pendingBuffer?: Buffer | null;
}

function connectionManagerOf(client: Client): ConnectionManagerInternals | undefined {
  return (client as unknown as { connectionManager?: ConnectionManagerInternals }).connectionManager;
}

/** node-zookeeper-client 1.1.x keeps the current connection's socket here (no public API). */
export function socketOf(client: Client): ClientSocket | undefined {
  return connectionManagerOf(client)?.socket;
}

/**
 * node-zookeeper-client parses every answer inside the socket's 'data' handler and throws there
 * on bytes that are not ZooKeeper's protocol (`Unknown code: …` for an error code it does not
 * know, a RangeError for a short frame): an uncaught exception that ends the process. Something
 * other than ZooKeeper answering on the configured port (a proxy, an HTTP server, a half-written
 * frame) must be a source error, not a crash. The handler is replaced before connect() binds it:
 * a throw drops the frame buffer and the connection (the client reconnects, its pending requests
 * fail with CONNECTION_LOSS) and is handed to onError. Returns false when the library's shape
 * has changed and nothing could be guarded (a unit test fails then).
 */
export function guardSocketData(client: Client, onError: (err: unknown) => void): boolean {
  const manager = connectionManagerOf(client);
  const parse = manager?.onSocketData;
  if (!manager || typeof parse !== 'function') return false;
  manager.onSocketData = function guardedOnSocketData(this: unknown, buffer: Buffer): void {
    try {
      parse.call(this, buffer);
    } catch (err) {
      manager.pendingBuffer = null;
      manager.socket?.destroy();
      onError(err);
    }
  };
  return true;
}

export type SessionState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'expired' | 'auth-failed' | 'closed';

/** `connected` carries whether this is a new session (watches lost: re-arm everything). */
export type SessionEvent =
  | { readonly type: 'connected'; readonly newSession: boolean }
  | { readonly type: 'disconnected' }
  | { readonly type: 'expired' };

export interface ZkSessionOptions {
  readonly connect: string;
  readonly sessionTimeout: number;
  readonly requestTimeout: number;
  /** Resolves the digest `user:password`; called for every new session. Never logged. */
  readonly credentials?: () => Promise<string>;
  readonly logger: Logger;
}

/**
 * One logical ZooKeeper connection that survives session expiry: node-zookeeper-client
 * reconnects by itself within a session, but an expired session leaves its client unusable, so
 * a new client (a new session) replaces it and listeners are told to re-arm their watches.
 * Requests never wait longer than requestTimeout: the client would otherwise queue them until
 * ZooKeeper comes back.
 */
export class ZkSession {
  private client: Client | undefined;
  private starting: Promise<void> | undefined;
  private state: SessionState = 'idle';
  private generation = 0;
  private connectedGeneration = -1;
  private readonly waiters = new Set<() => void>();
  /** When the current client last answered anything (stall detection). */
  private lastAnswerAt = 0;
  /** Replaces a client that stays unconnected for a session timeout (see onState). */
  private reconnectWatchdog: NodeJS.Timeout | undefined;
  /** Drops a connection whose handshake goes unanswered (see watchHandshake). */
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** The socket corked for the current tick (see corkForTick). */
  private corked: ClientSocket | undefined;
  private readonly listeners = new Set<(e: SessionEvent) => void>();
  /** The last answer that was not ZooKeeper's protocol (see guardSocketData), and when it was logged. */
  private protocolError: { message: string; at: number; loggedAt: number } | undefined;

  constructor(private readonly options: ZkSessionOptions) {}

  get currentState(): SessionState {
    return this.state;
  }

  onEvent(listener: (e: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once connected; throws ZkUnavailableError after requestTimeout. */
  async ready(signal?: AbortSignal): Promise<Client> {
    if (this.state === 'closed') throw new ZkUnavailableError('client closed');
    if (this.state === 'idle' || this.state === 'auth-failed') await this.start();
    if (this.state === 'connected' && this.client) return this.client;
    // No abort listener per waiting request (hundreds may wait): every wait is bounded by
    // requestTimeout and an aborted signal is checked before each request.
    if (signal?.aborted) throw new ZkUnavailableError('aborted', { cause: signal.reason });
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        if (err) reject(err);
        else resolve();
      };
      const wake = () => {
        if (this.state === 'connected') done();
        else if (this.state === 'auth-failed')
          done(new ZkUnavailableError('authentication failed (digest credentials rejected)'));
        else if (this.state === 'closed') done(new ZkUnavailableError('client closed'));
      };
      const timer = setTimeout(
        () =>
          done(
            new ZkUnavailableError(
              `not connected to ${this.servers()} within ${this.options.requestTimeout} ms (state ${this.state})` +
                this.lastProtocolError(),
            ),
          ),
        this.options.requestTimeout,
      );
      this.waiters.add(wake);
      wake();
    });
    return this.client!;
  }

  /** Child names, or undefined when the node does not exist. */
  async getChildren(path: string, watcher?: Watcher, signal?: AbortSignal): Promise<string[] | undefined> {
    const client = await this.ready(signal);
    const children = await this.call<string[]>(path, signal, (cb) =>
      watcher ? client.getChildren(path, watcher, (e, c) => cb(e, c)) : client.getChildren(path, (e, c) => cb(e, c)),
    );
    return children === NO_NODE ? undefined : children;
  }

  /** Whether the node exists: one small round trip (a liveness check of the session). */
  async exists(path: string, signal?: AbortSignal): Promise<boolean> {
    const client = await this.ready(signal);
    const stat = await this.call<unknown>(path, signal, (cb) => client.exists(path, (e, s) => cb(e, s)));
    return stat !== NO_NODE && stat !== null;
  }

  /** Data (undefined when empty), or null when the node does not exist. */
  async getData(path: string, watcher?: Watcher, signal?: AbortSignal): Promise<Buffer | undefined | null> {
    const client = await this.ready(signal);
    const data = await this.call<Buffer | undefined>(path, signal, (cb) =>
      watcher
        ? client.getData(path, watcher, (e, d) => cb(e, d ?? undefined))
        : client.getData(path, (e, d) => cb(e, d ?? undefined)),
    );
    return data === NO_NODE ? null : data;
  }

  private call<T>(
    path: string,
    signal: AbortSignal | undefined,
    run: (cb: (e: Error | null, value: T) => void) => void,
  ): Promise<T | typeof NO_NODE> {
    return new Promise<T | typeof NO_NODE>((resolve, reject) => {
      let settled = false;
      if (signal?.aborted) return reject(new ZkUnavailableError('aborted', { cause: signal.reason }));
      const client = this.client;
      const sentAt = Date.now();
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      if (client) this.corkForTick(client);
      const timer = setTimeout(
        () =>
          finish(() => {
            this.checkStall(client, sentAt);
            reject(
              new ZkUnavailableError(
                `${path}: no answer within ${this.options.requestTimeout} ms${this.lastProtocolError(sentAt)}`,
              ),
            );
          }),
        this.options.requestTimeout,
      );
      run((e, value) =>
        finish(() => {
          if (client === this.client) this.lastAnswerAt = Date.now();
          if (!e) return resolve(value);
          const code = (e as { getCode?: () => number }).getCode?.();
          if (code === zookeeper().Exception.NO_NODE) return resolve(NO_NODE);
          const name = (e as { getName?: () => string }).getName?.() ?? e.message;
          reject(new ZkUnavailableError(`${path}: ${name}${this.lastProtocolError(sentAt)}`, { cause: e }));
        }),
      );
    });
  }

  /**
   * node-zookeeper-client writes every request to its socket as it is queued: one system call
   * each, which on a walk of 1,000 services (a few thousand requests) cost the bridge more CPU
   * than parsing the answers. Corking the socket until the end of the tick sends the requests
   * issued together (a walk issues the next ones as a batch of answers comes in) in one write.
   */
  private corkForTick(client: Client): void {
    const socket = socketOf(client);
    if (!socket || socket === this.corked || typeof socket.cork !== 'function') return;
    socket.cork();
    this.corked = socket;
    process.nextTick(() => {
      this.corked = undefined;
      socket.uncork();
    });
  }

  /**
   * node-zookeeper-client times the TCP connect but not the handshake after it: once the socket
   * is up it waits for the ConnectResponse forever. ZooKeeper 3.8 leaves exactly such a socket
   * to a client that connects while it is starting (port bound, database not loaded yet: the
   * server turns the client away, and an exception in that close skips closing the socket).
   * Java's client bounds the whole connect, handshake included; so do we: while not connected,
   * a connection whose socket has been open for a third of the session timeout (the client's
   * ping interval) without an answer is dropped, and the client reconnects within the same
   * session, its watches intact. A server that is down refuses the socket: nothing to drop.
   *
   * Reaches into node-zookeeper-client's ConnectionManager (1.1.x); should that shape change,
   * this does nothing and the reconnect watchdog below still renews the session.
   */
  private watchHandshake(client: Client): void {
    clearInterval(this.handshakeTimer);
    const timeoutMs = Math.max(1000, Math.floor(this.options.sessionTimeout / 3));
    let pending: unknown;
    let openSince = 0;
    this.handshakeTimer = setInterval(
      () => {
        if (client !== this.client || this.state === 'connected' || this.state === 'closed')
          return clearInterval(this.handshakeTimer);
        const socket = socketOf(client);
        if (!socket || socket.connecting || socket.destroyed || typeof socket.destroy !== 'function') return;
        const now = Date.now();
        if (socket !== pending) {
          pending = socket;
          openSince = now;
        } else if (now - openSince >= timeoutMs) {
          this.options.logger.warn(
            { handshakeTimeoutMs: timeoutMs },
            'zookeeper did not answer the connection handshake; dropping that connection and reconnecting within the session',
          );
          socket.destroy();
        }
      },
      Math.min(1000, timeoutMs / 4),
    );
    this.handshakeTimer.unref();
  }

  /**
   * node-zookeeper-client sometimes never reconnects after the server restarts (it stays
   * disconnected with the server back up). By the time a session timeout has passed without a
   * connection the server has expired the session anyway: start a new one, and keep doing so
   * every session timeout until one connects.
   */
  private armReconnectWatchdog(client: Client): void {
    clearTimeout(this.reconnectWatchdog);
    this.reconnectWatchdog = setTimeout(() => {
      if (client !== this.client || this.state === 'connected' || this.state === 'closed') return;
      this.options.logger.warn(
        { state: this.state, sessionTimeoutMs: this.options.sessionTimeout },
        'zookeeper not reconnected within the session timeout; starting a new session',
      );
      this.renewSession();
    }, this.options.sessionTimeout);
    this.reconnectWatchdog.unref();
  }

  /**
   * A request timed out. If the client still claims to be connected but nothing at all was
   * answered since the request went out, the connection is stalled: node-zookeeper-client can
   * stay "connected" to a session the server already closed (seen after a session takeover)
   * and queue requests forever. Replace it with a new session; listeners re-arm their watches.
   */
  private checkStall(client: Client | undefined, sentAt: number): void {
    if (!client || client !== this.client || this.state !== 'connected' || this.lastAnswerAt >= sentAt) return;
    this.options.logger.warn(
      { requestTimeoutMs: this.options.requestTimeout },
      'zookeeper connection stalled (connected, but nothing answered); starting a new session',
    );
    this.renewSession();
  }

  /** The session is lost (expired, stalled, never reconnected): listeners hear it, a new one starts. */
  private renewSession(): void {
    this.state = 'expired';
    this.emit({ type: 'expired' });
    void this.start().catch((err: unknown) =>
      this.options.logger.error({ err }, 'cannot start a new zookeeper session'),
    );
  }

  /** Id and password of the current session (diagnostics and session-expiry tests); never logged. */
  sessionIdentity(): { id: Buffer; password: Buffer } | undefined {
    if (!this.client || this.state !== 'connected') return undefined;
    return {
      id: this.client.getSessionId(),
      password: (this.client as unknown as { getSessionPassword(): Buffer }).getSessionPassword(),
    };
  }

  close(): void {
    clearTimeout(this.reconnectWatchdog);
    clearInterval(this.handshakeTimer);
    this.state = 'closed';
    this.client?.close();
    this.client = undefined;
    for (const w of [...this.waiters]) w();
  }

  private servers(): string {
    return this.options.connect;
  }

  /** `; …` naming a protocol error seen since `since` (else in the last session timeout), or ''. */
  private lastProtocolError(since = Date.now() - this.options.sessionTimeout): string {
    const e = this.protocolError;
    return e && e.at >= since ? `; last answer was not ZooKeeper's protocol (${e.message})` : '';
  }

  /** An answer node-zookeeper-client could not parse: logged (once per session timeout), then reads fail. */
  private onProtocolError(client: Client, err: unknown): void {
    if (client !== this.client) return;
    const now = Date.now();
    const message = (err instanceof Error ? err.message : String(err)).slice(0, 200);
    const last = this.protocolError;
    this.protocolError = { message, at: now, loggedAt: last?.loggedAt ?? 0 };
    if (now - this.protocolError.loggedAt < this.options.sessionTimeout) return;
    this.protocolError.loggedAt = now;
    this.options.logger.error(
      { servers: this.servers(), err: message },
      'the server at the zookeeper address answered with something that is not the ZooKeeper protocol; ' +
        'dropping the connection and retrying (is the address right?)',
    );
  }

  private start(): Promise<void> {
    this.starting ??= this.newClient().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async newClient(): Promise<void> {
    const credentials = this.options.credentials ? await this.options.credentials() : undefined;
    if (this.state === 'closed') return;
    this.client?.close();
    const generation = ++this.generation;
    const client = zookeeper().createClient(this.options.connect, {
      sessionTimeout: this.options.sessionTimeout,
      spinDelay: 200,
      retries: 0,
    });
    if (credentials !== undefined) client.addAuthInfo('digest', Buffer.from(credentials));
    guardSocketData(client, (err) => this.onProtocolError(client, err));
    client.on('state', (s: State) => this.onState(client, generation, s));
    this.client = client;
    this.state = 'connecting';
    client.connect();
    this.watchHandshake(client);
    this.armReconnectWatchdog(client);
  }

  private onState(client: Client, generation: number, s: State): void {
    if (client !== this.client || this.state === 'closed') return;
    const log = this.options.logger;
    const State = zookeeper().State;
    if (s === State.SYNC_CONNECTED || s === State.CONNECTED_READ_ONLY) {
      const newSession = this.connectedGeneration !== generation;
      this.connectedGeneration = generation;
      this.state = 'connected';
      this.lastAnswerAt = Date.now();
      clearTimeout(this.reconnectWatchdog);
      clearInterval(this.handshakeTimer);
      log.info({ sessionId: client.getSessionId().toString('hex'), newSession }, 'zookeeper connected');
      this.emit({ type: 'connected', newSession });
    } else if (s === State.DISCONNECTED) {
      this.state = 'disconnected';
      log.warn('zookeeper disconnected; reads fail until it is back');
      this.emit({ type: 'disconnected' });
      this.watchHandshake(client);
      this.armReconnectWatchdog(client);
    } else if (s === State.EXPIRED) {
      log.warn('zookeeper session expired; starting a new session and resyncing');
      this.renewSession();
    } else if (s === State.AUTH_FAILED) {
      this.state = 'auth-failed';
      log.error('zookeeper authentication failed (digest credentials rejected)');
      client.close();
    }
    for (const w of [...this.waiters]) w();
  }

  private emit(e: SessionEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.options.logger.error({ err }, 'zookeeper session listener failed');
      }
    }
  }
}
