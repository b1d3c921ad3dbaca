/**
 * Reads istiod's debug endpoints (`:15014/debug/*`). Loopback callers need nothing; others a
 * Kubernetes JWT with audience `istio-ca` (pilot/pkg/xds/debug.go `allowAuthenticatedOrLocalhost`),
 * and from 1.27.6 / 1.28.4 / 1.29 an identity in istio-system for most handlers: 401 and 403
 * are reported as what they are, never as "host missing".
 */
import { readFile } from 'node:fs/promises';
import * as k8s from '@kubernetes/client-node';
import { HopReadError } from './types.js';

export type TokenSource = (signal: AbortSignal) => Promise<string | undefined>;

export interface IstiodDebugClient {
  readonly baseUrl: string;
  get(path: string, signal: AbortSignal): Promise<string>;
}

export function istiodDebugClient(
  baseUrl: string,
  token?: TokenSource,
  fetchImpl: typeof fetch = fetch,
): IstiodDebugClient {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    baseUrl: base,
    async get(path, signal) {
      const url = `${base}${path}`;
      const bearer = token ? await token(signal) : undefined;
      let res: Response;
      try {
        res = await fetchImpl(url, { signal, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
      } catch (err) {
        throw new HopReadError(`GET ${url}: ${(err as Error).message}`, { cause: err });
      }
      const body = await res.text();
      if (res.status === 401)
        throw new HopReadError(
          `GET ${url}: 401 Unauthorized — istiod wants a bearer token with audience istio-ca (--token-file or --token-request)`,
          { status: 401 },
        );
      if (res.status === 403)
        throw new HopReadError(
          `GET ${url}: 403 Forbidden — the token's identity may not read this handler (istiod restricts identities outside istio-system)`,
          { status: 403 },
        );
      if (res.status !== 200)
        throw new HopReadError(`GET ${url}: HTTP ${res.status} ${body.slice(0, 200).trim()}`, { status: res.status });
      return body;
    },
  };
}

/** A token read from a file on every use (projected tokens rotate). */
export function tokenFromFile(path: string): TokenSource {
  return async () => (await readFile(path, 'utf8')).trim();
}

/**
 * A token from the TokenRequest API for `namespace/serviceaccount`, audience istio-ca, renewed
 * when less than a minute of its life is left.
 */
export function tokenFromRequest(
  kc: k8s.KubeConfig,
  namespace: string,
  serviceAccount: string,
  now: () => number = Date.now,
): TokenSource {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let cached: { token: string; expires: number } | undefined;
  return async () => {
    if (cached && cached.expires - now() > 60_000) return cached.token;
    try {
      const res = await core.createNamespacedServiceAccountToken({
        name: serviceAccount,
        namespace,
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { audiences: ['istio-ca'], expirationSeconds: 600 },
        },
      });
      const token = res.status?.token;
      if (!token) throw new Error('TokenRequest returned no token');
      const exp = res.status?.expirationTimestamp
        ? new Date(res.status.expirationTimestamp).getTime()
        : now() + 600_000;
      cached = { token, expires: exp };
      return token;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw new HopReadError(
        `TokenRequest for ${namespace}/${serviceAccount}: ${(err as Error).message.split('\n')[0]}`,
        {
          cause: err,
          ...(typeof code === 'number' ? { status: code } : {}),
        },
      );
    }
  };
}
