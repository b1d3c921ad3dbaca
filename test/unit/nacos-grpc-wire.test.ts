import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import {
  decodePayload,
  encodePayload,
  fuzzyWatchBody,
  fuzzyWatchPattern,
  parseFuzzyNotice,
  parseServiceKey,
  parseServiceListResponse,
  responseError,
  serviceKeyOf,
  serviceListBody,
  serviceQueryBody,
} from '../../adapters/nacos/grpc-wire.js';

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

describe('Nacos gRPC naming requests (shapes of alibaba/nacos api naming/remote)', () => {
  it('ServiceListRequest: 1-based page, the group by name, namespace field', () => {
    expect(serviceListBody('ns-a', 'GROUP_B', 1, 500)).toMatchObject({
      namespace: 'ns-a',
      groupName: 'GROUP_B',
      pageNo: 1,
      pageSize: 500,
      module: 'naming',
    });
  });

  it('ServiceListResponse: names without the group@@ prefix (2.x sends it, 3.x does not), count kept', () => {
    expect(parseServiceListResponse({ count: 3, serviceNames: ['G@@a', 'b', 'G@@providers:x:1.0:'] })).toEqual({
      count: 3,
      names: ['a', 'b', 'providers:x:1.0:'],
    });
    expect(parseServiceListResponse({ resultCode: 200 })).toEqual({ count: 0, names: [] });
    expect(parseServiceListResponse({ serviceNames: [1] })).toBeInstanceOf(Error);
    expect(parseServiceListResponse({ serviceNames: 'a' })).toBeInstanceOf(Error);
  });

  it('ServiceQueryRequest: no UDP port, healthyOnly as asked', () => {
    expect(serviceQueryBody({ namespaceId: 'n', group: 'g', name: 's' }, true)).toEqual({
      namespace: 'n',
      serviceName: 's',
      groupName: 'g',
      cluster: '',
      healthyOnly: true,
      udpPort: 0,
      module: 'naming',
    });
  });

  it('fuzzy-watch pattern <ns>>><group>>><service>, public for the empty namespace', () => {
    expect(fuzzyWatchPattern('ns-a', 'DEFAULT_GROUP')).toBe('ns-a>>DEFAULT_GROUP>>*');
    expect(fuzzyWatchPattern('', 'G', 'orders')).toBe('public>>G>>orders');
  });

  it('NamingFuzzyWatchRequest: WATCH with the known service keys, CANCEL_WATCH', () => {
    expect(fuzzyWatchBody('n', 'n>>G>>*', true, ['n@@G@@a'])).toEqual({
      namespace: 'n',
      groupKeyPattern: 'n>>G>>*',
      receivedGroupKeys: ['n@@G@@a'],
      watchType: 'WATCH',
      initializing: true,
      module: 'naming',
    });
    expect(fuzzyWatchBody('n', 'n>>G>>*', false).watchType).toBe('CANCEL_WATCH');
  });

  it('service keys <ns>@@<group>@@<name> both ways; a name may hold @@, a key without three parts is none', () => {
    expect(parseServiceKey('ns@@G@@orders')).toEqual({ namespaceId: 'ns', group: 'G', name: 'orders' });
    expect(parseServiceKey('ns@@G@@a@@b')).toEqual({ namespaceId: 'ns', group: 'G', name: 'a@@b' });
    expect(parseServiceKey('ns@@orders')).toBeUndefined();
    expect(parseServiceKey('ns@@@@orders')).toBeUndefined();
    expect(serviceKeyOf({ namespaceId: '', group: 'G', name: 'x' })).toBe('public@@G@@x');
    expect(parseServiceKey(serviceKeyOf({ namespaceId: 'a', group: 'b', name: 'c' }))).toEqual({
      namespaceId: 'a',
      group: 'b',
      name: 'c',
    });
  });

  it('reads the fuzzy-watch notices: a change, an init batch, an over-limit notice, a malformed key', () => {
    expect(
      parseFuzzyNotice({
        type: 'NamingFuzzyWatchChangeNotifyRequest',
        headers: {},
        body: { serviceKey: 'n@@G@@new', changedType: 'ADD_SERVICE', syncType: 'FUZZY_WATCH_RESOURCE_CHANGED' },
      }),
    ).toEqual({ kind: 'change', change: 'add', ref: { namespaceId: 'n', group: 'G', name: 'new' } });
    expect(
      parseFuzzyNotice({
        type: 'NamingFuzzyWatchChangeNotifyRequest',
        headers: {},
        body: { serviceKey: 'n@@G@@old', changedType: 'DELETE_SERVICE' },
      }),
    ).toMatchObject({ kind: 'change', change: 'delete' });
    expect(
      parseFuzzyNotice({
        type: 'NamingFuzzyWatchSyncRequest',
        headers: {},
        body: {
          groupKeyPattern: 'n>>G>>*',
          syncType: 'FUZZY_WATCH_INIT_NOTIFY',
          totalBatch: 2,
          currentBatch: 1,
          contexts: [
            { serviceKey: 'n@@G@@a', changedType: 'ADD_SERVICE' },
            { serviceKey: 'n@@G@@b', changedType: 'DELETE_SERVICE' },
            { serviceKey: 'broken', changedType: 'ADD_SERVICE' },
          ],
        },
      }),
    ).toEqual({
      kind: 'sync',
      pattern: 'n>>G>>*',
      syncType: 'FUZZY_WATCH_INIT_NOTIFY',
      added: [{ namespaceId: 'n', group: 'G', name: 'a' }],
      removed: [{ namespaceId: 'n', group: 'G', name: 'b' }],
      totalBatch: 2,
      currentBatch: 1,
    });
    expect(
      parseFuzzyNotice({
        type: 'NamingFuzzyWatchSyncRequest',
        headers: {},
        body: { groupKeyPattern: 'n>>G>>*', syncType: 'FUZZY_WATCH_RESOURCE_OVER_LIMIT' },
      }),
    ).toEqual({ kind: 'over-limit', pattern: 'n>>G>>*', syncType: 'FUZZY_WATCH_RESOURCE_OVER_LIMIT' });
    expect(
      parseFuzzyNotice({ type: 'NamingFuzzyWatchChangeNotifyRequest', headers: {}, body: { serviceKey: 'x' } }).kind,
    ).toBe('malformed');
  });
});
