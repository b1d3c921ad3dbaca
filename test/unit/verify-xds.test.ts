import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { proxyViewOf, routeNamesOf } from '../../src/verify/proxy-config.js';
import { TypeUrl, xdsPackageDefinition } from '../../src/verify/xds-protos.js';

describe('xDS protos from @grpc/grpc-js-xds', () => {
  const pkg = grpc.loadPackageDefinition(xdsPackageDefinition()) as unknown as {
    envoy: {
      service: {
        discovery: {
          v3: { AggregatedDiscoveryService: { service: Record<string, grpc.MethodDefinition<unknown, unknown>> } };
        };
      };
    };
  };
  const method = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service.StreamAggregatedResources!;

  it('a DiscoveryResponse decodes with every Any (resources, filter typed_config) expanded in snake_case', () => {
    const wire = method.responseSerialize({
      version_info: '2026-04-23T12:00:05Z/12',
      type_url: TypeUrl.listener,
      nonce: 'n1',
      resources: [
        {
          '@type': TypeUrl.listener,
          name: '0.0.0.0_80',
          address: { socket_address: { address: '0.0.0.0', port_value: 80 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'outbound_0.0.0.0_80',
                    rds: { route_config_name: '80' },
                  },
                },
              ],
            },
          ],
        },
      ],
    });
    const decoded = method.responseDeserialize(wire) as { version_info: string; resources: unknown[] };
    expect(decoded.version_info).toBe('2026-04-23T12:00:05Z/12');
    const l = decoded.resources[0] as Record<string, unknown>;
    expect(l['@type']).toBe(TypeUrl.listener);
    const view = proxyViewOf({
      clusters: [],
      listeners: decoded.resources.map((resource) => ({ resource })),
      routes: [],
    });
    expect(view.listeners[0]).toMatchObject({ name: '0.0.0.0_80', address: '0.0.0.0', port: 80 });
    expect(routeNamesOf(view.listeners)).toEqual(['80']);
  });

  it('node metadata Struct values use the camelCase field names of protobufjs bundled descriptors', () => {
    const wire = method.requestSerialize({
      type_url: TypeUrl.cluster,
      node: {
        id: 'sidecar~10.0.0.1~p.default~default.svc.cluster.local',
        metadata: { fields: { NAMESPACE: { stringValue: 'default' } } },
      },
    });
    const back = method.requestDeserialize(wire) as { node: { metadata: { fields: Record<string, unknown> } } };
    expect(back.node.metadata.fields.NAMESPACE).toEqual({ stringValue: 'default' });
  });
});
