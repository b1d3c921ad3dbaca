import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AgentOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../../errors.js';

export interface KubeConfigOptions {
  /** `--kubeconfig`; else KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
}

/** Kubeconfig resolution in kubectl's order. */
export function loadKubeConfig(options: KubeConfigOptions): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) {
      if (!existsSync(options.kubeconfig))
        throw new ConfigError('sink.kubeconfig', `kubeconfig ${options.kubeconfig} does not exist`);
      kc.loadFromFile(options.kubeconfig);
    } else {
      kc.loadFromDefault();
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

/** Worth retrying: conflicts, throttling, server errors and transport failures (no status). */
export function isRetryable(err: unknown): boolean {
  const status = statusOf(err);
  if (status === undefined) return !(err instanceof ConfigError) && (err as Error)?.name !== 'AbortError';
  return status === 409 || status === 429 || status >= 500;
}
