import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AgentOptions } from 'node:https';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  ResponseContext,
  ServerConfiguration,
  createConfiguration,
  wrapHttpLibrary,
  Observable,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
} from '@kubernetes/client-node';
import { ConfigError } from '../../errors.js';
import { onAbort } from '../../util/abort.js';

export interface KubeConfigOptions {
  /** `--kubeconfig`; else KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  /** KUBECONFIG and HOME are read from here (default: the process's environment). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where a pod's service account token is mounted (tests point it elsewhere). */
  readonly serviceAccountTokenPath?: string;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Kubeconfig resolution in kubectl's order: `--kubeconfig`, KUBECONFIG (files merged, the first
 * wins), ~/.kube/config, the in-cluster service account. Finding none is a configuration error:
 * @kubernetes/client-node's loadFromDefault() would silently fall back to http://localhost:8080,
 * and the first API call would then fail with an unrelated message.
 */
export function loadKubeConfig(options: KubeConfigOptions): KubeConfig {
  const kc = new KubeConfig();
  const env = options.env ?? process.env;
  try {
    if (options.kubeconfig) {
      if (!existsSync(options.kubeconfig))
        throw new ConfigError('sink.kubeconfig', `kubeconfig ${options.kubeconfig} does not exist`);
      kc.loadFromFile(options.kubeconfig);
    } else if (env.KUBECONFIG) {
      const files = env.KUBECONFIG.split(delimiter).filter((f) => f.length > 0);
      const present = files.filter((f) => existsSync(f));
      if (present.length === 0)
        throw new ConfigError('sink.kubeconfig', `no file of KUBECONFIG=${env.KUBECONFIG} exists`);
      kc.loadFromFile(present[0]!);
      for (const file of present.slice(1)) {
        const more = new KubeConfig();
        more.loadFromFile(file);
        kc.mergeConfig(more);
      }
    } else {
      const home = env.HOME || homedir();
      const userConfig = join(home, '.kube', 'config');
      const tokenPath = options.serviceAccountTokenPath ?? SERVICE_ACCOUNT_TOKEN;
      if (existsSync(userConfig)) kc.loadFromFile(userConfig);
      else if (existsSync(tokenPath)) kc.loadFromCluster();
      else
        throw new ConfigError(
          'sink.kubeconfig',
          `no kubeconfig found: no --kubeconfig or sink.kubeconfig, KUBECONFIG is not set, ${userConfig} ` +
            `does not exist, and there is no in-cluster service account (${tokenPath})`,
        );
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('sink.kubeconfig', `cannot load kubeconfig: ${(err as Error).message}`);
  }
  if (options.context) {
    if (!kc.getContexts().some((c) => c.name === options.context)) {
      throw new ConfigError(
        'sink.context',
        `context "${options.context}" is not in the kubeconfig (have: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || 'none'
        })`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster())
    throw new ConfigError(
      'sink.kubeconfig',
      'the kubeconfig has no current cluster (no KUBECONFIG, ~/.kube/config or in-cluster service account)',
    );
  const cluster = kc.getCurrentCluster()!;
  if (cluster.server.startsWith('http://') && !cluster.skipTLSVerify)
    throw new ConfigError(
      'sink.kubeconfig',
      `cluster "${cluster.name}" has the plain-HTTP server ${cluster.server}: the Kubernetes client refuses ` +
        'plain HTTP unless the cluster sets insecure-skip-tls-verify: true',
    );
  return reuseConnections(kc);
}

type AgentLike = { destroy?: () => void };
type AgentFactory = (this: KubeConfig, cluster: unknown, options: AgentOptions) => AgentLike;

/**
 * One keep-alive agent per cluster and credentials, instead of @kubernetes/client-node 1.x's
 * new `https.Agent` for every request (kubernetes-client/javascript#2893, fixed upstream only in
 * 2.x, which needs Node 22): without it every API call opens a new TLS connection, a cold sync
 * of 10,000 objects does 10,000 handshakes on both sides, and the allocator keeps the native
 * memory they churned. Credentials that change (a rotated client certificate) get a new agent;
 * the one before is closed a few minutes later, after its requests are done.
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent?: AgentFactory };
  const original = target.createAgent;
  if (typeof original !== 'function') return kc; // a client without the hook: nothing to fix
  const agents = new Map<string, AgentLike>();
  target.createAgent = function (cluster, options) {
    const key = agentKey(cluster, options);
    let agent = agents.get(key);
    if (agent === undefined) {
      agent = original.call(this, cluster, { ...options, keepAlive: true });
      agents.set(key, agent);
      for (const [k, old] of agents) {
        if (agents.size <= 4) break;
        agents.delete(k);
        setTimeout(() => old.destroy?.(), 5 * 60_000).unref();
      }
    }
    return agent;
  };
  return kc;
}

/** A digest (never the key material itself) of what makes two agents interchangeable. */
function agentKey(cluster: unknown, o: AgentOptions): string {
  const c = (cluster ?? {}) as { server?: string; proxyUrl?: string; skipTLSVerify?: boolean; tlsServerName?: string };
  const text = (v: unknown): unknown =>
    v === undefined
      ? null
      : Buffer.isBuffer(v)
        ? v.toString('base64')
        : Array.isArray(v)
          ? v.map(text)
          : typeof v === 'object'
            ? JSON.stringify(v)
            : String(v);
  const parts = [
    c.server,
    c.proxyUrl,
    c.skipTLSVerify,
    c.tlsServerName,
    o.ca,
    o.cert,
    o.key,
    o.pfx,
    o.passphrase,
    o.rejectUnauthorized,
    o.servername,
  ].map(text);
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** A kube request that got no complete answer within its deadline (a failed request: retried). */
export class KubeRequestTimeoutError extends Error {
  override readonly name = 'KubeRequestTimeoutError';
}

/**
 * A kube request aborted because the process stops (the shutdown grace passed, or the lease was
 * lost): not a failure of the API server, and never retried (named like a DOM AbortError).
 */
export class KubeRequestAbortedError extends Error {
  override readonly name = 'AbortError';
}

export interface KubeRequests {
  /** The deadline of one request (connection, answer and body), in milliseconds. */
  readonly timeoutMs: number;
  /** True once abortAll ran. */
  readonly aborted: boolean;
  /**
   * Aborts every request in flight of the clients made from this KubeConfig, and makes every
   * later one fail at once, with a KubeRequestAbortedError saying `why`.
   */
  abortAll(why: string): void;
}

type ApiConstructor = new (configuration: ReturnType<typeof createConfiguration>) => unknown;

/**
 * Every API client made from `kc` (makeApiClient, KubernetesObjectApi.makeApiClient) sends its
 * requests through @kubernetes/client-node's own HTTP library (node-fetch), wrapped so that each
 * request carries an AbortSignal (the library's RequestContext.setSignal): it aborts when
 * `timeoutMs` passes without a complete answer (KubeRequestTimeoutError, retried like any
 * transport failure), when abortAll runs (KubeRequestAbortedError), or when the signal a caller
 * set on the request (withSignal) aborts. Without it a request to an API server whose storage
 * is gone waits for the server's own timeout (60 s), and a process told to stop waits with it.
 * Watches (the library's Watch) do their own fetch with their own signal and are not affected.
 */
export function boundRequests(kc: KubeConfig, timeoutMs: number): KubeRequests {
  const stop = new AbortController();
  const inner = new IsomorphicFetchHttpLibrary();
  const httpApi = wrapHttpLibrary({ send: (ctx) => sendBounded(inner, ctx, stop.signal, timeoutMs) });
  // KubeConfig.makeApiClient with the httpApi the generated configuration accepts (the rest as
  // in @kubernetes/client-node 1.x: the cluster's server, the KubeConfig as authentication).
  (kc as unknown as { makeApiClient: (type: ApiConstructor) => unknown }).makeApiClient = function (
    this: KubeConfig,
    type: ApiConstructor,
  ) {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    return new type(
      createConfiguration({
        baseServer: new ServerConfiguration(cluster.server, {}),
        authMethods: { default: this },
        httpApi,
      }),
    );
  };
  return {
    timeoutMs,
    get aborted() {
      return stop.signal.aborted;
    },
    abortAll(why) {
      if (!stop.signal.aborted) stop.abort(new KubeRequestAbortedError(why));
    },
  };
}

async function sendBounded(
  inner: IsomorphicFetchHttpLibrary,
  ctx: RequestContext,
  stop: AbortSignal,
  timeoutMs: number,
): Promise<ResponseContext> {
  const controller = new AbortController();
  const abort = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const what = `${ctx.getHttpMethod()} ${new URL(ctx.getUrl()).pathname}`;
  const unlinks = [onAbort(stop, () => abort(stop.reason))];
  const caller = ctx.getSignal();
  if (caller) unlinks.push(onAbort(caller, () => abort(caller.reason)));
  const timer = setTimeout(
    () => abort(new KubeRequestTimeoutError(`no answer from kube-apiserver within ${timeoutMs} ms (${what})`)),
    timeoutMs,
  );
  let settled = false;
  const done = () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    for (const unlink of unlinks) unlink();
  };
  // node-fetch rejects an aborted request with its own AbortError: the reason says why.
  const rethrow = (err: unknown): never => {
    throw controller.signal.aborted ? controller.signal.reason : err;
  };
  ctx.setSignal(controller.signal);
  let response: ResponseContext;
  try {
    response = await inner.send(ctx).toPromise();
  } catch (err) {
    done();
    return rethrow(err);
  }
  // The deadline covers the body too: it is read after the status and headers arrived.
  const body = response.body;
  return new ResponseContext(response.httpStatusCode, response.headers, {
    text: () => body.text().catch(rethrow).finally(done),
    binary: () => body.binary().catch(rethrow).finally(done),
  });
}

/**
 * Per-call options of a generated API method (`api.readNamespacedLease(param, withSignal(s))`)
 * that put `signal` on its request with the library's per-call middleware; the request is
 * aborted when the signal aborts (node-fetch honours it; with boundRequests, so does the
 * deadline). Not for KubernetesObjectApi, whose requests ignore per-call middleware.
 */
export function withSignal(signal: AbortSignal): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      ctx.setSignal(signal);
      return new Observable(Promise.resolve(ctx));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/** HTTP status of an error thrown by @kubernetes/client-node, when there is one. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The `message` of a Kubernetes Status body, else the error message; never a header or token. */
export function kubeErrorMessage(err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      // not JSON
    }
  } else if (body && typeof body === 'object' && 'message' in body && typeof body.message === 'string') {
    return body.message;
  }
  const status = statusOf(err);
  const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  return status !== undefined ? `HTTP ${status}: ${message.slice(0, 300)}` : message.slice(0, 300);
}

/**
 * How long the API server asked the client to wait before it tries again (`Retry-After` of a 429
 * or 5xx answer: Priority and Fairness, a server shutting down), in milliseconds, capped at
 * `capMs`; undefined when the answer says nothing usable. Seconds or an HTTP date (RFC 9110).
 */
export function retryAfterMs(err: unknown, now: number, capMs = 30_000): number | undefined {
  const status = statusOf(err);
  if (status === undefined || (status !== 429 && status < 500)) return undefined;
  const headers = (err as { headers?: unknown } | null)?.headers;
  if (!headers || typeof headers !== 'object') return undefined;
  const entry = Object.entries(headers).find(([k]) => k.toLowerCase() === 'retry-after');
  const value = typeof entry?.[1] === 'string' ? entry[1].trim() : undefined;
  if (!value) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(capMs, Math.max(0, ms));
}

/** Worth retrying: conflicts, throttling, server errors and transport failures (no status). */
export function isRetryable(err: unknown): boolean {
  const status = statusOf(err);
  if (status === undefined) return !(err instanceof ConfigError) && (err as Error)?.name !== 'AbortError';
  return status === 409 || status === 429 || status >= 500;
}
