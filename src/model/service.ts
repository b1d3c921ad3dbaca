/**
 * The registry-neutral model. Adapters translate their registry's data into these types at
 * the boundary; everything after (synth, plan) only sees this.
 */

/** Identity of one registry service. */
export interface ServiceKey {
  /** Name of the configured source (a DNS-1123 label). */
  readonly source: string;
  /** Registry namespace (Nacos namespace id, ZooKeeper root/chroot, ...); '' when none. */
  readonly namespace: string;
  /** Registry group (Nacos group, Dubbo group); '' when none. */
  readonly group: string;
  /** Service name as the registry spells it. */
  readonly name: string;
}

/** A single listening socket of one service instance. */
export interface Instance {
  /** IPv4, IPv6 or DNS hostname. */
  readonly address: string;
  readonly port: number;
  /** Protocol as the registry says it (`http`, `dubbo`, `tri`, `grpc`...); undefined = unknown. */
  readonly protocol?: string;
  /** Relative weight; 0 means draining. Registries use different scales (Nacos 1.0, Dubbo 100). */
  readonly weight: number;
  readonly healthy: boolean;
  readonly enabled: boolean;
  /** Instance metadata; becomes endpoint labels where keys and values are valid labels. */
  readonly metadata: Readonly<Record<string, string>>;
  /** `region/zone/subzone` */
  readonly locality?: string;
  /** Registry cluster name (Nacos clusterName), kept for metadata. */
  readonly cluster?: string;
}

/** A port declared for the service itself, independent of instances. */
export interface DeclaredPort {
  readonly number: number;
  readonly protocol: string;
  readonly name?: string;
}

export interface RegistryService {
  readonly key: ServiceKey;
  /** Explicit host, bypassing the naming template (static registries, external services). */
  readonly host?: string;
  /** Extra template variables (e.g. Dubbo `interface`, `version`). */
  readonly attributes?: Readonly<Record<string, string>>;
  /** Default protocol for instances that name none. */
  readonly protocol?: string;
  /** Ports known without instances (static registries, external DNS services). */
  readonly ports?: readonly DeclaredPort[];
  readonly instances: readonly Instance[];
  /**
   * Set on a Dubbo 3 application-level service (one instance per process, serving every
   * interface of the application). `merge`: its instances join the interface-level services
   * that name this application (`attributes.application`), on the protocols those use, and it
   * is published on its own only when no such service exists. `separate`: published on its own.
   */
  readonly applicationLevel?: {
    readonly application: string;
    readonly mode: 'merge' | 'separate';
    /**
     * The interface-level services (interface, version, group) the registry's Dubbo metadata
     * says this application provides (ZooKeeper: `<root>/metadata/<interface>/…/provider/<app>`,
     * listed in `<root>/mapping/<interface>`; Nacos: the config dataIds
     * `<interface>:<version>:<group>:provider:<app>`), as templates without instances. In `merge` mode
     * instances registered at application level only are published on these services' entries.
     */
    readonly interfaces?: readonly ApplicationInterface[];
    /** Interfaces `<root>/mapping` names for this application whose version and group are unknown. */
    readonly mappedInterfaces?: readonly string[];
    /**
     * Why the registry's Dubbo metadata could not be read for this application (a Nacos config
     * search refused or failed): said in the note of an application left on its own entry.
     */
    readonly metadataError?: string;
  };
}

/** One interface-level service an application provides: a RegistryService without instances. */
export type ApplicationInterface = Omit<RegistryService, 'instances' | 'applicationLevel'>;

/** A registry entry that could not be read into the model; the rest of the source goes on. */
export interface RejectedEntry {
  /** Where it came from: a service key, a znode path, a file position. */
  readonly ref: string;
  readonly reason: string;
}

/** What one full read of a source returned. */
export interface SourceSnapshot {
  readonly source: string;
  readonly services: readonly RegistryService[];
  readonly rejected: readonly RejectedEntry[];
}

/** `source/namespace/group/name`, the stable identity string used in annotations and maps. */
export function serviceKeyString(key: ServiceKey): string {
  let s = keyStrings.get(key);
  if (s === undefined)
    keyStrings.set(key, (s = [key.source, key.namespace, key.group, key.name].map(encodeURIComponent).join('/')));
  return s;
}

/** Keys are immutable: one string per key object (10,000 services would otherwise hold 4 copies each). */
const keyStrings = new WeakMap<ServiceKey, string>();

export function compareServiceKeys(a: ServiceKey, b: ServiceKey): number {
  const x = serviceKeyString(a);
  const y = serviceKeyString(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
