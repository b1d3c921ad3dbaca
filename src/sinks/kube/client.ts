import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AgentOptions } from 'node:https';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../../errors.js';

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
