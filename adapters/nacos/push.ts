import { format } from 'node:util';
import type { AdapterContext } from '../../src/sources/adapter.js';
import type { NacosHttp, ResolvedAuth } from './http.js';
import type { NacosServiceRef } from './index.js';
import type { NacosConfig } from './schema.js';

interface SdkClient {
  ready(): Promise<void>;
  subscribe(info: { serviceName: string; groupName: string }, listener: (hosts: unknown[]) => void): void;
  unSubscribe(info: { serviceName: string; groupName: string }, listener: (hosts: unknown[]) => void): void;
  on(event: 'error', fn: (err: unknown) => void): void;
  close(): Promise<void>;
}

export interface PushOptions {
  readonly http: NacosHttp;
  readonly config: NacosConfig;
  readonly context: AdapterContext;
  readonly auth: ResolvedAuth | undefined;
  readonly onChange: (ref: NacosServiceRef) => void;
}

/**
 * Subscriptions through the nacos SDK (one client per namespace): it registers a v1 UDP push
 * receiver with every instance-list query and polls each subscribed service on the server's
 * `cacheMillis`. A change becomes a hint for that service; the re-list stays the truth.
 *
 * The SDK's HTTP goes through our transport (its `httpclient` option): credentials are never
 * handed to the SDK (it would put the password in every query string), the token or signature
 * and the CA file come from NacosHttp, and every SDK log line is redacted and kept at debug.
 * The SDK sends its client IP from the first non-loopback interface: the server's UDP pushes go
 * there, so push needs that address to be reachable from the server (poll works regardless).
 */
export class PushSubscriptions {
  private readonly clients = new Map<string, Promise<SdkClient | undefined>>();
  private readonly subscribed = new Map<string, { ref: NacosServiceRef; listener: (hosts: unknown[]) => void }>();
  private readonly abort = new AbortController();
  private readonly log;
  private closed = false;
  /** The SDK's callbacks say that something changed, not what: a re-read stays needed. */
  readonly carriesInstances = false;

  constructor(private readonly o: PushOptions) {
    this.log = o.context.logger.child({ component: 'nacos-push' });
  }

  /** Subscribes to services seen in the last read, and drops subscriptions of vanished ones. */
  sync(followed: readonly { readonly ref: NacosServiceRef }[]): void {
    if (this.closed) return;
    const want = new Map(followed.map(({ ref }) => [refKey(ref), ref]));
    for (const [key, sub] of this.subscribed) {
      if (want.has(key)) continue;
      this.subscribed.delete(key);
      void this.client(sub.ref.namespaceId).then((c) =>
        c?.unSubscribe({ serviceName: sub.ref.name, groupName: sub.ref.group }, sub.listener),
      );
    }
    this.add(followed);
  }

  /** Subscribes to these services too. */
  add(followed: readonly { readonly ref: NacosServiceRef }[]): void {
    if (this.closed) return;
    for (const { ref } of followed) {
      const key = refKey(ref);
      if (this.subscribed.has(key)) continue;
      let first = true;
      const listener = (): void => {
        // The SDK calls back once with the initial list: not a change.
        if (first) {
          first = false;
          return;
        }
        this.log.debug(
          { namespace: ref.namespaceId, group: ref.group, service: ref.name },
          'nacos push/poll: instances changed',
        );
        this.o.onChange(ref);
      };
      this.subscribed.set(key, { ref, listener });
      // A throw of the SDK here would be an unhandled rejection, which ends the process.
      this.client(ref.namespaceId)
        .then((c) => c?.subscribe({ serviceName: ref.name, groupName: ref.group }, listener))
        .catch((err: unknown) =>
          this.log.warn(
            { namespace: ref.namespaceId, group: ref.group, service: ref.name, err: this.o.http.redact(String(err)) },
            'nacos SDK subscribe failed; relying on the periodic re-list',
          ),
        );
    }
  }

  /** Never: the SDK's callback is a hint to read again. */
  isLive(): boolean {
    return false;
  }

  isPending(): boolean {
    return false;
  }

  /** Nacos 1.x has no fuzzy watch: the names poll finds new services. */
  fuzzyLive(): boolean {
    return false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    const clients = await Promise.all(this.clients.values());
    await Promise.allSettled(clients.map((c) => c?.close()));
  }

  private client(namespaceId: string): Promise<SdkClient | undefined> {
    let c = this.clients.get(namespaceId);
    if (!c) {
      c = this.createClient(namespaceId).catch((err: unknown) => {
        this.log.warn(
          { namespace: namespaceId, err: this.o.http.redact(String(err)) },
          'nacos push client failed to start; relying on the periodic re-list',
        );
        return undefined;
      });
      this.clients.set(namespaceId, c);
    }
    return c;
  }

  private async createClient(namespaceId: string): Promise<SdkClient> {
    const http = this.o.http;
    const bases = http.bases.map((b) => new URL(b));
    const redact = (args: unknown[]): string => http.redact(format(...args));
    const logger = {
      debug: (...a: unknown[]) => this.log.debug(redact(a)),
      info: (...a: unknown[]) => this.log.debug(redact(a)),
      warn: (...a: unknown[]) => this.log.debug(redact(a)),
      error: (...a: unknown[]) => this.log.debug(redact(a)),
      log: (...a: unknown[]) => this.log.debug(redact(a)),
    };
    const signal = this.abort.signal;
    const httpclient = {
      async request(
        url: string,
        opts: { method?: string; data?: Record<string, unknown> },
      ): Promise<{ status: number; data: string }> {
        const u = new URL(url);
        const base = bases.find((b) => b.host === u.host) ?? bases[0]!;
        const baseString = `${base.protocol}//${base.host}${base.pathname}`;
        const apiPath = u.pathname.replace(/^\/nacos/, '');
        const params: Record<string, string> = {};
        for (const [k, v] of Object.entries(opts.data ?? {}))
          if (v !== undefined && v !== null && k !== 'username' && k !== 'password') params[k] = String(v);
        const method = (opts.method ?? 'GET').toUpperCase() === 'POST' ? 'POST' : 'GET';
        const res = await http.requestAt(baseString, method, apiPath, params, signal, params.serviceName);
        return { status: res.status, data: res.body };
      },
    };
    // The SDK (≈ 20 MiB) loads only when push is used.
    const nacos = (await import('nacos')).default;
    const Client = (nacos as unknown as { NacosNamingClient: new (o: Record<string, unknown>) => SdkClient })
      .NacosNamingClient;
    const client = new Client({
      logger,
      serverList: bases.map((b) => b.host),
      namespace: namespaceId,
      ssl: bases[0]?.protocol === 'https:',
      httpclient,
    });
    client.on('error', (err) =>
      this.log.debug({ namespace: namespaceId, err: http.redact(String(err)) }, 'nacos SDK error'),
    );
    // The host reactor and its UDP receiver emit errors of their own.
    const inner = client as unknown as {
      _hostReactor?: { on?: SdkClient['on']; _pushReceiver?: { on?: SdkClient['on'] } };
    };
    inner._hostReactor?.on?.('error', (err) =>
      this.log.debug({ namespace: namespaceId, err: http.redact(String(err)) }, 'nacos SDK error'),
    );
    inner._hostReactor?._pushReceiver?.on?.('error', (err) =>
      this.log.debug({ namespace: namespaceId, err: http.redact(String(err)) }, 'nacos push receiver error'),
    );
    await client.ready();
    if (this.closed) await client.close();
    return client;
  }
}

function refKey(r: NacosServiceRef): string {
  return `${r.namespaceId}\u0000${r.group}\u0000${r.name}`;
}
