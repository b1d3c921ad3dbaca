import { DUBBO_HOST_TEMPLATE, dubboServiceIdentity } from '../dubbo/naming.js';
import type { RegistryService } from '../../src/model/service.js';
import { renderHost } from '../../src/synth/naming.js';
import { parseDubboNacosName } from './dubbo-name.js';

/** What a Dubbo interface-level service in Nacos contributes to its model service. */
export interface DubboServiceShape {
  /** ServiceKey.name and .group: the interface and the Dubbo group (as the ZooKeeper adapter). */
  readonly name: string;
  readonly group: string;
  /** Explicit host, rendered from the shared Dubbo template: the same as from ZooKeeper. */
  readonly host: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/**
 * undefined: not a Dubbo interface name (a plain Nacos service, or a Dubbo 3 application);
 * 'not-a-service': a Dubbo consumers/configurators/routers entry; else the shared Dubbo
 * identity (adapters/dubbo/naming.ts), so one Dubbo service gets one host in every registry.
 */
export function dubboShape(
  nacosName: string,
  metadata: Readonly<Record<string, string>>,
  where: { readonly source: string; readonly namespace: string } = { source: '', namespace: '' },
  hostTemplate: string = DUBBO_HOST_TEMPLATE,
): DubboServiceShape | 'not-a-service' | undefined | Error {
  const d = parseDubboNacosName(nacosName, metadata);
  if (!d) return undefined;
  if (d.category !== 'providers') return 'not-a-service';
  const naming = dubboServiceIdentity(
    { interface: d.interface, version: d.version, group: d.group },
    metadata.application ?? '',
  );
  const probe: RegistryService = {
    key: { source: where.source, namespace: where.namespace, group: naming.group, name: naming.name },
    attributes: naming.attributes,
    instances: [],
  };
  const host = renderHost(probe, hostTemplate);
  if (host instanceof Error) return host;
  return { name: naming.name, group: naming.group, host, attributes: naming.attributes };
}
