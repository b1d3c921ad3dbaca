/**
 * What a proxy holds, from any of three sources, through one parser:
 * - the xDS probe's decoded resources (proto field names, Any expanded with "@type"),
 * - Envoy's admin `/config_dump` (snake_case JSON),
 * - istiod's `/debug/config_dump?proxyID=` and `istioctl proxy-config … -o json` (protojson
 *   camelCase).
 * camelCase keys are turned into snake_case first (map keys such as metadata filter names
 * contain dots or slashes and are left alone), then only the few fields the verifier compares
 * are read, each through a lenient schema.
 */
import { z } from 'zod';
import { parseJsonText } from './json-input.js';

export interface ProxyCluster {
  readonly name: string;
  /** Envoy discovery type: EDS, STRICT_DNS, LOGICAL_DNS, ORIGINAL_DST, STATIC. */
  readonly type: string;
  readonly versionInfo?: string;
  readonly lastUpdated?: string;
}

export interface ProxyFilterChain {
  readonly serverNames: readonly string[];
  readonly destinationPort?: number;
  /** filter_chain_match.prefix_ranges: destination CIDRs, `10.0.0.0/8`. */
  readonly prefixRanges: readonly string[];
  /** filter_chain_match.transport_protocol: `tls`, `raw_buffer`, or absent (any). */
  readonly transportProtocol?: string;
  /** filter_chain_match.application_protocols (ALPN, or what the HTTP inspector saw). */
  readonly applicationProtocols: readonly string[];
  /** The listener's default_filter_chain (used when no chain matches). */
  readonly isDefault?: boolean;
  /** tcp_proxy target clusters. */
  readonly tcpClusters: readonly string[];
  /** HCM with RDS: the route configuration name. */
  readonly rdsName?: string;
  /** HCM with an inline route configuration. */
  readonly inlineRoute?: ProxyRouteConfig;
}

export interface ProxyListener {
  readonly name: string;
  readonly address?: string;
  readonly port?: number;
  readonly filterChains: readonly ProxyFilterChain[];
  readonly versionInfo?: string;
  readonly lastUpdated?: string;
}

export interface ProxyVirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  /** Every cluster a route of this virtual host sends to. */
  readonly clusters: readonly string[];
}

export interface ProxyRouteConfig {
  readonly name: string;
  readonly virtualHosts: readonly ProxyVirtualHost[];
  readonly versionInfo?: string;
  readonly lastUpdated?: string;
}

export interface ProxyEndpoints {
  readonly clusterName: string;
  readonly endpoints: number;
}

/** One host of Istio's DNS name table (NDS): the addresses a DNS-capturing sidecar answers with. */
export interface ProxyNameInfo {
  readonly ips: readonly string[];
  readonly registry?: string;
  readonly namespace?: string;
}

/** A proxy's configuration, indexed by name. */
export interface ProxyView {
  /** The DNS name table (NDS), when the source is a DNS-capturing probe. */
  readonly nameTable?: ReadonlyMap<string, ProxyNameInfo>;
  readonly clusters: ReadonlyMap<string, ProxyCluster>;
  readonly listeners: readonly ProxyListener[];
  readonly routes: ReadonlyMap<string, ProxyRouteConfig>;
  /** EDS, when the source has it (xDS probe, config_dump with include_eds). */
  readonly endpoints?: ReadonlyMap<string, ProxyEndpoints>;
  /** Elements that could not be read, by kind. */
  readonly dropped: number;
}

// ---------------------------------------------------------------------------------------------
// key normalisation

const camelKey = /^[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*$/;
/** Keys whose values are maps keyed by names (filter names, label keys): leave their keys. */
const mapValuedKeys = new Set([
  'filter_metadata',
  'typed_filter_metadata',
  'typed_per_filter_config',
  'fields',
  'typed_extension_protocol_options',
  'labels',
]);

/**
 * Deeper than this, values are left as they are: the fields the view reads are a few levels
 * down, and a document nested thousands deep would otherwise overflow the stack.
 */
const MAX_KEY_DEPTH = 64;

export function toSnakeKeys(value: unknown, keepKeys = false, depth = 0): unknown {
  if (depth > MAX_KEY_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v) => toSnakeKeys(v, false, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = !keepKeys && camelKey.test(k) ? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : k;
    out[key] = toSnakeKeys(v, mapValuedKeys.has(key), depth + 1);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// lenient schemas (snake_case)

const str = z.string();
const anyObj = z.record(z.string(), z.unknown());

const clusterSchema = z.object({
  name: str,
  type: str.optional(),
  cluster_type: z.object({ name: str.optional() }).optional(),
});

const typedConfigSchema = z.object({ '@type': str.optional() }).loose();
const filterSchema = z.object({ name: str.optional(), typed_config: typedConfigSchema.optional() });
const filterChainSchema = z.object({
  filter_chain_match: z
    .object({
      server_names: z.array(str).optional(),
      destination_port: z.union([z.number(), z.object({ value: z.number() })]).optional(),
      prefix_ranges: z
        .array(
          z.object({
            address_prefix: str.optional(),
            prefix_len: z.union([z.number(), z.object({ value: z.number() })]).optional(),
          }),
        )
        .optional(),
      transport_protocol: str.optional(),
      application_protocols: z.array(str).optional(),
    })
    .optional(),
  filters: z.array(filterSchema).optional(),
});
const listenerSchema = z.object({
  name: str,
  address: z
    .object({ socket_address: z.object({ address: str.optional(), port_value: z.number().optional() }).optional() })
    .optional(),
  filter_chains: z.array(filterChainSchema).optional(),
  default_filter_chain: filterChainSchema.optional(),
});

const weightedSchema = z.object({ clusters: z.array(z.object({ name: str })).optional() });
const routeSchema = z.object({
  route: z.object({ cluster: str.optional(), weighted_clusters: weightedSchema.optional() }).optional(),
});
const virtualHostSchema = z.object({
  name: str,
  domains: z.array(str).optional(),
  routes: z.array(routeSchema).optional(),
});
const routeConfigSchema = z.object({ name: str, virtual_hosts: z.array(virtualHostSchema).optional() });

const tcpProxySchema = z.object({ cluster: str.optional(), weighted_clusters: weightedSchema.optional() });
const hcmSchema = z.object({
  rds: z.object({ route_config_name: str.optional() }).optional(),
  route_config: routeConfigSchema.optional(),
});

const claSchema = z.object({
  cluster_name: str,
  endpoints: z.array(z.object({ lb_endpoints: z.array(z.unknown()).optional() })).optional(),
});

// ---------------------------------------------------------------------------------------------
// resources → view

export interface RawResources {
  readonly clusters: readonly {
    readonly resource: unknown;
    readonly versionInfo?: string;
    readonly lastUpdated?: string;
  }[];
  readonly listeners: readonly {
    readonly resource: unknown;
    readonly versionInfo?: string;
    readonly lastUpdated?: string;
  }[];
  readonly routes: readonly {
    readonly resource: unknown;
    readonly versionInfo?: string;
    readonly lastUpdated?: string;
  }[];
  readonly endpoints?: readonly { readonly resource: unknown }[];
}

const meta = (r: { versionInfo?: string; lastUpdated?: string }) => ({
  ...(r.versionInfo ? { versionInfo: r.versionInfo } : {}),
  ...(r.lastUpdated ? { lastUpdated: r.lastUpdated } : {}),
});

/** Builds the view from resources already in snake_case (xDS) or normalised by toSnakeKeys. */
export function proxyViewOf(raw: RawResources): ProxyView {
  let dropped = 0;
  const clusters = new Map<string, ProxyCluster>();
  for (const c of raw.clusters) {
    const p = clusterSchema.safeParse(c.resource);
    if (!p.success) {
      dropped++;
      continue;
    }
    // Envoy and protojson omit the enum default: no `type` means STATIC.
    const type = p.data.cluster_type ? `custom:${p.data.cluster_type.name ?? ''}` : (p.data.type ?? 'STATIC');
    clusters.set(p.data.name, { name: p.data.name, type, ...meta(c) });
  }
  const listeners: ProxyListener[] = [];
  for (const l of raw.listeners) {
    const p = listenerSchema.safeParse(l.resource);
    if (!p.success) {
      dropped++;
      continue;
    }
    const chains = [
      ...(p.data.filter_chains ?? []).map((fc) => filterChainOf(fc)),
      ...(p.data.default_filter_chain ? [filterChainOf(p.data.default_filter_chain, true)] : []),
    ];
    const sa = p.data.address?.socket_address;
    listeners.push({
      name: p.data.name,
      ...(sa?.address !== undefined ? { address: sa.address } : {}),
      ...(sa?.port_value !== undefined ? { port: sa.port_value } : {}),
      filterChains: chains,
      ...meta(l),
    });
  }
  const routes = new Map<string, ProxyRouteConfig>();
  for (const r of raw.routes) {
    const p = routeConfigSchema.safeParse(r.resource);
    if (!p.success) {
      dropped++;
      continue;
    }
    routes.set(p.data.name, { ...routeConfigOf(p.data), ...meta(r) });
  }
  let endpoints: Map<string, ProxyEndpoints> | undefined;
  if (raw.endpoints) {
    endpoints = new Map();
    for (const e of raw.endpoints) {
      const p = claSchema.safeParse(e.resource);
      if (!p.success) {
        dropped++;
        continue;
      }
      const n = (p.data.endpoints ?? []).reduce((sum, le) => sum + (le.lb_endpoints?.length ?? 0), 0);
      endpoints.set(p.data.cluster_name, { clusterName: p.data.cluster_name, endpoints: n });
    }
  }
  return {
    clusters,
    listeners: listeners.sort((a, b) => cmp(a.name, b.name)),
    routes,
    ...(endpoints ? { endpoints } : {}),
    dropped,
  };
}

function routeConfigOf(rc: z.infer<typeof routeConfigSchema>): ProxyRouteConfig {
  return {
    name: rc.name,
    virtualHosts: (rc.virtual_hosts ?? []).map((vh) => ({
      name: vh.name,
      domains: vh.domains ?? [],
      clusters: [...new Set((vh.routes ?? []).flatMap((r) => clustersOf(r.route)))].sort(),
    })),
  };
}

function clustersOf(
  target: { cluster?: string | undefined; weighted_clusters?: z.infer<typeof weightedSchema> | undefined } | undefined,
): string[] {
  if (!target) return [];
  if (target.cluster) return [target.cluster];
  return (target.weighted_clusters?.clusters ?? []).map((c) => c.name);
}

function filterChainOf(fc: z.infer<typeof filterChainSchema>, isDefault = false): ProxyFilterChain {
  const match = fc.filter_chain_match;
  const dp = match?.destination_port;
  const tcpClusters: string[] = [];
  let rdsName: string | undefined;
  let inlineRoute: ProxyRouteConfig | undefined;
  for (const f of fc.filters ?? []) {
    const type = f.typed_config?.['@type'] ?? '';
    if (type.endsWith('.TcpProxy') || f.name === 'envoy.filters.network.tcp_proxy' || f.name === 'envoy.tcp_proxy') {
      const t = tcpProxySchema.safeParse(f.typed_config ?? {});
      if (t.success) tcpClusters.push(...clustersOf(t.data));
    } else if (type.endsWith('.HttpConnectionManager') || f.name === 'envoy.filters.network.http_connection_manager') {
      const h = hcmSchema.safeParse(f.typed_config ?? {});
      if (h.success) {
        if (h.data.rds?.route_config_name) rdsName = h.data.rds.route_config_name;
        if (h.data.route_config) inlineRoute = routeConfigOf(h.data.route_config);
      }
    }
  }
  const prefixRanges = (match?.prefix_ranges ?? []).map((r) => {
    const len = r.prefix_len;
    return `${r.address_prefix ?? ''}/${len === undefined ? 0 : typeof len === 'number' ? len : len.value}`;
  });
  return {
    serverNames: match?.server_names ?? [],
    ...(dp !== undefined ? { destinationPort: typeof dp === 'number' ? dp : dp.value } : {}),
    prefixRanges,
    ...(match?.transport_protocol ? { transportProtocol: match.transport_protocol } : {}),
    applicationProtocols: match?.application_protocols ?? [],
    ...(isDefault ? { isDefault } : {}),
    tcpClusters,
    ...(rdsName !== undefined ? { rdsName } : {}),
    ...(inlineRoute ? { inlineRoute } : {}),
  };
}

/** Every route configuration name the listeners refer to (what Envoy asks RDS for). */
export function routeNamesOf(listeners: readonly ProxyListener[]): string[] {
  const names = new Set<string>();
  for (const l of listeners) for (const fc of l.filterChains) if (fc.rdsName) names.add(fc.rdsName);
  return [...names].sort();
}

// ---------------------------------------------------------------------------------------------
// config dumps

const dumpSectionSchema = z.object({ '@type': str.optional() }).loose();

/**
 * Parses a config dump in any of the supported forms: Envoy admin `/config_dump`, istiod's
 * `/debug/config_dump`, or `istioctl proxy-config cluster|listener|route -o json` (arrays).
 * Several documents (e.g. separate cluster and route files) merge into one view.
 */
export function parseConfigDump(...bodies: readonly string[]): ProxyView {
  const clusters: RawResources['clusters'][number][] = [];
  const listeners: RawResources['listeners'][number][] = [];
  const routes: RawResources['routes'][number][] = [];
  const endpoints: { resource: unknown }[] = [];
  let haveEndpoints = false;
  let dropped = 0;
  for (const body of bodies) {
    const doc = toSnakeKeys(parseJsonText(body, 'config dump'));
    if (Array.isArray(doc)) {
      // istioctl proxy-config … -o json: bare resources; tell them apart by their fields.
      for (const r of doc) {
        const o = anyObj.safeParse(r);
        if (!o.success) {
          dropped++;
          continue;
        }
        if ('virtual_hosts' in o.data) routes.push({ resource: r });
        else if (
          'filter_chains' in o.data ||
          'default_filter_chain' in o.data ||
          ('address' in o.data && 'traffic_direction' in o.data)
        )
          listeners.push({ resource: r });
        else if ('cluster_name' in o.data && 'endpoints' in o.data) {
          haveEndpoints = true;
          endpoints.push({ resource: r });
        } else if ('name' in o.data) clusters.push({ resource: r });
        else dropped++;
      }
      continue;
    }
    const configs = z.object({ configs: z.array(z.unknown()) }).safeParse(doc);
    if (!configs.success) throw new Error('config dump has neither "configs" nor is an array of resources');
    for (const section of configs.data.configs) {
      const s = dumpSectionSchema.safeParse(section);
      if (!s.success) {
        dropped++;
        continue;
      }
      const type = s.data['@type'] ?? '';
      const d = s.data as Record<string, unknown>;
      if (type.endsWith('.ClustersConfigDump')) {
        for (const e of arr(d.static_clusters)) clusters.push(entry(e, 'cluster'));
        for (const e of arr(d.dynamic_active_clusters)) clusters.push(entry(e, 'cluster'));
      } else if (type.endsWith('.ListenersConfigDump')) {
        for (const e of arr(d.static_listeners)) listeners.push(entry(e, 'listener'));
        for (const e of arr(d.dynamic_listeners)) {
          const active = (e as { active_state?: unknown }).active_state;
          if (active) listeners.push(entry(active, 'listener'));
        }
      } else if (type.endsWith('.RoutesConfigDump')) {
        for (const e of arr(d.static_route_configs)) routes.push(entry(e, 'route_config'));
        for (const e of arr(d.dynamic_route_configs)) routes.push(entry(e, 'route_config'));
      } else if (type.endsWith('.EndpointsConfigDump')) {
        haveEndpoints = true;
        for (const e of [...arr(d.static_endpoint_configs), ...arr(d.dynamic_endpoint_configs)])
          endpoints.push({ resource: (e as { endpoint_config?: unknown }).endpoint_config });
      }
    }
  }
  const view = proxyViewOf({ clusters, listeners, routes, ...(haveEndpoints ? { endpoints } : {}) });
  return { ...view, dropped: view.dropped + dropped };
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function entry(e: unknown, field: string): { resource: unknown; versionInfo?: string; lastUpdated?: string } {
  const o = (e ?? {}) as Record<string, unknown>;
  return {
    resource: o[field],
    ...(typeof o.version_info === 'string' && o.version_info ? { versionInfo: o.version_info } : {}),
    ...(typeof o.last_updated === 'string' ? { lastUpdated: o.last_updated } : {}),
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
