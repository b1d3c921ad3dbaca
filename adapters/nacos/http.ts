import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { BridgeError, SourceUnavailableError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import { redactText } from '../../src/redact.js';
import { linkedSignal } from '../../src/util/abort.js';
import { loginSchema } from './schema.js';

/** Credentials after the secret references were read. Never logged, never in a message. */
export type ResolvedAuth =
  | { readonly kind: 'password'; readonly username: string; readonly password: string }
  | { readonly kind: 'signature'; readonly accessKey: string; readonly secretKey: string; readonly appName?: string };

export interface NacosHttpOptions {
  readonly source: string;
  readonly servers: readonly string[];
  readonly auth?: ResolvedAuth;
  readonly ca?: Buffer;
  readonly insecureSkipVerify?: boolean;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

export interface NacosResponse {
  readonly status: number;
  readonly body: string;
  /** Base URL (`http://host:port/nacos`) of the server that answered. */
  readonly server: string;
}

/** Login answered, but refused the credentials: no other server will accept them either. */
export class NacosAuthError extends SourceUnavailableError {}

/** `http://h:8848` → `http://h:8848/nacos`; an explicit context path is kept. */
export function serverBase(url: string): string {
  const u = new URL(url);
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.protocol}//${u.host}${path === '' ? '/nacos' : path}`;
}

interface Token {
  readonly value: string;
  /** A login is due from then on (see refreshDelayMs). */
  readonly refreshAt: number;
  /** The server refuses it from then on (its lifetime as the login answered). */
  readonly expiresAt: number;
}

/**
 * How long a token of `ttlMs` is used before logging in again: 90% of its lifetime, at least 5 s
 * before it ends, but never less than half of it (a 4 s token is renewed every 2 s, not at
 * every request).
 */
export function refreshDelayMs(ttlMs: number): number {
  return Math.max(0, Math.min(ttlMs * 0.9, Math.max(ttlMs / 2, ttlMs - 5_000)));
}

const maxBodyBytes = 64 * 1024 * 1024;

/**
 * The v1 OpenAPI over HTTP(S): failover across the configured servers (sticky to the last one
 * that answered), token login and refresh, SDK-style request signing, per-request timeouts.
 * node:http(s) rather than global fetch because fetch on Node 20 cannot take a CA file.
 */
export class NacosHttp {
  readonly bases: readonly string[];
  private current = 0;
  private readonly tokens = new Map<string, Token>();
  /** The login under way per server: concurrent requests share it (one login at a time). */
  private readonly logins = new Map<string, Promise<string>>();
  /** Which login API each server answered (v3 first, else v1). */
  private readonly loginPaths = new Map<string, 'v3' | 'v1'>();
  private readonly secrets: readonly string[];
  private readonly now: () => number;
  private readonly agents: { http: http.Agent; https: https.Agent };

  constructor(private readonly options: NacosHttpOptions) {
    this.bases = options.servers.map(serverBase);
    this.now = options.now ?? Date.now;
    const a = options.auth;
    this.secrets = (
      a?.kind === 'password' ? [a.password] : a?.kind === 'signature' ? [a.secretKey, a.accessKey] : []
    ).filter((s) => s.length >= 3);
    this.agents = {
      http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
      https: new https.Agent({
        keepAlive: true,
        maxSockets: 16,
        ...(options.ca ? { ca: options.ca } : {}),
        rejectUnauthorized: !options.insecureSkipVerify,
      }),
    };
  }

  /**
   * Removes every secret from a text that may reach a log or an error: the configured secret
   * values (plain and URL-encoded), and the value of any secret-like parameter a server echoes
   * back (`accessToken=…` of a request URL, `password=…` of the login body, `"accessToken":"…"`).
   */
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('***');
    for (const s of this.secrets) out = out.split(encodeURIComponent(s)).join('***');
    for (const s of this.secrets) out = out.split(new URLSearchParams({ s }).toString().slice(2)).join('***');
    for (const t of this.tokens.values()) if (t.value.length >= 3) out = out.split(t.value).join('***');
    return redactText(out);
  }

  /**
   * GET (or POST) one API path, e.g. `/v1/ns/service/list`. Network errors and 5xx move on to
   * the next server; any other status is returned. Throws SourceUnavailableError when no
   * server answered, NacosAuthError when login was refused.
   */
  async request(
    method: 'GET' | 'POST',
    apiPath: string,
    params: Record<string, string>,
    signal: AbortSignal,
    signedName?: string,
  ): Promise<NacosResponse> {
    const failures: string[] = [];
    for (let n = 0; n < this.bases.length; n++) {
      const index = (this.current + n) % this.bases.length;
      const base = this.bases[index]!;
      try {
        const res = await this.requestAt(base, method, apiPath, params, signal, signedName);
        if (res.status >= 500) {
          failures.push(`${base}: HTTP ${res.status}${snippet(this.redact(res.body))}`);
          continue;
        }
        this.current = index;
        return res;
      } catch (err) {
        if (err instanceof BridgeError) throw err;
        if (signal.aborted) throw err;
        failures.push(`${base}: ${this.redact(describeNetworkError(err))}`);
      }
    }
    throw new SourceUnavailableError(
      this.options.source,
      `no Nacos server answered ${method} ${apiPath}: ${failures.join('; ')}`,
    );
  }

  /** One attempt at one server (`base` as in `bases`), with login and one re-login on 403. */
  async requestAt(
    base: string,
    method: 'GET' | 'POST',
    apiPath: string,
    params: Record<string, string>,
    signal: AbortSignal,
    signedName?: string,
  ): Promise<NacosResponse> {
    let res = await this.attempt(base, method, apiPath, params, signal, signedName);
    if ((res.status === 401 || res.status === 403) && this.options.auth?.kind === 'password' && this.tokens.has(base)) {
      // The token may have expired early (server restarted with a new key): log in again once.
      this.tokens.delete(base);
      res = await this.attempt(base, method, apiPath, params, signal, signedName);
    }
    return res;
  }

  /**
   * Security headers of a gRPC request to the server at `base` (Payload metadata headers): the
   * login token, or the signature of `signedName`. Never logged.
   */
  async grpcHeaders(base: string, signal: AbortSignal, signedName?: string): Promise<Record<string, string>> {
    const auth = this.options.auth;
    if (auth?.kind === 'password') return { accessToken: await this.token(base, auth, signal) };
    if (auth?.kind === 'signature') return signatureParams(auth, signedName, this.now());
    return {};
  }

  /** Drops the cached token of `base` (refused by the server): the next request logs in again. */
  forgetToken(base: string): void {
    this.tokens.delete(base);
  }

  async close(): Promise<void> {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private async attempt(
    base: string,
    method: 'GET' | 'POST',
    apiPath: string,
    params: Record<string, string>,
    signal: AbortSignal,
    signedName: string | undefined,
  ): Promise<NacosResponse> {
    const query = new URLSearchParams(params);
    const auth = this.options.auth;
    if (auth?.kind === 'password') query.set('accessToken', await this.token(base, auth, signal));
    if (auth?.kind === 'signature')
      for (const [k, v] of Object.entries(signatureParams(auth, signedName, this.now()))) query.set(k, v);
    const url = `${base}${apiPath}?${query.toString()}`;
    const res = await this.send(url, method, undefined, signal);
    return { ...res, server: base };
  }

  /**
   * The token of `base`: the cached one until its refresh time, else from a login. Concurrent
   * callers share one login per server (at a refresh, every parallel read used to log in on its
   * own). A refresh that fails while the cached token is still within its lifetime keeps using
   * it (a refused token is dropped before, see requestAt); the next request tries again.
   */
  private async token(
    base: string,
    auth: Extract<ResolvedAuth, { kind: 'password' }>,
    signal: AbortSignal,
  ): Promise<string> {
    const cached = this.tokens.get(base);
    if (cached && this.now() < cached.refreshAt) return cached.value;
    let login = this.logins.get(base);
    if (!login) {
      // Not tied to the first caller's signal (the others share it); bounded by the request timeout.
      login = this.login(base, auth, new AbortController().signal);
      this.logins.set(base, login);
      const clear = () => {
        if (this.logins.get(base) === login) this.logins.delete(base);
      };
      login.then(clear, clear);
    }
    try {
      return await raceAbort(login, signal);
    } catch (err) {
      const still = this.tokens.get(base);
      if (!signal.aborted && !(err instanceof NacosAuthError) && still && this.now() < still.expiresAt)
        return still.value;
      throw err;
    }
  }

  private async login(
    base: string,
    auth: Extract<ResolvedAuth, { kind: 'password' }>,
    signal: AbortSignal,
  ): Promise<string> {
    const body = new URLSearchParams({ username: auth.username, password: auth.password }).toString();
    // Nacos 3 logs in at /v3/auth/user/login (its v1 login is gone where the v1 client API is
    // off); 1.x, 2.x and r-nacos have only /v1/auth/login. Remembered per server.
    let res: { status: number; body: string } | undefined;
    if (this.loginPaths.get(base) !== 'v1') {
      res = await this.send(`${base}/v3/auth/user/login`, 'POST', body, signal);
      // A server without it answers 404/405/410/501, or (a web console's catch-all) a page.
      if ([404, 405, 410, 501].includes(res.status) || (res.status === 200 && !isLoginAnswer(res.body)))
        res = undefined;
      else this.loginPaths.set(base, 'v3');
    }
    if (res === undefined) {
      res = await this.send(`${base}/v1/auth/login`, 'POST', body, signal);
      if (res.status !== 404 && res.status !== 410) this.loginPaths.set(base, 'v1');
    }
    if (res.status >= 500) {
      // Not conclusive: Java Nacos 3.1 answers a wrong password with a bare HTTP 500 as well.
      throw new Error(
        `login to Nacos server ${base} as user "${auth.username}" failed with HTTP ${res.status}${snippet(this.redact(res.body))} (a server fault, or wrong credentials: Nacos 3.x answers those with 500 too)`,
      );
    }
    let parsed: ReturnType<typeof loginSchema.safeParse> | undefined;
    if (res.status === 200) {
      try {
        parsed = loginSchema.safeParse(JSON.parse(res.body));
      } catch {
        parsed = undefined;
      }
    }
    if (!parsed?.success) {
      throw new NacosAuthError(
        this.options.source,
        `login to Nacos server ${base} as user "${auth.username}" was refused (HTTP ${res.status}${snippet(this.redact(res.body))}); check the username and the password reference`,
      );
    }
    const ttlMs = (parsed.data.tokenTtl ?? 18_000) * 1000;
    const now = this.now();
    this.tokens.set(base, {
      value: parsed.data.accessToken,
      refreshAt: now + refreshDelayMs(ttlMs),
      expiresAt: now + ttlMs,
    });
    this.options.logger.debug({ server: base, ttlSeconds: ttlMs / 1000 }, 'nacos login succeeded');
    return parsed.data.accessToken;
  }

  private send(
    url: string,
    method: string,
    body: string | undefined,
    signal: AbortSignal,
  ): Promise<{ status: number; body: string }> {
    const u = new URL(url);
    const secure = u.protocol === 'https:';
    const lib = secure ? https : http;
    // Not AbortSignal.any: on Node 20 each call would leave an entry in the watch's signal.
    const scoped = linkedSignal(signal, this.options.timeoutMs);
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = lib.request(
        u,
        {
          method,
          agent: secure ? this.agents.https : this.agents.http,
          signal: scoped.signal,
          headers: {
            accept: 'application/json',
            'user-agent': 'registry-bridge',
            ...(body !== undefined
              ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > maxBodyBytes) req.destroy(new Error(`response larger than ${maxBodyBytes} bytes`));
            else chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', (err) =>
        reject(scoped.timedOut ? new Error(`timed out after ${this.options.timeoutMs} ms`) : err),
      );
      if (body !== undefined) req.write(body);
      req.end();
    }).finally(() => scoped.dispose());
  }
}

/**
 * The v1 client's signature (as the Java and Node SDKs do it): `data` is `<ms>` or
 * `<ms>@@<serviceName>`, `signature` = base64(HMAC-SHA1(secretKey, data)), `ak`, `app`.
 */
export function signatureParams(
  auth: Extract<ResolvedAuth, { kind: 'signature' }>,
  serviceName: string | undefined,
  nowMs: number,
): Record<string, string> {
  const data = serviceName ? `${nowMs}@@${serviceName}` : String(nowMs);
  return {
    ak: auth.accessKey,
    data,
    signature: createHmac('sha1', auth.secretKey).update(data).digest('base64'),
    ...(auth.appName !== undefined ? { app: auth.appName } : {}),
  };
}

/** `p`, or the abort of `signal` first (`p` goes on for its other waiters). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e as Error)),
    );
  });
}

function isLoginAnswer(body: string): boolean {
  try {
    return loginSchema.safeParse(JSON.parse(body)).success;
  } catch {
    return false;
  }
}

function snippet(body: string): string {
  const t = body.replace(/\s+/g, ' ').trim();
  if (t === '') return '';
  return `: ${t.length > 160 ? `${t.slice(0, 160)}…` : t}`;
}

function describeNetworkError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const cause = (err as { cause?: unknown }).cause;
    const inner = cause instanceof Error ? ` (${cause.message})` : '';
    return `${code ? `${code} ` : ''}${err.message}${inner}`;
  }
  return String(err);
}
