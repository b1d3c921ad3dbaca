import protobuf from 'protobufjs';

/**
 * The Nacos 2.x/3.x gRPC wire format (r-nacos speaks the same): every call carries one
 * `Payload { Metadata metadata = 2; google.protobuf.Any body = 3; }` with
 * `Metadata { string type = 3; map<string,string> headers = 7; string clientIp = 8; }`. The body
 * is an `Any` whose `value` holds the request or response as UTF-8 JSON and whose `type_url` is
 * empty; `metadata.type` names the message (`SubscribeServiceRequest`, …). The services have no
 * proto package: `/Request/request` (unary) and `/BiRequestStream/requestBiStream`.
 */
const root = protobuf.Root.fromJSON({
  nested: {
    Any: { fields: { typeUrl: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
    Metadata: {
      fields: {
        type: { type: 'string', id: 3 },
        headers: { keyType: 'string', type: 'string', id: 7 },
        clientIp: { type: 'string', id: 8 },
      },
    },
    Payload: { fields: { metadata: { type: 'Metadata', id: 2 }, body: { type: 'Any', id: 3 } } },
  },
} as protobuf.INamespace);
const Payload = root.lookupType('Payload');

export const UNARY_PATH = '/Request/request';
export const BI_STREAM_PATH = '/BiRequestStream/requestBiStream';

/** A decoded payload: its type name, metadata headers and JSON body. */
export interface NacosMessage {
  readonly type: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Record<string, unknown>;
}

export function encodePayload(m: NacosMessage): Buffer {
  const msg = Payload.fromObject({
    metadata: { type: m.type, headers: { ...m.headers }, clientIp: '' },
    body: { typeUrl: '', value: Buffer.from(JSON.stringify(m.body), 'utf8') },
  });
  return Buffer.from(Payload.encode(msg).finish());
}

/** Throws on bytes that are not a Payload or a body that is not a JSON object. */
export function decodePayload(bytes: Buffer): NacosMessage {
  const msg = Payload.toObject(Payload.decode(bytes), { bytes: Buffer, defaults: true }) as {
    metadata?: { type?: string; headers?: Record<string, string> };
    body?: { value?: Buffer };
  };
  const text = msg.body?.value?.toString('utf8') ?? '';
  let body: unknown;
  try {
    body = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new Error(`payload ${msg.metadata?.type ?? '(no type)'}: body is not JSON`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new Error(`payload ${msg.metadata?.type ?? '(no type)'}: body is not a JSON object`);
  return {
    type: msg.metadata?.type ?? '',
    headers: msg.metadata?.headers ?? {},
    body: body as Record<string, unknown>,
  };
}

/** A Nacos response counts as success on resultCode 200 (r-nacos sends no `success` field). */
export function responseError(m: NacosMessage, expected: string): string | undefined {
  const code = Number(m.body.resultCode ?? 0);
  if (m.type === expected && code === 200) return undefined;
  const errorCode = m.body.errorCode !== undefined ? ` errorCode ${String(m.body.errorCode)}` : '';
  const message = typeof m.body.message === 'string' && m.body.message !== '' ? `: ${m.body.message}` : '';
  return `${m.type || 'empty response'} (resultCode ${code}${errorCode})${message}`;
}

// ---- Naming requests of the gRPC path (shapes from alibaba/nacos api/…/naming/remote). ----

/** A service as the naming requests name it. */
export interface NamingRef {
  readonly namespaceId: string;
  readonly group: string;
  readonly name: string;
}

/**
 * `ServiceListRequest` (AbstractNamingRequest: namespace, serviceName, groupName; pageNo is
 * 1-based, pageSize, selector). The server lists the services whose group equals `groupName`
 * exactly; the selector is unused.
 */
export function serviceListBody(namespaceId: string, group: string, pageNo: number, pageSize: number) {
  return {
    namespace: namespaceId,
    groupName: group,
    serviceName: '',
    pageNo,
    pageSize,
    selector: '',
    module: 'naming',
  };
}

/**
 * A `ServiceListResponse` → its names without the `group@@` prefix (Nacos 2.x sends grouped
 * names, 3.x plain ones) and `count`, which some servers fill with the total and others with
 * the page's length.
 */
export function parseServiceListResponse(body: Record<string, unknown>): { count: number; names: string[] } | Error {
  const names = body.serviceNames ?? [];
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string'))
    return new Error('ServiceListResponse: serviceNames is not a list of strings');
  const count = Number(body.count ?? names.length);
  return {
    count: Number.isFinite(count) ? count : names.length,
    names: (names as string[]).map((n) => (n.includes('@@') ? n.slice(n.indexOf('@@') + 2) : n)),
  };
}

/** `ServiceQueryRequest` (cluster, healthyOnly, udpPort 0: no UDP push). */
export function serviceQueryBody(ref: NamingRef, healthyOnly: boolean) {
  return {
    namespace: ref.namespaceId,
    serviceName: ref.name,
    groupName: ref.group,
    cluster: '',
    healthyOnly,
    udpPort: 0,
    module: 'naming',
  };
}

/** Fuzzy-watch pattern `<namespace>>><group>>><service>` (FuzzyGroupKeyPattern.generatePattern). */
export function fuzzyWatchPattern(namespaceId: string, group: string, service = '*'): string {
  return `${namespaceId === '' ? 'public' : namespaceId}>>${group}>>${service}`;
}

/**
 * `NamingFuzzyWatchRequest`: watchType WATCH or CANCEL_WATCH; `receivedGroupKeys` are the
 * service keys the client already knows (the server's init sync then sends only the rest).
 */
export function fuzzyWatchBody(
  namespaceId: string,
  pattern: string,
  watch: boolean,
  received: readonly string[] = [],
  initializing = true,
) {
  return {
    namespace: namespaceId,
    groupKeyPattern: pattern,
    receivedGroupKeys: [...received],
    watchType: watch ? 'WATCH' : 'CANCEL_WATCH',
    initializing,
    module: 'naming',
  };
}

/** A naming service key `<namespace>@@<group>@@<service>` (NamingUtils.getServiceKey). */
export function parseServiceKey(key: string): NamingRef | undefined {
  const a = key.indexOf('@@');
  const b = a < 0 ? -1 : key.indexOf('@@', a + 2);
  if (a < 0 || b < 0) return undefined;
  const ref = { namespaceId: key.slice(0, a), group: key.slice(a + 2, b), name: key.slice(b + 2) };
  return ref.group === '' || ref.name === '' ? undefined : ref;
}

export function serviceKeyOf(ref: NamingRef): string {
  return `${ref.namespaceId === '' ? 'public' : ref.namespaceId}@@${ref.group}@@${ref.name}`;
}

/** What a fuzzy-watch server request says. */
export type FuzzyNotice =
  | {
      /** A batch of the initial (or a diff) sync: services present (ADD) or gone (DELETE). */
      readonly kind: 'sync';
      readonly pattern: string;
      readonly syncType: string;
      readonly added: readonly NamingRef[];
      readonly removed: readonly NamingRef[];
      readonly totalBatch: number;
      readonly currentBatch: number;
    }
  | { readonly kind: 'change'; readonly change: 'add' | 'delete' | 'other'; readonly ref: NamingRef }
  | { readonly kind: 'over-limit'; readonly pattern: string; readonly syncType: string }
  | { readonly kind: 'malformed'; readonly why: string };

/**
 * `NamingFuzzyWatchSyncRequest` (syncType FUZZY_WATCH_INIT_NOTIFY, FINISH_FUZZY_WATCH_INIT_NOTIFY,
 * FUZZY_WATCH_DIFF_SYNC_NOTIFY, or an over-limit notice; contexts of {serviceKey, changedType})
 * and `NamingFuzzyWatchChangeNotifyRequest` (serviceKey, changedType ADD_SERVICE or
 * DELETE_SERVICE, syncType FUZZY_WATCH_RESOURCE_CHANGED) → one notice.
 */
export function parseFuzzyNotice(m: NacosMessage): FuzzyNotice {
  const b = m.body;
  const syncType = typeof b.syncType === 'string' ? b.syncType : '';
  if (m.type === 'NamingFuzzyWatchChangeNotifyRequest') {
    const ref = typeof b.serviceKey === 'string' ? parseServiceKey(b.serviceKey) : undefined;
    if (!ref)
      return { kind: 'malformed', why: `serviceKey ${JSON.stringify(b.serviceKey)} is not <ns>@@<group>@@<name>` };
    const change = b.changedType === 'ADD_SERVICE' ? 'add' : b.changedType === 'DELETE_SERVICE' ? 'delete' : 'other';
    return { kind: 'change', change, ref };
  }
  const pattern = typeof b.groupKeyPattern === 'string' ? b.groupKeyPattern : '';
  if (/OVER_LIMIT|OVER_FUZZY_WATCH/i.test(syncType)) return { kind: 'over-limit', pattern, syncType };
  const contexts = Array.isArray(b.contexts) ? (b.contexts as unknown[]) : [];
  const added: NamingRef[] = [];
  const removed: NamingRef[] = [];
  for (const c of contexts) {
    const ctx = c as { serviceKey?: unknown; changedType?: unknown } | null;
    const ref = typeof ctx?.serviceKey === 'string' ? parseServiceKey(ctx.serviceKey) : undefined;
    if (!ref) continue;
    (ctx?.changedType === 'DELETE_SERVICE' ? removed : added).push(ref);
  }
  return {
    kind: 'sync',
    pattern,
    syncType,
    added,
    removed,
    totalBatch: Number(b.totalBatch ?? 0) || 0,
    currentBatch: Number(b.currentBatch ?? 0) || 0,
  };
}
