/**
 * Writes of a plan: server-side apply with one field manager and only the fields the bridge owns
 * (never status), deletes with a resourceVersion precondition, through a bounded, rate-limited
 * queue with jittered retries. Each answer goes into the informer's cache.
 */
import { PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import type PQueue from 'p-queue';
import type { Change } from '../../plan/plan.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, SOURCE_LABEL } from '../../synth/service-entry.js';
import { mapLimit } from '../../util/concurrency.js';
import type { ApplyOutcome } from '../types.js';
import { describe, withRetry, type ServiceEntryApi, type ServiceEntryResource } from './api.js';
import { isRetryable, KubeRequestAbortedError, kubeErrorMessage, statusOf } from './client.js';
import type { Informer } from './informer.js';
import type { KubeSinkOptions } from './options.js';

export interface Writer {
  readonly api: ServiceEntryApi;
  readonly informer: Informer;
  readonly queue: PQueue;
  readonly options: KubeSinkOptions;
  /** Writes handed to apply and not finished yet (the queue-depth metric). */
  backlog: number;
}

export async function applyChanges(
  w: Writer,
  changes: readonly Change[],
  dryRunOption: boolean,
  signal: AbortSignal,
): Promise<ApplyOutcome[]> {
  const version = await w.api.apiVersion();
  const dryRun = dryRunOption ? 'All' : undefined;
  const retried = (verb: string) => (err: unknown) =>
    w.options.metrics.apiRetries.inc({ verb, code: String(statusOf(err) ?? 'error') });
  const run = (change: Change) =>
    w.queue.add(async (): Promise<ApplyOutcome> => {
      const verb = change.action === 'delete' ? 'delete' : 'patch';
      try {
        let rv: string | undefined;
        let uid: string | undefined;
        if (change.action === 'delete') {
          const deleted = await deleteOwned(w, change, version, dryRun, signal);
          if (!dryRun) w.informer.forget(change.namespace, change.name);
          if (!deleted) return { change, ok: true }; // gone meanwhile: no write was made
        } else if (change.desired) {
          const applied = await withRetry(
            () => applyDesired(w, change, version, dryRun),
            signal,
            w.options.retries,
            // A conflict is an answer about the object, not a transient failure: the next run
            // reads the object again and its plan decides.
            (err) => statusOf(err) !== 409 && isRetryable(err),
            retried('patch'),
          );
          rv = applied.metadata?.resourceVersion;
          uid = dryRun ? undefined : applied.metadata?.uid;
          if (!dryRun) w.informer.inform(change.namespace, applied as ServiceEntryResource, false);
        }
        w.options.metrics.apiWrites.inc({ verb, code: '200' });
        return { change, ok: true, ...(rv ? { resourceVersion: rv } : {}), ...(uid ? { uid } : {}) };
      } catch (err) {
        const status = statusOf(err);
        if (status === 404 && change.action === 'delete') {
          // already gone
          if (!dryRun) w.informer.forget(change.namespace, change.name);
          return { change, ok: true };
        }
        if (err instanceof KubeRequestAbortedError || (signal.aborted && err === signal.reason)) {
          // The process stops: the request was aborted, or not tried again. Whether a request
          // that reached the API server took effect is not known; the next run reads the object.
          w.options.metrics.apiWrites.inc({ verb, code: 'aborted' });
          return {
            change,
            ok: false,
            aborted: true,
            error: `${change.action} of serviceentries ${change.namespace}/${change.name} not completed: ${kubeErrorMessage(err)}`,
          };
        }
        w.options.metrics.apiWrites.inc({ verb, code: String(status ?? 'error') });
        return {
          change,
          ok: false,
          error: changedSincePlanned(change, err) ?? describe(verb, 'serviceentries', change.namespace, err),
          ...(status !== undefined ? { status } : {}),
        };
      } finally {
        w.backlog -= 1;
        w.options.metrics.queueDepth.set(w.backlog);
      }
    }) as Promise<ApplyOutcome>;
  // Fed to the queue a few at a time: a plan of 10,000 writes queued at once would keep
  // 10,000 tasks (closures, promises, abort handlers) alive until the last one ran.
  const writes = changes.filter((c) => c.action === 'create' || c.action === 'update' || c.action === 'delete');
  w.backlog += writes.length;
  w.options.metrics.queueDepth.set(w.backlog);
  return mapLimit(writes, w.options.concurrency * 2, run);
}

/**
 * Server-side apply of a desired object, with a precondition that the object is still what the
 * plan decided on, so that a write never lands on another writer's object:
 * - a create is applied without force: an object of that name that someone else created after
 *   the plan read the namespace (its fields owned by another manager, with other values) makes
 *   the apply fail with 409 Conflict instead of being taken over;
 * - an update carries the uid the plan observed: an object deleted since answers 409 (uid
 *   mismatch), one deleted and created again by someone else answers 422 (uid is immutable).
 * Forced otherwise: fields the bridge sets that another manager changed are taken back.
 */
function applyDesired(w: Writer, change: Change, version: string, dryRun: string | undefined) {
  const object = change.desired!.object as unknown as KubernetesObject;
  const uid = change.action === 'update' ? change.observed?.uid : undefined;
  const body = {
    ...object,
    apiVersion: version,
    ...(uid ? { metadata: { ...object.metadata, uid } } : {}),
  } as KubernetesObject;
  const force = change.action !== 'create';
  return w.api.objects.patch(body, undefined, dryRun, w.options.fieldManager, force, PatchStrategy.ServerSideApply);
}

/** The message of a write refused because the object changed since the plan read it. */
function changedSincePlanned(change: Change, err: unknown): string | undefined {
  const status = statusOf(err);
  const what = `${change.action} of serviceentries ${change.namespace}/${change.name} refused`;
  if (change.action === 'create' && status === 409)
    return `${what}: an object of that name was created by another writer after the plan read the namespace; not overwritten (${kubeErrorMessage(err)})`;
  if (change.action === 'update' && change.observed?.uid && (status === 409 || status === 422))
    return `${what}: the object was deleted or replaced since the plan read it; not overwritten (${kubeErrorMessage(err)})`;
  return undefined;
}

/**
 * Deletes with the observed resourceVersion as a precondition. On 409 (the object changed since
 * it was listed: istiod writes status to every ServiceEntry, so this is common) it looks again and
 * deletes only if the object is still ours and still from the same source. Looked up with a list
 * by name: the chart's Role grants list, not get. False: the object was gone meanwhile.
 */
async function deleteOwned(
  w: Writer,
  change: Change,
  version: string,
  dryRun: string | undefined,
  signal: AbortSignal,
): Promise<boolean> {
  const del = (rv: string | undefined) =>
    withRetry(
      () =>
        w.api.objects.delete(
          { apiVersion: version, kind: 'ServiceEntry', metadata: { name: change.name, namespace: change.namespace } },
          undefined,
          dryRun,
          undefined,
          undefined,
          'Background',
          rv ? { preconditions: { resourceVersion: rv } } : undefined,
        ),
      signal,
      w.options.retries,
      (err) => statusOf(err) !== 409 && isRetryable(err),
      (err) => w.options.metrics.apiRetries.inc({ verb: 'delete', code: String(statusOf(err) ?? 'error') }),
    );
  try {
    await del(change.observed?.resourceVersion);
    return true;
  } catch (err) {
    if (statusOf(err) !== 409) throw err;
    let now: ServiceEntryResource | undefined;
    await w.api.listAll(
      version,
      change.namespace,
      { fieldSelector: `metadata.name=${change.name}` },
      signal,
      (o) => (now = o),
    );
    if (!now) return false; // gone meanwhile
    const labels = now.metadata?.labels ?? {};
    if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE || labels[SOURCE_LABEL] !== change.source) throw err;
    await del(now.metadata?.resourceVersion);
    return true;
  }
}
