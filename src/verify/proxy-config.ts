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
import { issueText } from './elements.js';

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
  /** How many elements could not be read. */
  readonly dropped: number;
  /** Each element that could not be read, named, in the order met. */
  readonly droppedElements: readonly DroppedProxyElement[];
}

/**
 * A config dump or xDS element that could not be read: a resource of a known kind, a config
 * dump section, or an element of an istioctl array that is none of the kinds.
 */
export interface DroppedProxyElement {
  readonly kind: 'cluster' | 'listener' | 'route' | 'endpoint' | 'section' | 'element';
  /** Its index in the list that holds it. */
  readonly index: number;
  /** Where it stands: `configs[1].dynamic_active_clusters[3]`, `[4]` (istioctl), `listeners[2]` (xDS). */
  readonly at: string;
  /** The resource's or section's `@type`, or the xDS type it came in. */
  readonly typeUrl?: string;
  /** Its name (cluster, listener, route configuration), or cluster_name for endpoints. */
  readonly name?: string;
  readonly reason: string;
}

/** One line per dropped element, for the report and stderr. */
export function droppedProxyText(d: DroppedProxyElement): string {
  const what = d.kind === 'section' ? 'section' : d.kind === 'element' ? 'element' : d.kind;
  const ids = [d.name, d.typeUrl].filter((x) => x !== undefined);
  return `config dump ${what} ${d.at}${ids.length ? ` (${ids.join(', ')})` : ''} skipped: ${d.reason}`;
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

/** One resource as found, with where it stood (for naming it when it cannot be read). */
export interface RawResource {
  readonly resource: unknown;
  readonly versionInfo?: string;
  readonly lastUpdated?: string;
  /** Where it stands in its document; default `<kind>s[<index>]`. */
  readonly at?: string;
  /** The type it came as (config dump section or xDS response type). */
  readonly typeUrl?: string;
}

export interface RawResources {
  readonly clusters: readonly RawResource[];
  readonly listeners: readonly RawResource[];
  readonly routes: readonly RawResource[];
  readonly endpoints?: readonly RawResource[];
}

const meta = (r: { versionInfo?: string; lastUpdated?: string }) => ({
  ...(r.versionInfo ? { versionInfo: r.versionInfo } : {}),
  ...(r.lastUpdated ? { lastUpdated: r.lastUpdated } : {}),
});

/** Builds the view from resources already in snake_case (xDS) or normalised by toSnakeKeys. */
export function proxyViewOf(raw: RawResources): ProxyView {
  const droppedElements: DroppedProxyElement[] = [];
  /** Each resource of a kind that its schema reads; the others are dropped and named. */
  const readable = <T>(
    kind: DroppedProxyElement['kind'],
    list: readonly RawResource[],
    schema: z.ZodType<T>,
    nameField: string,
  ): { data: T; raw: RawResource }[] => {
    const out: { data: T; raw: RawResource }[] = [];
    list.forEach((r, index) => {
      const p = schema.safeParse(r.resource);
      if (p.success) out.push({ data: p.data, raw: r });
      else droppedElements.push(droppedOf(kind, index, r, nameField, issueText(p.error.issues)));
    });
    return out;
  };
  const clusters = new Map<string, ProxyCluster>();
  for (const { data, raw: c } of readable('cluster', raw.clusters, clusterSchema, 'name')) {
    // Envoy and protojson omit the enum default: no `type` means STATIC.
    const type = data.cluster_type ? `custom:${data.cluster_type.name ?? ''}` : (data.type ?? 'STATIC');
    clusters.set(data.name, { name: data.name, type, ...meta(c) });
  }
  const listeners: ProxyListener[] = [];
  for (const { data, raw: l } of readable('listener', raw.listeners, listenerSchema, 'name')) {
    const chains = [
      ...(data.filter_chains ?? []).map((fc) => filterChainOf(fc)),
      ...(data.default_filter_chain ? [filterChainOf(data.default_filter_chain, true)] : []),
    ];
    const sa = data.address?.socket_address;
    listeners.push({
      name: data.name,
      ...(sa?.address !== undefined ? { address: sa.address } : {}),
      ...(sa?.port_value !== undefined ? { port: sa.port_value } : {}),
      filterChains: chains,
      ...meta(l),
    });
  }
  const routes = new Map<string, ProxyRouteConfig>();
  for (const { data, raw: r } of readable('route', raw.routes, routeConfigSchema, 'name'))
    routes.set(data.name, { ...routeConfigOf(data), ...meta(r) });
  let endpoints: Map<string, ProxyEndpoints> | undefined;
  if (raw.endpoints) {
    endpoints = new Map();
    for (const { data } of readable('endpoint', raw.endpoints, claSchema, 'cluster_name')) {
      const n = (data.endpoints ?? []).reduce((sum, le) => sum + (le.lb_endpoints?.length ?? 0), 0);
      endpoints.set(data.cluster_name, { clusterName: data.cluster_name, endpoints: n });
    }
  }
  return {
    clusters,
    listeners: listeners.sort((a, b) => cmp(a.name, b.name)),
    routes,
    ...(endpoints ? { endpoints } : {}),
    dropped: droppedElements.length,
    droppedElements,
  };
}

/** A resource that its schema did not read, named by where it stood and what it says it is. */
function droppedOf(
  kind: DroppedProxyElement['kind'],
  index: number,
  r: RawResource,
  nameField: string,
  reason: string,
): DroppedProxyElement {
  const o = r.resource !== null && typeof r.resource === 'object' ? (r.resource as Record<string, unknown>) : {};
  const name = o[nameField];
  const type = typeof o['@type'] === 'string' && o['@type'] ? o['@type'] : r.typeUrl;
  return {
    kind,
    index,
    at: r.at ?? `${kind}s[${index}]`,
    ...(type !== undefined ? { typeUrl: type } : {}),
    ...(typeof name === 'string' && name ? { name } : {}),
    reason,
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
  const clusters: RawResource[] = [];
  const listeners: RawResource[] = [];
  const routes: RawResource[] = [];
  const endpoints: RawResource[] = [];
  let haveEndpoints = false;
  const droppedElements: DroppedProxyElement[] = [];
  bodies.forEach((body, n) => {
    const doc = toSnakeKeys(parseJsonText(body, 'config dump'));
    // Several documents merge into one view: a place names its document when there are several.
    const where = (path: string) => (bodies.length > 1 ? `document ${n + 1} ${path}` : path);
    if (Array.isArray(doc)) {
      // istioctl proxy-config … -o json: bare resources; tell them apart by their fields.
      doc.forEach((r: unknown, index) => {
        const at = where(`[${index}]`);
        const o = anyObj.safeParse(r);
        if (!o.success) {
          droppedElements.push({ kind: 'element', index, at, reason: issueText(o.error.issues) });
          return;
        }
        const typeUrl = typeof o.data['@type'] === 'string' ? { typeUrl: o.data['@type'] } : {};
        if ('virtual_hosts' in o.data) routes.push({ resource: r, at, ...typeUrl });
        else if (
          'filter_chains' in o.data ||
          'default_filter_chain' in o.data ||
          ('address' in o.data && 'traffic_direction' in o.data)
        )
          listeners.push({ resource: r, at, ...typeUrl });
        else if ('cluster_name' in o.data && 'endpoints' in o.data) {
          haveEndpoints = true;
          endpoints.push({ resource: r, at, ...typeUrl });
        } else if ('name' in o.data) clusters.push({ resource: r, at, ...typeUrl });
        else
          droppedElements.push({
            kind: 'element',
            index,
            at,
            ...typeUrl,
            reason: 'neither a cluster, listener, route configuration nor endpoint assignment',
          });
      });
      return;
    }
    const configs = z.object({ configs: z.array(z.unknown()) }).safeParse(doc);
    if (!configs.success) throw new Error('config dump has neither "configs" nor is an array of resources');
    configs.data.configs.forEach((section, i) => {
      const s = dumpSectionSchema.safeParse(section);
      if (!s.success) {
        droppedElements.push({
          kind: 'section',
          index: i,
          at: where(`configs[${i}]`),
          reason: issueText(s.error.issues),
        });
        return;
      }
      const type = s.data['@type'] ?? '';
      const d = s.data as Record<string, unknown>;
      /** The entries of one list of this section, each with its place and the section's type. */
      const each = (list: string, field: string, into: RawResource[], inner?: string) =>
        arr(d[list]).forEach((e, j) => {
          const holder = inner === undefined ? e : (e as Record<string, unknown> | null)?.[inner];
          // A listener that is only warming or draining has no active state: not in effect, not read.
          if (inner !== undefined && !holder) return;
          const path = `configs[${i}].${list}[${j}]${inner === undefined ? '' : `.${inner}`}`;
          into.push(entry(holder, field, where(path), type));
        });
      if (type.endsWith('.ClustersConfigDump')) {
        each('static_clusters', 'cluster', clusters);
        each('dynamic_active_clusters', 'cluster', clusters);
      } else if (type.endsWith('.ListenersConfigDump')) {
        each('static_listeners', 'listener', listeners);
        each('dynamic_listeners', 'listener', listeners, 'active_state');
      } else if (type.endsWith('.RoutesConfigDump')) {
        each('static_route_configs', 'route_config', routes);
        each('dynamic_route_configs', 'route_config', routes);
      } else if (type.endsWith('.EndpointsConfigDump')) {
        haveEndpoints = true;
        each('static_endpoint_configs', 'endpoint_config', endpoints);
        each('dynamic_endpoint_configs', 'endpoint_config', endpoints);
      }
    });
  });
  const view = proxyViewOf({ clusters, listeners, routes, ...(haveEndpoints ? { endpoints } : {}) });
  const all = [...droppedElements, ...view.droppedElements];
  return { ...view, dropped: all.length, droppedElements: all };
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function entry(e: unknown, field: string, at: string, typeUrl: string): RawResource {
  const o = (e ?? {}) as Record<string, unknown>;
  return {
    resource: o[field],
    at: `${at}.${field}`,
    ...(typeUrl ? { typeUrl } : {}),
    ...(typeof o.version_info === 'string' && o.version_info ? { versionInfo: o.version_info } : {}),
    ...(typeof o.last_updated === 'string' ? { lastUpdated: o.last_updated } : {}),
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
