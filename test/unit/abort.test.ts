import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { linkedSignal, sleep } from '../../src/util/abort.js';

afterEach(() => vi.useRealTimers());

describe('linkedSignal', () => {
  it('leaves no listener on the parent once disposed, however many are made', () => {
    const parent = new AbortController().signal;
    for (let i = 0; i < 1000; i++) {
      const s = linkedSignal(parent, 5_000);
      expect(getEventListeners(parent, 'abort')).toHaveLength(1);
      s.dispose();
    }
    expect(getEventListeners(parent, 'abort')).toHaveLength(0);
  });

  it('aborts with the parent, with the parent’s reason, and not as a timeout', () => {
    const parent = new AbortController();
    const s = linkedSignal(parent.signal, 5_000);
    const reason = new Error('shutdown');
    parent.abort(reason);
    expect(s.signal.aborted).toBe(true);
    expect(s.signal.reason).toBe(reason);
    expect(s.timedOut).toBe(false);
  });

  it('is aborted at once when the parent already is', () => {
    const parent = new AbortController();
    parent.abort(new Error('gone'));
    const s = linkedSignal(parent.signal, 5_000);
    expect(s.signal.aborted).toBe(true);
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
  });

  it('times out with a TimeoutError and unlinks from the parent', () => {
    vi.useFakeTimers();
    const parent = new AbortController().signal;
    const s = linkedSignal(parent, 1_000);
    vi.advanceTimersByTime(999);
    expect(s.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(s.signal.aborted).toBe(true);
    expect(s.timedOut).toBe(true);
    expect((s.signal.reason as DOMException).name).toBe('TimeoutError');
    expect(getEventListeners(parent, 'abort')).toHaveLength(0);
  });

  it('never times out after dispose', () => {
    vi.useFakeTimers();
    const s = linkedSignal(undefined, 1_000);
    s.dispose();
    vi.advanceTimersByTime(5_000);
    expect(s.signal.aborted).toBe(false);
  });
});

describe('sleep', () => {
  it('resolves after the delay and removes its listener', async () => {
    vi.useFakeTimers();
    const parent = new AbortController().signal;
    const done = sleep(100, parent);
    expect(getEventListeners(parent, 'abort')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    await expect(done).resolves.toBeUndefined();
    expect(getEventListeners(parent, 'abort')).toHaveLength(0);
  });

  it('rejects with the reason when the signal aborts first', async () => {
    const parent = new AbortController();
    const done = sleep(60_000, parent.signal);
    const reason = new Error('stop');
    parent.abort(reason);
    await expect(done).rejects.toBe(reason);
  });
});

describe('linkedSignal and Node warnings', () => {
  it('many links in flight at once raise no MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const parent = new AbortController().signal;
      const links = Array.from({ length: 32 }, () => linkedSignal(parent, 5_000));
      await new Promise((r) => setImmediate(r));
      for (const l of links) l.dispose();
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
