import { describe, expect, it } from 'vitest';
import { dubboServicesOf } from '../../adapters/zookeeper/layouts.js';
import { defaultSynthOptions, synthServiceEntry } from '../../src/synth/index.js';
import { flatCopy, Interner } from '../../src/util/intern.js';
import { javaUrlEncode } from './zookeeper-helpers.js';

describe('Interner', () => {
  it('returns one shared copy per distinct value', () => {
    const t = new Interner();
    const long = 'x'.repeat(40) + 'org.example.DemoService' + Math.random();
    const a = t.intern(long.slice(40));
    const b = t.intern(`${long.slice(40, 60)}${long.slice(60)}`);
    expect(a).toBe(b);
    expect(a).toBe(long.slice(40));
    expect(t.size).toBe(1);
  });

  it('starts over at its limit, and values handed out stay valid', () => {
    const t = new Interner(3);
    const out = ['a', 'b', 'c', 'd', 'e'].map((v) => t.intern(v.repeat(20)));
    expect(out).toEqual(['a', 'b', 'c', 'd', 'e'].map((v) => v.repeat(20)));
    expect(t.size).toBe(2);
  });

  it('copies text losslessly, lone surrogates and all', () => {
    for (const s of [
      'plain-ascii-value-long-enough',
      'ünïcødé-välue-😀-long-enough',
      '\ud800 lone surrogate, long enough',
      'short',
    ]) {
      expect(flatCopy(s)).toBe(s);
    }
  });
});

describe('the watched view holds one copy of what providers share', () => {
  const provider = (ip: string) =>
    `dubbo://${ip}:20880/org.example.DemoService?anyhost=true&application=demo-provider&dubbo=2.0.2&interface=org.example.DemoService&pid=${ip.length}&release=3.2.10&side=provider&timestamp=${Date.now()}&version=1.0.0`;
  const dir = {
    name: 'org.example.DemoService',
    path: '/dubbo/org.example.DemoService',
    providers: ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((ip) => javaUrlEncode(provider(ip))),
    configurators: [],
  };

  it('providers with equal parameters share one metadata object; a different one gets its own', () => {
    const other = javaUrlEncode(provider('10.0.0.4').replace('release=3.2.10', 'release=3.3.0'));
    const [svc] = dubboServicesOf({ ...dir, providers: [...dir.providers, other] }, 's', 'dubbo', []);
    const metas = svc!.instances.map((i) => i.metadata);
    expect(metas[0]).toBe(metas[1]);
    expect(metas[1]).toBe(metas[2]);
    expect(metas[3]).not.toBe(metas[0]);
    expect(metas[3]!.release).toBe('3.3.0');
    expect(metas[0]).toEqual({
      anyhost: 'true',
      application: 'demo-provider',
      dubbo: '2.0.2',
      interface: 'org.example.DemoService',
      release: '3.2.10',
      side: 'provider',
      version: '1.0.0',
    });
  });

  it('endpoints with equal labels share one labels object in the ServiceEntry', () => {
    const [svc] = dubboServicesOf(dir, 's', 'dubbo', []);
    const options = { ...defaultSynthOptions, hostTemplate: '{interface}.dubbo', namespace: 'mesh' };
    const r = synthServiceEntry(svc!, options);
    if (r.kind !== 'ok') throw new Error(`synth: ${JSON.stringify(r)}`);
    const eps = (r.entry.object as { spec: { endpoints: readonly { labels?: object }[] } }).spec.endpoints;
    expect(eps).toHaveLength(3);
    expect(eps[0]!.labels).toBeDefined();
    expect(eps[0]!.labels).toBe(eps[1]!.labels);
    expect(eps[2]!.labels).toBe(eps[1]!.labels);
  });
});
