import { describe, expect, it } from 'vitest';
import { sortByKey } from '../../src/util/sort.js';

describe('sortByKey', () => {
  it('orders exactly as comparing the built keys did, prefixes and equal keys included', () => {
    const names = ['a', 'a-b', 'a0', 'a/b', 'b', 'A', 'ä', 'a-b', ''];
    const items = names.flatMap((namespace, i) =>
      names.map((name, j) => ({ namespace, name, at: i * names.length + j })),
    );
    // A fixed shuffle, so the input order is not already sorted.
    const shuffled = items
      .map((x, i) => ({ x, r: (i * 7919) % items.length }))
      .sort((p, q) => p.r - q.r)
      .map((p) => p.x);
    const id = (x: { namespace: string; name: string }) => `${x.namespace}/${x.name}`;
    const old = [...shuffled].sort((a, b) => (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0));
    expect(sortByKey(shuffled, id)).toEqual(old);
    expect(sortByKey(shuffled, id)).not.toBe(shuffled);
  });
});
