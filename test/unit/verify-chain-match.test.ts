import { describe, expect, it } from 'vitest';
import { listenersFor, selectFilterChain, selectVirtualHost } from '../../src/verify/chain-match.js';
import type { ProxyFilterChain, ProxyListener, ProxyVirtualHost } from '../../src/verify/proxy-config.js';

const chain = (name: string, m: Partial<ProxyFilterChain> = {}): ProxyFilterChain => ({
  serverNames: [],
  prefixRanges: [],
  applicationProtocols: [],
  tcpClusters: [name],
  ...m,
});
const listener = (name: string, address: string, chains: ProxyFilterChain[]): ProxyListener => ({
  name,
  address,
  port: 443,
  filterChains: chains,
});

describe("Envoy's filter chain match, level by level, no backtracking", () => {
  const l = listener('0.0.0.0_443', '0.0.0.0', [
    chain('sni-exact', { serverNames: ['a.example.com'], transportProtocol: 'tls' }),
    chain('sni-wild', { serverNames: ['*.example.com'] }),
    chain('cidr', { prefixRanges: ['10.1.0.0/16'] }),
    chain('cidr-narrow', { prefixRanges: ['10.1.2.0/24'] }),
    chain('http', { applicationProtocols: ['http/1.1', 'h2c'], transportProtocol: 'raw_buffer' }),
    chain('tcp-any'),
    chain('default', { isDefault: true }),
  ]);
  const tls = { port: 443, transport: 'tls' as const, alpn: [] };
  it.each<[string, Parameters<typeof selectFilterChain>[1], string | undefined]>([
    ['exact SNI', { ...tls, sni: 'a.example.com' }, 'sni-exact'],
    ['wildcard SNI', { ...tls, sni: 'b.example.com' }, 'sni-wild'],
    ['no SNI match: the chains without server names', { ...tls, sni: 'other.org' }, 'tcp-any'],
    ['longest destination prefix first', { ...tls, ip: '10.1.2.3' }, 'cidr-narrow'],
    [
      'a prefix match is final: its SNI level is not left for another',
      { ...tls, ip: '10.1.9.9', sni: 'a.example.com' },
      'cidr',
    ],
    ['plaintext HTTP by ALPN', { port: 443, transport: 'raw_buffer', alpn: ['http/1.1'] }, 'http'],
    // Envoy takes the raw_buffer branch (an exact transport match) and finds no chain there
    // without application protocols: the default chain, not the catch-all of the other branch.
    ['raw TCP beside an HTTP chain matched on raw_buffer', { port: 443, transport: 'raw_buffer', alpn: [] }, 'default'],
  ])('%s', (_n, facts, want) => expect(selectFilterChain(l, facts)?.tcpClusters[0]).toBe(want));

  it('raw TCP where no chain names a transport: the catch-all', () => {
    const plain = listener('x', '0.0.0.0', [chain('http', { applicationProtocols: ['http/1.1'] }), chain('tcp')]);
    expect(selectFilterChain(plain, { port: 443, transport: 'raw_buffer', alpn: [] })?.tcpClusters[0]).toBe('tcp');
  });

  it('nothing matches: the default filter chain', () => {
    const only = listener('x', '0.0.0.0', [
      chain('sni', { serverNames: ['a'] }),
      chain('default', { isDefault: true }),
    ]);
    expect(selectFilterChain(only, { ...tls, sni: 'b' })?.tcpClusters[0]).toBe('default');
  });

  it('a VIP-bound listener comes before 0.0.0.0; a bound one of unknown address counts when it holds the cluster', () => {
    const vip = listener('240.240.0.7_443', '240.240.0.7', [chain('outbound|443||h')]);
    const other = listener('240.240.0.8_443', '240.240.0.8', [chain('outbound|443||x')]);
    const found = listenersFor([l, other, vip], 443, [], (fc) => fc.tcpClusters.includes('outbound|443||h'));
    expect(found.map((f) => [f.listener.name, f.ip])).toEqual([
      ['240.240.0.7_443', '240.240.0.7'],
      ['0.0.0.0_443', undefined],
    ]);
  });
});

describe("Envoy's virtual host selection", () => {
  const vh = (name: string, domains: string[]): ProxyVirtualHost => ({ name, domains, clusters: [name] });
  const hosts = [
    vh('all', ['*']),
    vh('suffix', ['*.example.com']),
    vh('longer', ['*.a.example.com']),
    vh('prefix', ['api.*']),
  ];
  it.each([
    ['exact domain, with or without the port', [vh('h:80', ['h.example.com']), ...hosts], 'h.example.com', 'h:80'],
    ['exact host:port', [vh('h:80', ['h.example.com:80']), ...hosts], 'h.example.com', 'h:80'],
    ['the longest suffix wildcard', hosts, 'x.a.example.com', 'longer'],
    ['a prefix wildcard', hosts, 'api.other.org', 'prefix'],
    ['else *', hosts, 'other.org', 'all'],
  ])('%s', (_n, list, host, want) => expect(selectVirtualHost(list, host, 80)?.name).toBe(want));
});
