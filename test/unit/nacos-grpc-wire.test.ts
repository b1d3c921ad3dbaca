import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { decodePayload, encodePayload, responseError } from '../../adapters/nacos/grpc-wire.js';

describe('Nacos gRPC wire format', () => {
  it('round-trips a payload: type and headers in the metadata, the body as JSON in an Any', () => {
    const bytes = encodePayload({
      type: 'SubscribeServiceRequest',
      headers: { accessToken: 't' },
      body: { namespace: 'public', serviceName: 'orders', subscribe: true },
    });
    const back = decodePayload(bytes);
    expect(back).toEqual({
      type: 'SubscribeServiceRequest',
      headers: { accessToken: 't' },
      body: { namespace: 'public', serviceName: 'orders', subscribe: true },
    });
  });

  it('puts the fields where the servers read them (Payload.metadata = 2, .body = 3; Metadata.type = 3, headers = 7; Any.value = 2)', () => {
    const bytes = encodePayload({ type: 'HealthCheckRequest', headers: {}, body: { module: 'internal' } });
    const r = protobuf.Reader.create(bytes);
    const fields: Record<number, Uint8Array> = {};
    while (r.pos < r.len) {
      const tag = r.uint32();
      fields[tag >>> 3] = r.bytes();
    }
    expect(Object.keys(fields).map(Number).sort()).toEqual([2, 3]);
    const meta = protobuf.Reader.create(fields[2]!);
    expect(meta.uint32() >>> 3).toBe(3);
    expect(meta.string()).toBe('HealthCheckRequest');
    const any = protobuf.Reader.create(fields[3]!);
    let value = '';
    while (any.pos < any.len) {
      const tag = any.uint32();
      const v = any.bytes();
      if (tag >>> 3 === 2) value = Buffer.from(v).toString('utf8');
    }
    expect(JSON.parse(value)).toEqual({ module: 'internal' });
  });

  it('rejects a body that is not a JSON object, naming the payload type', () => {
    const root = protobuf.Root.fromJSON({
      nested: {
        Any: { fields: { typeUrl: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
        Metadata: { fields: { type: { type: 'string', id: 3 } } },
        Payload: { fields: { metadata: { type: 'Metadata', id: 2 }, body: { type: 'Any', id: 3 } } },
      },
    });
    const P = root.lookupType('Payload');
    const raw = (value: string) =>
      Buffer.from(
        P.encode(
          P.fromObject({ metadata: { type: 'NotifySubscriberRequest' }, body: { value: Buffer.from(value) } }),
        ).finish(),
      );
    expect(() => decodePayload(raw('not json'))).toThrow('payload NotifySubscriberRequest: body is not JSON');
    expect(() => decodePayload(raw('[1]'))).toThrow('body is not a JSON object');
    expect(decodePayload(raw('')).body).toEqual({});
  });

  it('judges responses by type and resultCode (r-nacos sends no "success")', () => {
    expect(
      responseError(
        { type: 'SubscribeServiceResponse', headers: {}, body: { resultCode: 200, errorCode: 0 } },
        'SubscribeServiceResponse',
      ),
    ).toBeUndefined();
    expect(
      responseError(
        {
          type: 'ErrorResponse',
          headers: {},
          body: { resultCode: 500, errorCode: 301, message: 'Connection is unregistered.' },
        },
        'SubscribeServiceResponse',
      ),
    ).toBe('ErrorResponse (resultCode 500 errorCode 301): Connection is unregistered.');
    expect(
      responseError(
        {
          type: 'SubscribeServiceResponse',
          headers: {},
          body: { resultCode: 403, errorCode: 403, message: 'unknown user!' },
        },
        'SubscribeServiceResponse',
      ),
    ).toMatch(/resultCode 403/);
  });
});
