/**
 * Which listener and filter chain a sidecar's connection would use, following Envoy's rules
 * (envoy/source/common/listener_manager/filter_chain_manager_impl.cc): the listener bound to
 * the exact destination address wins over the wildcard one (Istio's virtual outbound listener
 * hands the connection over by original destination); within a listener, filter chains are
 * narrowed level by level — destination port, destination IP (longest prefix), server name
 * (exact, then the longest `*.` suffix), transport protocol, application protocols — and at each
 * level a specific match is taken over the catch-all, with no backtracking; when nothing matches,
 * the default filter chain.
 *
 * And which virtual host of a route configuration serves a Host header (Envoy's
 * config_impl.cc `findVirtualHost`): exact domain, then the longest `*.suffix`, then the longest
 * `prefix.*`, then `*`.
 */
import type { ProxyFilterChain, ProxyListener, ProxyVirtualHost } from './proxy-config.js';

export interface ConnectionFacts {
  /** Destination address, when known (a VIP); undefined: an address no prefix range names. */
  readonly ip?: string;
  readonly port: number;
  /** TLS SNI, when the client sends one. */
  readonly sni?: string;
  readonly transport: 'tls' | 'raw_buffer';
  /** ALPN / what the HTTP inspector detects: `http/1.1` for plaintext HTTP; none for raw TCP. */
  readonly alpn: readonly string[];
}

const wildcards = new Set(['0.0.0.0', '::', '']);

export const isWildcardAddress = (address: string | undefined): boolean => wildcards.has(address ?? '');

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** Length of the prefix of `cidr` that contains `ip`, or -1. (IPv6: exact address only.) */
function prefixMatch(cidr: string, ip: string): number {
  const [base = '', lenText = '32'] = cidr.split('/');
  const len = Number(lenText);
  const a = ipv4ToInt(base);
  const b = ipv4ToInt(ip);
  if (a === undefined || b === undefined) return base === ip ? 128 : -1;
  if (len === 0) return 0;
  const mask = len >= 32 ? 0xffffffff : ~(0xffffffff >>> len) >>> 0;
  return (a & mask) === (b & mask) ? len : -1;
}

/** One level of the match: the specific chains when any matches, else the catch-all ones. */
function narrow<T>(chains: readonly T[], specific: (c: T) => number, isCatchAll: (c: T) => boolean): T[] {
  let best = -1;
  for (const c of chains) best = Math.max(best, specific(c));
  if (best >= 0) return chains.filter((c) => specific(c) === best);
  return chains.filter(isCatchAll);
}

/** The filter chain Envoy picks for a connection on this listener, or undefined (connection closed). */
export function selectFilterChain(listener: ProxyListener, c: ConnectionFacts): ProxyFilterChain | undefined {
  let chains = listener.filterChains.filter((fc) => !fc.isDefault);
  chains = narrow(
    chains,
    (fc) => (fc.destinationPort === c.port ? 0 : -1),
    (fc) => fc.destinationPort === undefined,
  );
  chains = narrow(
    chains,
    (fc) => (c.ip === undefined ? -1 : Math.max(-1, ...fc.prefixRanges.map((r) => prefixMatch(r, c.ip!)))),
    (fc) => fc.prefixRanges.length === 0,
  );
  const sni = c.sni;
  chains = narrow(
    chains,
    (fc) => {
      if (sni === undefined) return -1;
      if (fc.serverNames.includes(sni)) return 1_000;
      // `*.example.com` matches `a.example.com`; the longest suffix wins.
      const lengths = fc.serverNames.filter((n) => n.startsWith('*.') && sni.endsWith(n.slice(1))).map((n) => n.length);
      return lengths.length ? Math.max(...lengths) : -1;
    },
    (fc) => fc.serverNames.length === 0,
  );
  chains = narrow(
    chains,
    (fc) => (fc.transportProtocol === c.transport ? 0 : -1),
    (fc) => fc.transportProtocol === undefined,
  );
  chains = narrow(
    chains,
    (fc) => (fc.applicationProtocols.some((p) => c.alpn.includes(p)) ? 0 : -1),
    (fc) => fc.applicationProtocols.length === 0,
  );
  return chains[0] ?? listener.filterChains.find((fc) => fc.isDefault);
}

/**
 * The listener a connection to `port` lands on: a listener bound to one of `vips` (or, when the
 * host's addresses are not known, a non-wildcard listener that holds `ownChain`), else the
 * wildcard listener of the port.
 */
export function listenersFor(
  listeners: readonly ProxyListener[],
  port: number,
  vips: readonly string[],
  ownChain: (fc: ProxyFilterChain) => boolean,
): { listener: ProxyListener; ip?: string }[] {
  const onPort = listeners.filter((l) => l.port === port);
  const bound = onPort.filter(
    (l) => !isWildcardAddress(l.address) && (vips.includes(l.address!) || l.filterChains.some(ownChain)),
  );
  const wildcard = onPort.filter((l) => isWildcardAddress(l.address));
  return [
    ...bound.map((listener) => ({ listener, ip: listener.address! })),
    ...wildcard.map((listener) => ({ listener })),
  ];
}

/** The virtual host Envoy picks for a Host header (with or without its port). */
export function selectVirtualHost(
  virtualHosts: readonly ProxyVirtualHost[],
  host: string,
  port: number,
): ProxyVirtualHost | undefined {
  const headers = [host, `${host}:${port}`];
  const exact = virtualHosts.find((vh) => vh.domains.some((d) => headers.includes(d) || d === `${host}.`));
  if (exact) return exact;
  let best: { vh: ProxyVirtualHost; len: number } | undefined;
  for (const vh of virtualHosts)
    for (const d of vh.domains)
      if (
        d.length > 1 &&
        d.startsWith('*') &&
        headers.some((h) => h.endsWith(d.slice(1))) &&
        (!best || d.length > best.len)
      )
        best = { vh, len: d.length };
  if (best) return best.vh;
  for (const vh of virtualHosts)
    for (const d of vh.domains)
      if (
        d.length > 1 &&
        d.endsWith('*') &&
        headers.some((h) => h.startsWith(d.slice(0, -1))) &&
        (!best || d.length > best.len)
      )
        best = { vh, len: d.length };
  if (best) return best.vh;
  return virtualHosts.find((vh) => vh.domains.includes('*'));
}
