/**
 * Checks at start what every run needs: the API server answers, accepts the credentials, serves
 * ServiceEntries, and lets the bridge list and apply them in each target namespace. Throws a
 * SinkError whose one-line message names the cause; logs a warning for a missing permission a run
 * can do without (watch, delete).
 */
import { AuthorizationV1Api } from '@kubernetes/client-node';
import { SinkError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { withRetry, type ServiceEntryApi } from './api.js';
import { kubeErrorMessage, statusOf } from './client.js';
import type { KubeSinkOptions } from './options.js';

export async function preflight(
  api: ServiceEntryApi,
  options: KubeSinkOptions,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const server = options.kc.getCurrentCluster()?.server ?? 'the API server';
  let version: string;
  try {
    // A transport failure (the server restarting) is tried again; an answer is final.
    const transport = (err: unknown) => err instanceof SinkError && err.status === undefined && !!err.cause;
    version = await withRetry(() => api.apiVersion(), signal, 3, transport);
  } catch (err) {
    if (err instanceof SinkError && err.cause === undefined) throw err;
    throw startupError(server, 'discovering the API groups', err);
  }
  const [group, ver] = version.split('/') as [string, string];
  const authz = options.kc.makeApiClient(AuthorizationV1Api);
  for (const namespace of [...new Set(options.namespaces)].sort()) {
    try {
      await withRetry(
        () =>
          api.custom.listNamespacedCustomObject({ group, version: ver, namespace, plural: 'serviceentries', limit: 1 }),
        signal,
        3,
      );
    } catch (err) {
      if (statusOf(err) === 404)
        throw new SinkError(
          `kube-apiserver ${server} does not serve ${version} serviceentries (404): are the Istio CRDs installed?`,
          { cause: err, status: 404 },
        );
      throw startupError(server, `listing ${version} serviceentries in namespace ${namespace}`, err);
    }
    const denied: string[] = [];
    for (const verb of ['patch', 'delete', 'watch']) {
      const review = await authz
        .createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { group, resource: 'serviceentries', verb, namespace } },
          },
        })
        .catch((err: unknown) => {
          log.warn({ verb, namespace, err: kubeErrorMessage(err) }, "cannot review the bridge's permissions");
          return undefined;
        });
      if (review?.status?.allowed === false) denied.push(verb);
    }
    if (denied.includes('patch'))
      throw new SinkError(
        `kube-apiserver ${server} denies the bridge's credentials patch (server-side apply) of ` +
          `serviceentries.${group} in namespace ${namespace} (RBAC); also denied: ` +
          `${denied.filter((v) => v !== 'patch').join(', ') || 'nothing else'}; grant them in the bridge's Role`,
        { status: 403 },
      );
    if (denied.length > 0)
      log.warn(
        { namespace, denied },
        `RBAC denies ${denied.join(' and ')} of serviceentries: ` +
          (denied.includes('delete') ? 'entries whose service is gone stay; ' : '') +
          (denied.includes('watch') ? 'hand edits are repaired at the next resync only' : ''),
      );
  }
}

/** One line naming why the API server cannot be used (unreachable, credentials, RBAC, other). */
function startupError(server: string, doing: string, err: unknown): SinkError {
  const cause = err instanceof SinkError && err.cause !== undefined ? err.cause : err;
  const status = statusOf(cause);
  const message = kubeErrorMessage(cause);
  const line =
    status === undefined
      ? `kube-apiserver ${server} is unreachable (${doing}): ${message}`
      : status === 401
        ? `kube-apiserver ${server} rejected the kubeconfig's credentials (401 Unauthorized, ${doing})`
        : status === 403
          ? `kube-apiserver ${server} denies ${doing} (403 Forbidden, RBAC): ${message}`
          : `kube-apiserver ${server} failed ${doing}: ${message}`;
  return new SinkError(line, { cause, ...(status !== undefined ? { status } : {}) });
}
