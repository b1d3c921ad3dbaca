import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHmac } from 'node:crypto';
import { protectEmpty, type KnownService } from '../../adapters/nacos/empty-protection.js';
import { refreshDelayMs, serverBase, signatureParams } from '../../adapters/nacos/http.js';
import { pacer, relistSpreadMs } from '../../adapters/nacos/index.js';
import { nacosConfigSchema } from '../../adapters/nacos/schema.js';
import { serviceKeyString, type RegistryService } from '../../src/model/service.js';
import { inst, svc } from './helpers.js';

describe('nacos config schema', () => {
  const rows: { name: string; input: unknown; ok: boolean; match?: RegExp }[] = [
    { name: 'minimal', input: { servers: ['http://nacos:8848'] }, ok: true },
    {
      name: 'password auth by reference',
      input: {
        servers: ['https://n1:8848', 'https://n2:8848/nacos'],
        auth: { username: 'u', password: { env: 'PW' } },
        tls: { caFile: 'ca.pem' },
      },
      ok: true,
    },
    {
      name: 'access key auth',
      input: { servers: ['http://n:8848'], auth: { accessKey: { env: 'AK' }, secretKey: { file: 'sk' } } },
      ok: true,
    },
    {
      name: 'inline password refused',
      input: { servers: ['http://n:8848'], auth: { username: 'u', password: 'hunter2' } },
      ok: false,
    },
    {
      name: 'credentials in the URL refused',
      input: { servers: ['http://u:p@n:8848'] },
      ok: false,
      match: /no credentials in the URL/,
    },
    { name: 'no server', input: { servers: [] }, ok: false },
    { name: 'not a URL', input: { servers: ['n:8848'] }, ok: false },
    { name: 'bad duration', input: { servers: ['http://n:8848'], emptyProtection: { keepFor: 'soon' } }, ok: false },
    { name: 'unknown key', input: { servers: ['http://n:8848'], pagesize: 10 }, ok: false },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const p = nacosConfigSchema.safeParse(r.input);
      expect(p.success).toBe(r.ok);
      if (r.match && !p.success) expect(p.error.issues.map((i) => i.message).join('\n')).toMatch(r.match);
    });
  }
  it('fills defaults', () => {
    const p = nacosConfigSchema.parse({ servers: ['http://n:8848'], emptyProtection: { keepFor: '5m' } });
    expect(p).toMatchObject({
      namespaces: ['public'],
      groups: ['DEFAULT_GROUP'],
      relistInterval: 30_000,
      relistRate: 50,
      pageSize: 1000,
      healthyOnly: false,
      push: 'grpc',
      emptyProtection: { keepFor: 300_000 },
    });
  });
  it('push: true means grpc, false is off, sdk stays; anything else names the choices', () => {
    const push = (v: unknown) => nacosConfigSchema.parse({ servers: ['http://n:8848'], push: v }).push;
    expect([push(true), push(false), push('sdk'), push('grpc')]).toEqual(['grpc', false, 'sdk', 'grpc']);
    const bad = nacosConfigSchema.safeParse({ servers: ['http://n:8848'], push: 'udp' });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toMatch(/grpc|sdk/);
  });
});

describe('the re-list pace (relistInterval, relistRate)', () => {
  afterEach(() => void vi.useRealTimers());
  it('spreads a re-list over half the interval, or longer when that would exceed the rate', () => {
    expect(relistSpreadMs(1_000, 30_000, 50)).toBe(20_000); // 1,000 at 50/s: 20 s, inside the interval
    expect(relistSpreadMs(500, 30_000, 50)).toBe(15_000); // half the interval is slower than the rate
    expect(relistSpreadMs(10_000, 30_000, 50)).toBe(200_000); // not 10,000 reads in 15 s
    expect(relistSpreadMs(10_000, 30_000, 1_000_000)).toBe(15_000);
    expect(relistSpreadMs(0, 30_000, 50)).toBe(15_000);
  });
  it('starts the calls one slot apart, never two in one slot', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const next = pacer(10_000, relistSpreadMs(10_000, 30_000, 50));
    const starts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const p = next().then((t) => starts.push(t));
      await vi.advanceTimersByTimeAsync(20);
      await p;
    }
    expect(starts).toEqual([1_000_000, 1_000_020, 1_000_040, 1_000_060, 1_000_080]);
    // A caller that comes late starts at once; the slots after it are counted from it (a stall
    // is not made up with a burst).
    await vi.advanceTimersByTimeAsync(200);
    expect(await next()).toBe(1_000_300);
    const waiting = [next(), next(), next()]; // callers in flight together (the read's concurrency)
    await vi.advanceTimersByTimeAsync(60);
    expect(await Promise.all(waiting)).toEqual([1_000_320, 1_000_340, 1_000_360]);
  });
});

describe('serverBase', () => {
  const rows: [string, string, string][] = [
    ['adds /nacos', 'http://n:8848', 'http://n:8848/nacos'],
    ['adds /nacos after a slash', 'https://n:8848/', 'https://n:8848/nacos'],
    ['keeps a context path', 'http://n:8848/registry/', 'http://n:8848/registry'],
  ];
  for (const [name, input, want] of rows) it(name, () => expect(serverBase(input)).toBe(want));
});

describe('refreshDelayMs (when a login token is renewed)', () => {
  const rows: [number, number][] = [
    [18_000_000, 16_200_000], // 90% of the Nacos default of 5 h
    [60_000, 54_000],
    [10_000, 5_000], // 5 s before the end is half the lifetime
    // A short token is kept for half its lifetime: it was renewed at every request (refresh at 0).
    [4_000, 2_000],
    [5_000, 2_500],
    [1_000, 500],
    [0, 0],
  ];
  for (const [ttl, want] of rows) it(`${ttl} ms → ${want} ms`, () => expect(refreshDelayMs(ttl)).toBe(want));
});

describe('signatureParams (SDK-style v1 naming signature)', () => {
  it('signs <ms>@@<service> with HMAC-SHA1 of the secret key', () => {
    const p = signatureParams(
      { kind: 'signature', accessKey: 'ak1', secretKey: 'sk1', appName: 'bridge' },
      'DEFAULT_GROUP@@orders',
      1700000000000,
    );
    expect(p).toEqual({
      ak: 'ak1',
      app: 'bridge',
      data: '1700000000000@@DEFAULT_GROUP@@orders',
      signature: createHmac('sha1', 'sk1').update('1700000000000@@DEFAULT_GROUP@@orders').digest('base64'),
    });
    expect(signatureParams({ kind: 'signature', accessKey: 'a', secretKey: 's' }, undefined, 5).data).toBe('5');
  });
});

describe('protectEmpty', () => {
  const full = svc('orders', [inst('10.0.0.1', 80)]);
  const empty = svc('orders', []);
  const key = serviceKeyString(full.key);
  const known = (emptySince?: number): Map<string, KnownService> =>
    new Map([[key, { lastGood: full, ...(emptySince !== undefined ? { emptySince } : {}) }]]);
  const rows: {
    name: string;
    read: RegistryService[];
    prev: Map<string, KnownService>;
    now: number;
    keepFor: number;
    want: number;
    kept: number;
  }[] = [
    { name: 'non-empty read passes through', read: [full], prev: new Map(), now: 0, keepFor: 1000, want: 1, kept: 0 },
    {
      name: 'first empty read keeps last known',
      read: [empty],
      prev: known(),
      now: 100,
      keepFor: 1000,
      want: 1,
      kept: 1,
    },
    { name: 'still within keepFor', read: [empty], prev: known(100), now: 1099, keepFor: 1000, want: 1, kept: 1 },
    {
      name: 'keepFor elapsed: the empty read is believed',
      read: [empty],
      prev: known(100),
      now: 1100,
      keepFor: 1000,
      want: 0,
      kept: 0,
    },
    {
      name: 'service vanished from the list is kept too',
      read: [],
      prev: known(),
      now: 5,
      keepFor: 1000,
      want: 1,
      kept: 1,
    },
    { name: 'disabled (keepFor 0)', read: [empty], prev: known(), now: 5, keepFor: 0, want: 0, kept: 0 },
    {
      name: 'never had instances: nothing to keep',
      read: [empty],
      prev: new Map(),
      now: 5,
      keepFor: 1000,
      want: 0,
      kept: 0,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const out = protectEmpty(r.read, r.prev, r.now, r.keepFor);
      expect(out.services.reduce((n, s) => n + s.instances.length, 0)).toBe(r.want);
      expect(out.kept).toHaveLength(r.kept);
    });
  }
  it('remembers when the service first read empty', () => {
    const a = protectEmpty([empty], known(), 100, 1000);
    expect(a.known.get(key)?.emptySince).toBe(100);
    const b = protectEmpty([empty], a.known, 600, 1000);
    expect(b.kept).toEqual([{ key, emptyForMs: 500 }]);
    const c = protectEmpty([full], b.known, 700, 1000);
    expect(c.known.get(key)?.emptySince).toBeUndefined();
  });
});
