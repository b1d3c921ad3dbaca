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
