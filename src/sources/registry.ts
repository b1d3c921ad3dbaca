import type { AdapterFactory } from './adapter.js';
import { staticAdapter } from '../../adapters/static/index.js';
import { zookeeperAdapter } from '../../adapters/zookeeper/index.js';
import { nacosAdapter } from '../../adapters/nacos/index.js';

/**
 * Every adapter the bridge knows, one line each. Adding a registry = a folder under
 * `adapters/` and one line here.
 */
export const adapterFactories: readonly AdapterFactory[] = [staticAdapter, nacosAdapter, zookeeperAdapter];

export function adapterFor(kind: string): AdapterFactory | undefined {
  return adapterFactories.find((a) => a.kind === kind);
}
