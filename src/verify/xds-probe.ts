/**
 * The xDS probe: an ADS client that connects to istiod (plaintext 15010) as a sidecar in a
 * chosen namespace and receives what such a sidecar would, with no pod. The flow is Envoy's
 * (and istio/istio pkg/adsc's): CDS wildcard, EDS for the EDS clusters, LDS wildcard, RDS for
 * the route names the listeners refer to; every response is ACKed with its version and nonce,
 * so istiod's /debug/syncz shows the probe in sync.
 */
import { randomBytes } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { grpcJs } from '../util/lazy-modules.js';
import { proxyViewOf, routeNamesOf, type ProxyView, type RawResources } from './proxy-config.js';
import type { XdsKind } from './syncz.js';
import { HopReadError } from './types.js';
import { decodeNameTable, TypeUrl, xdsPackageDefinition } from './xds-protos.js';
import type { ProxyNameInfo } from './proxy-config.js';

export interface XdsProbeOptions {
  /** host:port of istiod's plaintext xDS. */
  readonly address: string;
  /** Namespace the probe pretends to run in (what it receives depends on exportTo, Sidecars). */
  readonly namespace: string;
  /** Pod name part of the node id; default `registry-bridge-probe-<random>`. */
  readonly podName?: string;
  /** A valid IP for the node id (istiod rejects ids without one). */
  readonly ip?: string;
  readonly clusterId?: string;
  /** Extra node metadata (string values), e.g. ISTIO_VERSION. */
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * Present as a sidecar that captures DNS (node metadata DNS_CAPTURE and DNS_AUTO_ALLOCATE, as
   * istio-agent sets them): istiod then sends listeners bound to auto-allocated addresses and the
   * DNS name table (NDS), which the probe subscribes to.
   */
  readonly dnsCapture?: boolean;
  /** Clock, for the time each response arrived. */
  readonly now?: () => number;
}

interface TypeState {
  version: string;
  nonce: string;
  at: number;
  names: string[];
  resources: unknown[];
  /** Per resource name, the version of the response that carried it and when it arrived. */
  received: Map<string, { version: string; at: number }>;
}

export interface XdsSnapshot {
  readonly view: ProxyView;
  readonly received: ReadonlyMap<string, { readonly version: string; readonly at: number }>;
  /** The last response's version_info per kind. */
  readonly versions: Readonly<Partial<Record<XdsKind, string>>>;
}

interface DiscoveryResponse {
  version_info?: string;
  nonce?: string;
  type_url?: string;
  resources?: unknown[];
}

const kindOf: Record<string, XdsKind> = {
  [TypeUrl.cluster]: 'cluster',
  [TypeUrl.endpoint]: 'endpoint',
  [TypeUrl.listener]: 'listener',
  [TypeUrl.route]: 'route',
};

/** What the verifier reads from an xDS probe (the probe itself, or one that reconnects). */
export interface XdsView {
  readonly proxyId: string;
  readonly namespace: string;
  readonly address: string;
  /** The current view; throws when there is none to give (the stream failed or is not open). */
  snapshot(): XdsSnapshot;
  versionOf(kind: XdsKind, name: string): string | undefined;
}

type AdsStream = grpc.ClientDuplexStream<Record<string, unknown>, DiscoveryResponse>;

export class XdsProbe implements XdsView {
  readonly nodeId: string;
  /** istiod's proxy id (`<pod>.<namespace>`), as /debug/syncz and config_dump?proxyID= use it. */
  readonly proxyId: string;
  readonly namespace: string;
  readonly address: string;
  private readonly client: grpc.Client;
  private readonly stream: AdsStream;
  private readonly state = new Map<XdsKind, TypeState>();
  private readonly waiters = new Set<() => void>();
  private readonly now: () => number;
  private routeNames: string[] = [];
  private edsNames: string[] = [];
  private failure: Error | undefined;
  private readonly failed: Promise<Error>;
  private onFailed: (err: Error) => void = () => undefined;
  private closed = false;
  readonly dnsCapture: boolean;
  private nameTable: Map<string, ProxyNameInfo> | undefined;

  private constructor(options: XdsProbeOptions) {
    this.now = options.now ?? Date.now;
    this.failed = new Promise<Error>((resolve) => (this.onFailed = resolve));
    this.dnsCapture = options.dnsCapture ?? false;
    this.namespace = options.namespace;
    this.address = options.address;
    const pod = options.podName ?? `registry-bridge-probe-${randomBytes(3).toString('hex')}`;
    this.proxyId = `${pod}.${options.namespace}`;
    this.nodeId = `sidecar~${options.ip ?? '10.255.0.1'}~${this.proxyId}~${options.namespace}.svc.cluster.local`;
    const pkg = grpcJs().loadPackageDefinition(xdsPackageDefinition()) as unknown as {
      envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
    };
    const Ads = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;
    this.client = new Ads(options.address, grpcJs().credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    const method = (this.client as unknown as { StreamAggregatedResources: () => AdsStream }).StreamAggregatedResources;
    this.stream = method.call(this.client);
    // A throw inside grpc-js's 'data' event would end the process: a response that cannot be
    // handled fails the probe instead.
    this.stream.on('data', (r: DiscoveryResponse) => {
      try {
        this.onResponse(r);
      } catch (err) {
        this.fail(new HopReadError(`xDS response from ${options.address} not understood: ${(err as Error).message}`));
      }
    });
    this.stream.on('error', (err: Error) =>
      this.fail(new HopReadError(`xDS stream to ${options.address}: ${err.message}`, { cause: err, final: true })),
    );
    this.stream.on('end', () =>
      this.fail(new HopReadError(`xDS stream to ${options.address} closed by istiod`, { final: true })),
    );
    // google.protobuf.Value comes from protobufjs's bundled descriptors, whose field names are
    // camelCase even with keepCase (stringValue, structValue).
    const metadata: Record<string, unknown> = {
      NAMESPACE: { stringValue: options.namespace },
      CLUSTER_ID: { stringValue: options.clusterId ?? 'Kubernetes' },
      PROXY_CONFIG: { structValue: { fields: {} } },
      LABELS: { structValue: { fields: { app: { stringValue: 'registry-bridge-probe' } } } },
    };
    const extra = {
      ...(this.dnsCapture ? { DNS_CAPTURE: 'true', DNS_AUTO_ALLOCATE: 'true' } : {}),
      ...options.metadata,
    };
    for (const [k, v] of Object.entries(extra)) metadata[k] = { stringValue: v };
    // CDS and LDS wildcard, as Envoy starts; the node goes with the first request only.
    this.write({
      type_url: TypeUrl.cluster,
      node: { id: this.nodeId, cluster: 'registry-bridge-probe', metadata: { fields: metadata } },
    });
    this.write({ type_url: TypeUrl.listener });
    if (this.dnsCapture) this.write({ type_url: TypeUrl.nameTable });
  }

  /** Connects; resolves once CDS, LDS (and RDS when listeners name routes) have arrived. */
  static async connect(options: XdsProbeOptions, signal?: AbortSignal, timeoutMs = 15_000): Promise<XdsProbe> {
    const probe = new XdsProbe(options);
    try {
      await probe.waitFor(() => probe.initialised(), signal, timeoutMs, 'initial CDS/LDS/RDS');
    } catch (err) {
      probe.close();
      throw err;
    }
    return probe;
  }

  private initialised(): boolean {
    if (!this.state.has('cluster') || !this.state.has('listener')) return false;
    if (this.routeNames.length > 0 && !this.state.has('route')) return false;
    if (this.dnsCapture && !this.nameTable) return false;
    return true;
  }

  private write(req: Record<string, unknown>): void {
    if (!this.closed) this.stream.write(req);
  }

  private onResponse(r: DiscoveryResponse): void {
    const type = r.type_url ?? '';
    const kind = kindOf[type];
    if (type === TypeUrl.nameTable) {
      this.onNameTable(r);
      return;
    }
    if (!kind) {
      // A type we did not ask for: NACK-free ignore, but still ACK to keep istiod's state tidy.
      this.write({ type_url: type, version_info: r.version_info ?? '', response_nonce: r.nonce ?? '' });
      return;
    }
    const at = this.now();
    const version = r.version_info ?? '';
    const resources = (r.resources ?? []).filter((x) => x !== null && typeof x === 'object');
    const prev = this.state.get(kind);
    const received = new Map<string, { version: string; at: number }>();
    for (const res of resources) {
      const name = nameOf(res);
      if (name === undefined) continue;
      const before = prev?.received.get(name);
      const prevRes = prev?.resources.find((p) => nameOf(p) === name);
      // Keep the first arrival of an unchanged resource: "since when" means since it changed.
      received.set(
        name,
        before && prevRes && JSON.stringify(prevRes) === JSON.stringify(res) ? before : { version, at },
      );
    }
    const names = kind === 'route' ? this.routeNames : kind === 'endpoint' ? this.edsNames : [];
    this.state.set(kind, { version, nonce: r.nonce ?? '', at, names, resources, received });
    // ACK: same type, the version and nonce we accept, the same subscription.
    this.write({ type_url: type, version_info: version, response_nonce: r.nonce ?? '', resource_names: names });

    if (kind === 'listener') {
      const view = proxyViewOf({ clusters: [], listeners: resources.map((resource) => ({ resource })), routes: [] });
      const wanted = routeNamesOf(view.listeners);
      if (wanted.join('\n') !== this.routeNames.join('\n')) {
        this.routeNames = wanted;
        const st = this.state.get('route');
        this.write({
          type_url: TypeUrl.route,
          resource_names: wanted,
          ...(st ? { version_info: st.version, response_nonce: st.nonce } : {}),
        });
      }
    } else if (kind === 'cluster') {
      const wanted = resources
        .filter((c) => (c as { type?: string }).type === 'EDS')
        .map((c) => nameOf(c)!)
        .filter((n) => n !== undefined)
        .sort();
      if (wanted.join('\n') !== this.edsNames.join('\n')) {
        this.edsNames = wanted;
        const st = this.state.get('endpoint');
        this.write({
          type_url: TypeUrl.endpoint,
          resource_names: wanted,
          ...(st ? { version_info: st.version, response_nonce: st.nonce } : {}),
        });
      }
    }
    for (const w of [...this.waiters]) w();
  }

  private onNameTable(r: DiscoveryResponse): void {
    const table = new Map<string, ProxyNameInfo>();
    for (const res of r.resources ?? []) {
      const value = (res as { value?: unknown }).value;
      if (value instanceof Uint8Array) for (const [h, info] of decodeNameTable(value)) table.set(h, info);
    }
    this.nameTable = table;
    this.write({ type_url: TypeUrl.nameTable, version_info: r.version_info ?? '', response_nonce: r.nonce ?? '' });
    for (const w of [...this.waiters]) w();
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.failure ??= err;
    this.onFailed(this.failure);
    for (const w of [...this.waiters]) w();
  }

  /** Resolves with the error once the stream has failed or istiod closed it (never after close()). */
  whenFailed(): Promise<Error> {
    return this.failed;
  }

  /** The current view; throws when the stream has failed. */
  snapshot(): XdsSnapshot {
    if (this.failure) throw this.failure;
    const raw = (k: XdsKind) =>
      (this.state.get(k)?.resources ?? []).map((resource) => ({ resource, typeUrl: TypeUrl[k] }));
    const rawResources: RawResources = {
      clusters: raw('cluster'),
      listeners: raw('listener'),
      routes: raw('route'),
      endpoints: raw('endpoint'),
    };
    const received = new Map<string, { version: string; at: number }>();
    for (const k of ['cluster', 'listener', 'route'] as const)
      for (const [n, r] of this.state.get(k)?.received ?? []) received.set(n, r);
    const versions: Partial<Record<XdsKind, string>> = {};
    for (const [k, s] of this.state) versions[k] = s.version;
    const view = proxyViewOf(rawResources);
    return { view: this.nameTable ? { ...view, nameTable: this.nameTable } : view, received, versions };
  }

  /** Per resource name and kind: the version that last changed it (for the sync hop). */
  versionOf(kind: XdsKind, name: string): string | undefined {
    return this.state.get(kind)?.received.get(name)?.version;
  }

  /** Resolves when `predicate` holds after a response (or now); rejects on failure or timeout. */
  async waitFor(
    predicate: () => boolean,
    signal: AbortSignal | undefined,
    timeoutMs: number,
    what = 'condition',
  ): Promise<void> {
    if (this.failure) throw this.failure;
    if (predicate()) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (this.failure) done(this.failure);
        else if (predicate()) done();
      };
      const onAbort = () => done(new HopReadError(`xDS ${what}: aborted`));
      const timer = setTimeout(
        () => done(new HopReadError(`xDS ${what}: nothing after ${timeoutMs} ms from ${this.address}`)),
        timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(check);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.cancel();
    this.client.close();
  }
}

function nameOf(resource: unknown): string | undefined {
  const o = resource as { name?: unknown; cluster_name?: unknown };
  if (typeof o.name === 'string') return o.name;
  if (typeof o.cluster_name === 'string') return o.cluster_name;
  return undefined;
}
