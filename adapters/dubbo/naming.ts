import { shortHash } from '../../src/synth/hash.js';

/**
 * How a Dubbo interface-level service is named in the model and in hosts, shared by every
 * adapter that reads Dubbo registrations (ZooKeeper `/dubbo/<iface>/providers`, Nacos
 * `providers:<iface>:<version>:<group>`), so one Dubbo service gets the same host whichever
 * registry it is found in.
 *
 * One ServiceEntry per (interface, version, group). The default host is
 *
 *   `{service}.{versionLabel}.{groupLabel}.{kind}` → `com.example.demoservice.v-1-0-0.g-blue.dubbo`
 *
 * - `{service}` is the interface (the key name): its dots stay label separators, so the host
 *   reads like the Java name, lowercased.
 * - the version and the group become ONE label each, marked `v-` / `g-`. A Java identifier has
 *   no `-`, so a marked label can never be mistaken for a package segment, and the version
 *   `1.0.0` cannot be confused with three interface segments. Labels of an empty version or
 *   group are empty and drop out of the host (`com.example.demoservice.dubbo`).
 * - characters other than letters, digits, `.`, `-`, `_` (or a label over 63 characters) add a
 *   short hash of the original value, so distinct values keep distinct hosts.
 * - `{kind}` is `dubbo` for every Dubbo service.
 *
 * Keep this API small: adapters/nacos depends on it.
 */
export interface DubboIdentity {
  readonly interface: string;
  /** Service version (`version=`), '' when none. */
  readonly version: string;
  /** Service group (`group=`), '' when none. */
  readonly group: string;
}

export const DUBBO_HOST_TEMPLATE = '{service}.{versionLabel}.{groupLabel}.{kind}';

/** Template variables a Dubbo service provides (besides {service} {group} {namespace} {source}). */
export const DUBBO_TEMPLATE_ATTRIBUTES = [
  'interface',
  'version',
  'dubboGroup',
  'application',
  'versionLabel',
  'groupLabel',
  'kind',
] as const;

export interface DubboServiceNaming {
  /** ServiceKey.name: the interface. */
  readonly name: string;
  /** ServiceKey.group: the Dubbo group ('' when none). */
  readonly group: string;
  /** RegistryService.attributes, every DUBBO_TEMPLATE_ATTRIBUTES key set ('' when unknown). */
  readonly attributes: Readonly<Record<(typeof DUBBO_TEMPLATE_ATTRIBUTES)[number], string>>;
  readonly hostTemplate: string;
}

export function dubboServiceIdentity(id: DubboIdentity, application = ''): DubboServiceNaming {
  return {
    name: id.interface,
    group: id.group,
    attributes: {
      interface: id.interface,
      version: id.version,
      dubboGroup: id.group,
      application,
      versionLabel: markedLabel('v', id.version),
      groupLabel: markedLabel('g', id.group),
      kind: 'dubbo',
    },
    hostTemplate: DUBBO_HOST_TEMPLATE,
  };
}

/** `group/interface:version`, Dubbo's own service key (URL.getServiceKey). */
export function dubboServiceKey(id: DubboIdentity): string {
  return `${id.group ? `${id.group}/` : ''}${id.interface}${id.version ? `:${id.version}` : ''}`;
}

/**
 * One DNS-1123 label for a value: `<marker>-<value>` lowercased, every run of characters other
 * than a-z0-9 turned into one `-`; a short hash of the value is added when more than case, `.`,
 * `-`, `_` was lost or the label had to be cut. '' for ''.
 */
export function markedLabel(marker: string, value: string): string {
  if (value === '') return '';
  const body = value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const lossy = /[^A-Za-z0-9._-]/.test(value);
  let label = body === '' ? marker : `${marker}-${body}`;
  if (lossy || label.length > 63) label = `${label.slice(0, 55).replace(/-+$/, '')}-${shortHash(value, 6)}`;
  return label;
}
