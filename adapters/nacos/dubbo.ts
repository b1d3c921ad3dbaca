import { DUBBO_HOST_TEMPLATE, dubboServiceIdentity } from '../dubbo/naming.js';
import type { Instance, RegistryService, ServiceKey } from '../../src/model/service.js';
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

/**
 * Dubbo interface-level instances in Nacos: the Dubbo URL `weight` (Dubbo's scale, default
 * 100) travels in the metadata while the Nacos instance weight stays 1.0. Dubbo balances on the
 * URL weight, so it becomes the instance weight (a Nacos weight of 0, draining, stays 0), as
 * from ZooKeeper; it is not a label. An unreadable value keeps the Nacos weight.
 */
export function withDubboWeight(instance: Instance): Instance {
  const raw = instance.metadata.weight?.trim();
  if (raw === undefined || !/^\d+$/.test(raw)) return instance.weight > 0 ? { ...instance, weight: 100 } : instance;
  return { ...instance, weight: instance.weight > 0 ? Number(raw) : 0 };
}

/**
 * The application a Dubbo 3 application-level Nacos service stands for (its name), when its
 * instances carry what Dubbo writes there (`dubbo.endpoints`, `dubbo.metadata.revision`).
 */
export function dubboApplicationOf(nacosName: string, metadata: Readonly<Record<string, string>>): string | undefined {
  return metadata['dubbo.endpoints'] !== undefined || metadata['dubbo.metadata.revision'] !== undefined
    ? nacosName
    : undefined;
}

/**
 * The model service of one Nacos service (key as Nacos names it: namespace, group, name) and
 * its instances. Dubbo interface-level services are keyed and named like their ZooKeeper
 * twins (interface, Dubbo group) with the Dubbo URL weight; Dubbo 3 application-level services
 * are marked (or left out with `applicationLevel: ignore`). undefined: nothing to publish (a
 * Dubbo consumers/configurators/routers entry, an ignored application).
 */
export function nacosModelService(
  key: ServiceKey,
  instances: readonly Instance[],
  options: {
    readonly hostTemplate?: string | undefined;
    readonly applicationLevel: 'merge' | 'separate' | 'ignore';
  },
): RegistryService | undefined | Error {
  const metadata = instances[0]?.metadata ?? {};
  const dubbo = dubboShape(key.name, metadata, { source: key.source, namespace: key.namespace }, options.hostTemplate);
  if (dubbo === 'not-a-service') return undefined;
  if (dubbo instanceof Error) return new Error(`Dubbo host: ${dubbo.message}`);
  if (dubbo) {
    return {
      key: { ...key, group: dubbo.group, name: dubbo.name },
      host: dubbo.host,
      attributes: { ...dubbo.attributes, nacosGroup: key.group, nacosService: key.name },
      instances: instances.map(withDubboWeight),
    };
  }
  const application = dubboApplicationOf(key.name, metadata);
  if (application === undefined) return { key, instances };
  if (options.applicationLevel === 'ignore') return undefined;
  return {
    key,
    instances: instances.map(withDubboWeight),
    applicationLevel: { application, mode: options.applicationLevel },
  };
}
