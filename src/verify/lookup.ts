/**
 * "Is host H in this registryz / config dump, and with what?": the answer without a
 * ServiceEntry to compare with (`verify --host H --registryz FILE`). Pure: sources are parsed
 * already; the output is ordered.
 */
import { clusterName } from './compare.js';
import { droppedProxyText, type ProxyView } from './proxy-config.js';
import { droppedText, type DroppedElement, type RegistryEntry } from './registryz.js';

export interface RegistryLookup {
  readonly kind: 'registryz';
  readonly source: string;
  readonly found: boolean;
  readonly entries: readonly RegistryEntry[];
  /** registryz elements of this host that could not be read. */
  readonly unreadable: readonly string[];
  /** How many services the source lists (for "not in … (N services)"). */
  readonly total: number;
}

export interface ProxyLookup {
  readonly kind: 'proxy';
  readonly source: string;
  readonly found: boolean;
  readonly clusters: readonly { readonly name: string; readonly type: string; readonly endpoints?: number }[];
  readonly routes: readonly {
    readonly routeConfig: string;
    readonly virtualHost: string;
    readonly domains: readonly string[];
    readonly clusters: readonly string[];
  }[];
  readonly listeners: readonly {
    readonly listener: string;
    readonly serverNames: readonly string[];
    readonly clusters: readonly string[];
  }[];
  /** Elements of this host (its clusters, EDS, `<host>:<port>` routes) that could not be read. */
  readonly unreadable: readonly string[];
}

export type SourceLookup = RegistryLookup | ProxyLookup;

export interface HostLookup {
  readonly host: string;
  /** Found in every source. */
  readonly found: boolean;
  readonly sources: readonly SourceLookup[];
}

export function lookupRegistry(
  host: string,
  source: string,
  entries: readonly RegistryEntry[],
  dropped: readonly DroppedElement[],
): RegistryLookup {
  const mine = entries.filter((e) => e.hostname === host);
  const unreadable = dropped.filter((d) => d.hostname === host).map(droppedText);
  return { kind: 'registryz', source, found: mine.length > 0, entries: mine, unreadable, total: entries.length };
}

const isHostCluster = (host: string, name: string) => name.startsWith('outbound|') && name.endsWith(`||${host}`);

export function lookupProxy(host: string, source: string, view: ProxyView): ProxyLookup {
  const clusters = [...view.clusters.values()]
    .filter((c) => isHostCluster(host, c.name))
    .map((c) => {
      const eds = view.endpoints?.get(c.name);
      return { name: c.name, type: c.type, ...(eds ? { endpoints: eds.endpoints } : {}) };
    })
    .sort((a, b) => cmp(a.name, b.name));
  const routes: ProxyLookup['routes'][number][] = [];
  for (const rc of [...view.routes.values()].sort((a, b) => cmp(a.name, b.name)))
    for (const vh of rc.virtualHosts)
      if (vh.name.startsWith(`${host}:`) || vh.domains.some((d) => d === host || d.startsWith(`${host}:`)))
        routes.push({ routeConfig: rc.name, virtualHost: vh.name, domains: vh.domains, clusters: vh.clusters });
  const listeners: ProxyLookup['listeners'][number][] = [];
  for (const l of view.listeners)
    for (const fc of l.filterChains)
      if (fc.serverNames.includes(host) || fc.tcpClusters.some((c) => isHostCluster(host, c)))
        listeners.push({ listener: l.name, serverNames: fc.serverNames, clusters: fc.tcpClusters });
  const unreadable = view.droppedElements
    .filter((d) => d.name !== undefined && (isHostCluster(host, d.name) || d.name.startsWith(`${host}:`)))
    .map(droppedProxyText);
  return {
    kind: 'proxy',
    source,
    found: clusters.length + routes.length + listeners.length > 0,
    clusters,
    routes,
    listeners,
    unreadable,
  };
}

export function hostLookup(host: string, sources: readonly SourceLookup[]): HostLookup {
  return { host, found: sources.length > 0 && sources.every((s) => s.found), sources };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const field = (name: string, value: string) => `    ${name.padEnd(11)} ${value}`;

function registryLines(r: RegistryLookup): string[] {
  const lines: string[] = [];
  for (const e of r.entries) {
    const who = e.objectName ? `ServiceEntry ${e.namespace ?? '?'}/${e.objectName}` : `namespace ${e.namespace ?? '?'}`;
    lines.push(field('from', `${who} (registry ${e.registry ?? '?'})`));
    lines.push(
      field(
        'ports',
        e.ports.length === 0
          ? 'none'
          : [...e.ports]
              .sort((a, b) => a.port - b.port)
              .map((p) => `${p.port}/${p.protocol ?? '?'}${p.name ? ` (${p.name})` : ''}`)
              .join(', '),
      ),
    );
    lines.push(field('resolution', e.resolution ?? 'not shown'));
    lines.push(
      field(
        'location',
        e.meshExternal === undefined ? 'not shown' : e.meshExternal ? 'MESH_EXTERNAL' : 'MESH_INTERNAL',
      ),
    );
    lines.push(field('addresses', e.addresses.length ? e.addresses.join(', ') : 'none'));
    lines.push(field('exportTo', e.exportTo ? e.exportTo.join(', ') : "istiod's default"));
    if (e.creationTime) lines.push(field('created', e.creationTime));
  }
  for (const u of r.unreadable) lines.push(field('unreadable', u));
  return lines;
}

function proxyLines(p: ProxyLookup): string[] {
  const lines: string[] = [];
  for (const c of p.clusters)
    lines.push(field('cluster', `${c.name} ${c.type}${c.endpoints !== undefined ? `, ${c.endpoints} endpoints` : ''}`));
  for (const r of p.routes)
    lines.push(
      field('route', `"${r.routeConfig}": virtual host ${r.virtualHost} → ${r.clusters.join(', ') || 'no cluster'}`),
    );
  for (const l of p.listeners)
    lines.push(
      field(
        'listener',
        `${l.listener}${l.serverNames.length ? ` (server names ${l.serverNames.join(', ')})` : ''} → ${l.clusters.join(', ') || 'no tcp_proxy'}`,
      ),
    );
  for (const u of p.unreadable) lines.push(field('unreadable', u));
  return lines;
}

/** Text for people: one block per host and source. */
export function renderLookup(results: readonly HostLookup[]): string {
  const lines: string[] = [];
  for (const h of results) {
    for (const s of h.sources) {
      const where = s.kind === 'registryz' ? s.source : `config dump ${s.source}`;
      if (s.found) lines.push(`✓ ${h.host}  in ${where}`);
      else if (s.unreadable.length > 0) lines.push(`! ${h.host}  unreadable in ${where}`);
      else
        lines.push(
          `✗ ${h.host}  not in ${where}${s.kind === 'registryz' ? ` (${s.total} services)` : ` (no cluster ${clusterName(0, h.host).replace('|0|', '|<port>|')})`}`,
        );
      lines.push(...(s.kind === 'registryz' ? registryLines(s) : proxyLines(s)));
    }
  }
  const found = results.filter((r) => r.found).length;
  lines.push(`${found}/${results.length} hosts found`);
  return lines.join('\n') + '\n';
}
