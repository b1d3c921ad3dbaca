import { existsSync } from 'node:fs';
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
      if (!existsSync(options.kubeconfig)) throw new ConfigError('sink.kubeconfig', `kubeconfig ${options.kubeconfig} does not exist`);
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
      throw new ConfigError('sink.context', `context "${options.context}" is not in the kubeconfig (have: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    }
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) throw new ConfigError('sink.kubeconfig', 'the kubeconfig has no current cluster (no KUBECONFIG, ~/.kube/config or in-cluster service account)');
  return kc;
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
