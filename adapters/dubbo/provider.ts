import { isIP } from 'node:net';
import type { Instance } from '../../src/model/service.js';
import type { DubboIdentity } from './naming.js';
import type { DubboUrl } from './url.js';

/**
 * Parameters that change on every restart (or carry secrets) and so must never reach a
 * ServiceEntry: they are dropped from instance metadata here, at the boundary.
 */
export const VOLATILE_PARAMS: ReadonlySet<string> = new Set([
  'timestamp',
  'remote.timestamp',
  'pid',
  'methods',
  'token',
  'default.token',
]);

const MODELLED_PARAMS: ReadonlySet<string> = new Set(['weight', 'enabled', 'disabled']);

/** Protocols that appear in registries but are not providers. */
const NOT_PROVIDER_PROTOCOLS = new Set([
  'consumer',
  'override',
  'absent',
  'route',
  'routers',
  'condition',
  'script',
  'empty',
]);

/** One provider of one Dubbo service, as the model's instance plus its identity. */
export interface DubboProvider {
  readonly identity: DubboIdentity;
  readonly application: string;
  readonly instance: Instance;
}

/**
 * The providers a provider URL (configurators already applied) stands for. Returns an Error
 * naming the problem when the URL cannot be a provider (missing port, non-numeric weight...).
 * An old (2.6) comma list `group=g1,g2` yields one provider per group.
 */
export function dubboProvidersOf(url: DubboUrl, fallbackInterface = ''): DubboProvider[] | Error {
  const p = url.params;
  if (NOT_PROVIDER_PROTOCOLS.has(url.protocol.toLowerCase()))
    return new Error(`"${url.protocol}://" is not a provider URL`);
  const side = p.side;
  if (side !== undefined && side !== '' && side !== 'provider') return new Error(`side=${side}, not a provider`);
  if (url.port === 0) return new Error('missing port');

  let address = url.host;
  if ((address === '' || address === '0.0.0.0' || address === '::') && p.ipv6 !== undefined && isIP(p.ipv6) === 6)
    address = p.ipv6;
  if (address === '') return new Error('missing host');
  if (address === '0.0.0.0' || address === '::')
    return new Error(`host ${address} is not an address clients can reach`);
  if (
    isIP(address) === 0 &&
    !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(address)
  ) {
    return new Error(`host "${address}" is neither an IP address nor a DNS name`);
  }

  let weight = 100; // Dubbo's DEFAULT_WEIGHT
  if (p.weight !== undefined && p.weight !== '') {
    if (!/^\d+$/.test(p.weight.trim())) return new Error(`weight "${p.weight}" is not a non-negative integer`);
    weight = Number(p.weight.trim());
  }
  // RegistryDirectory: `disabled` wins when present, else `enabled` (default true).
  const enabled = p.disabled !== undefined ? p.disabled !== 'true' : p.enabled !== 'false';

  const iface = p.interface || url.path || fallbackInterface;
  if (iface === '') return new Error('no interface (neither interface= nor a path)');
  const version = p.version ?? '';
  const groups = (p.group ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter((g, i, all) => all.indexOf(g) === i);
  const application = p.application ?? '';

  const metadata: Record<string, string> = {};
  for (const k of Object.keys(p).sort()) {
    // weight/enabled/disabled are carried by the instance itself, not as labels.
    if (VOLATILE_PARAMS.has(k) || MODELLED_PARAMS.has(k) || k.startsWith('default.') || k.endsWith('.timestamp'))
      continue;
    metadata[k] = p[k]!;
  }
  const instance: Instance = {
    address,
    port: url.port,
    protocol: url.protocol,
    weight,
    healthy: true,
    enabled,
    metadata,
  };
  return (groups.length > 1 ? groups.filter((g) => g !== '') : groups).map((group) => ({
    identity: { interface: iface, version, group },
    application,
    instance: groups.length > 1 ? { ...instance, metadata: { ...metadata, group } } : instance,
  }));
}
