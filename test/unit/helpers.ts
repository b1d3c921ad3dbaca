import type { Instance, RegistryService } from '../../src/model/service.js';
import { defaultSynthOptions, type ServiceEntrySpec, type SynthOptions } from '../../src/synth/index.js';

export function inst(address: string, port: number, extra: Partial<Instance> = {}): Instance {
  return { address, port, weight: 1, healthy: true, enabled: true, metadata: {}, ...extra };
}

export function svc(name: string, instances: Instance[], extra: Partial<RegistryService> = {}): RegistryService {
  return { key: { source: 'test', namespace: 'public', group: 'DEFAULT_GROUP', name }, instances, ...extra };
}

export const options: SynthOptions = {
  ...defaultSynthOptions,
  hostTemplate: '{service}.{group}.{namespace}.nacos',
  namespace: 'mesh',
};

/** A ServiceEntry spec that both the bridge and Istio accept: the base the refusal tables patch one field of. */
export const baseServiceEntrySpec: ServiceEntrySpec = {
  hosts: ['orders.example'],
  location: 'MESH_INTERNAL',
  resolution: 'STATIC',
  ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
  endpoints: [{ address: '10.0.0.1' }],
};
