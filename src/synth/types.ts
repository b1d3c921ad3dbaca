import type { ServiceKey } from '../model/service.js';

export type IstioProtocol =
  'HTTP' | 'HTTPS' | 'HTTP2' | 'GRPC' | 'GRPC-Web' | 'TCP' | 'TLS' | 'UDP' | 'Mongo' | 'Redis' | 'MySQL';

export type Resolution = 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE';
export type Location = 'MESH_INTERNAL' | 'MESH_EXTERNAL';

export interface ServicePort {
  readonly number: number;
  readonly name: string;
  readonly protocol: IstioProtocol;
}

export interface WorkloadEndpoint {
  readonly address: string;
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly weight?: number;
  readonly locality?: string;
}

export interface ServiceEntrySpec {
  readonly hosts: readonly string[];
  readonly location: Location;
  readonly resolution: Resolution;
  readonly ports: readonly ServicePort[];
  readonly endpoints?: readonly WorkloadEndpoint[];
  readonly exportTo?: readonly string[];
}

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface ServiceEntryObject {
  readonly apiVersion: string;
  readonly kind: 'ServiceEntry';
  readonly metadata: ObjectMeta;
  readonly spec: ServiceEntrySpec;
}

/** One ServiceEntry the bridge wants to exist. */
export interface DesiredEntry {
  readonly key: ServiceKey;
  readonly name: string;
  readonly namespace: string;
  readonly host: string;
  readonly hash: string;
  readonly object: ServiceEntryObject;
}

/** Something synth noticed and worked around (dropped label, unknown protocol...). */
export interface SynthNote {
  readonly code:
    | 'label-dropped'
    | 'unknown-protocol'
    | 'instance-skipped'
    | 'instance-rejected'
    | 'port-renamed'
    | 'locality-dropped'
    | 'duplicate-instance'
    | 'partial-ports'
    | 'address-zone-stripped'
    | 'application-level-unmapped';
  readonly detail: string;
  /** `address:port` of the instance a note is about, for `instance-rejected`. */
  readonly instance?: string;
}

export type SynthResult =
  | { readonly kind: 'ok'; readonly entry: DesiredEntry; readonly notes: readonly SynthNote[] }
  | {
      /** The service cannot become a ServiceEntry Istio accepts; reported and skipped. */
      readonly kind: 'invalid';
      readonly key: ServiceKey;
      readonly reason: string;
      readonly notes: readonly SynthNote[];
    }
  | {
      /**
       * The service exists but has nothing to publish (no usable instance, no declared port).
       * The plan keeps an existing object for it rather than deleting it (empty protection).
       */
      readonly kind: 'empty';
      readonly key: ServiceKey;
      readonly name: string;
      readonly namespace: string;
      readonly host: string;
      readonly reason: string;
      readonly notes: readonly SynthNote[];
    };
