import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { withRetry } from '../../src/sinks/kube/api.js';
import { retryAfterMs } from '../../src/sinks/kube/client.js';

/** What @kubernetes/client-node throws for an answer that is not 2xx (ApiException's fields). */
const apiError = (code: number, headers: Record<string, string> = {}) =>
  Object.assign(new Error(`HTTP-Code: ${code}`), { code, body: {}, headers });

describe('retryAfterMs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const rows: [string, unknown, number | undefined][] = [
    ['429 with seconds', apiError(429, { 'retry-after': '2' }), 2000],
    ['503 with seconds', apiError(503, { 'retry-after': '1' }), 1000],
    ['429 with an HTTP date', apiError(429, { 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }), 3000],
    ['a date in the past is no wait', apiError(429, { 'retry-after': 'Wed, 31 Dec 2025 23:59:00 GMT' }), 0],
    ['capped', apiError(429, { 'retry-after': '3600' }), 30_000],
    ['429 without the header', apiError(429), undefined],
    ['garbage', apiError(429, { 'retry-after': 'soon' }), undefined],
    ['409 is not throttling', apiError(409, { 'retry-after': '2' }), undefined],
    ['a transport error', new Error('ECONNREFUSED'), undefined],
  ];
  for (const [name, err, want] of rows) it(name, () => expect(retryAfterMs(err, now)).toBe(want));
});

describe('withRetry and Retry-After', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits at least what a 429 asks before the next try', async () => {
    let calls = 0;
    const done = withRetry(async () => {
      calls += 1;
      if (calls === 1) throw apiError(429, { 'retry-after': '2' });
      return 'ok';
    }, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(1999);
    expect(calls).toBe(1);
    // Then the jittered backoff of a first retry (100–200 ms).
    await vi.advanceTimersByTimeAsync(250);
    expect(calls).toBe(2);
    await expect(done).resolves.toBe('ok');
  });

  it('without Retry-After, the backoff alone (a first retry within 200 ms)', async () => {
    let calls = 0;
    const done = withRetry(async () => {
      calls += 1;
      if (calls === 1) throw apiError(429);
      return 'ok';
    }, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toBe(2);
    await expect(done).resolves.toBe('ok');
  });

  it('an abort ends the wait', async () => {
    const controller = new AbortController();
    const done = withRetry(async () => {
      throw apiError(429, { 'retry-after': '10' });
    }, controller.signal);
    const settled = done.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    controller.abort(new Error('stopping'));
    await vi.advanceTimersByTimeAsync(0);
    expect(((await settled) as Error).message).toBe('stopping');
  });
});

describe('withRetry and the retries count', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports each answer tried again, not the last one', async () => {
    const retried: unknown[] = [];
    const fail = apiError(503);
    const done = withRetry(
      async () => {
        throw fail;
      },
      new AbortController().signal,
      2,
      undefined,
      (err) => retried.push(err),
    );
    const settled = done.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await settled).toBe(fail);
    expect(retried).toEqual([fail, fail]);
  });

  it('reports nothing for an answer that is not retried', async () => {
    const retried: unknown[] = [];
    const forbidden = apiError(403);
    await expect(
      withRetry(
        async () => {
          throw forbidden;
        },
        new AbortController().signal,
        2,
        undefined,
        (err) => retried.push(err),
      ),
    ).rejects.toBe(forbidden);
    expect(retried).toEqual([]);
  });
});
