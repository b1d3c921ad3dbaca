import type { IstioProtocol } from './types.js';

/**
 * Registry protocol names (lowercased) → the protocol Istio should treat the port as.
 * Istio has no Dubbo/Thrift filters any more: those are opaque TCP. Dubbo's triple protocol is
 * gRPC-compatible HTTP/2, so it maps to GRPC (HTTP/2 upstream plus gRPC-aware stats and
 * retries), the same choice Dubbo's own mesh documentation makes for triple.
 */
const known: Readonly<Record<string, IstioProtocol>> = {
  http: 'HTTP',
  http1: 'HTTP',
  'http/1.1': 'HTTP',
  rest: 'HTTP',
  https: 'HTTPS',
  http2: 'HTTP2',
  h2: 'HTTP2',
  h2c: 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  tri: 'GRPC',
  triple: 'GRPC',
  tcp: 'TCP',
  dubbo: 'TCP',
  hessian: 'TCP',
  thrift: 'TCP',
  tls: 'TLS',
  udp: 'UDP',
  mongo: 'Mongo',
  mongodb: 'Mongo',
  redis: 'Redis',
  mysql: 'MySQL',
};

const istioNames: ReadonlySet<string> = new Set<string>(Object.values(known));

export interface ProtocolMapping {
  readonly protocol: IstioProtocol;
  /** Set when the registry protocol was not recognised and TCP was chosen. */
  readonly unknown?: string;
}

export function mapProtocol(
  registryProtocol: string | undefined,
  overrides: Readonly<Record<string, IstioProtocol>> = {},
): ProtocolMapping {
  if (registryProtocol === undefined || registryProtocol.trim() === '') return { protocol: 'TCP' };
  const raw = registryProtocol.trim();
  const lower = raw.toLowerCase();
  const override = overrides[lower];
  if (override) return { protocol: override };
  const hit = known[lower];
  if (hit) return { protocol: hit };
  // Already an Istio protocol name in another case (e.g. "GRPC-WEB").
  for (const name of istioNames) if (name.toLowerCase() === lower) return { protocol: name as IstioProtocol };
  return { protocol: 'TCP', unknown: raw };
}

export function isIstioProtocol(value: string): value is IstioProtocol {
  return istioNames.has(value);
}
