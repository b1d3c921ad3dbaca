/**
 * Dubbo interface-level services registered in Nacos are named
 * `<category>:<interface>:<version>:<group>` (Dubbo ≥ 2.7.3 always writes all four segments, so
 * an empty group leaves a trailing `:`: `providers:com.foo.Api:1.0.0:`). Dubbo 2.7.0–2.7.2
 * omitted empty segments instead, so `providers:com.foo.Api:x` is ambiguous (version or group?):
 * the instance metadata, which carries the Dubbo URL parameters, decides.
 */
export interface DubboNacosName {
  readonly category: string;
  readonly interface: string;
  readonly version: string;
  readonly group: string;
}

const categories = new Set(['providers', 'consumers', 'configurators', 'routers']);

/** undefined when the name is not a Dubbo interface-level name (e.g. an application name). */
export function parseDubboNacosName(
  name: string,
  metadata: Readonly<Record<string, string>> = {},
): DubboNacosName | undefined {
  const parts = name.split(':');
  const [category, iface] = parts;
  if (category === undefined || iface === undefined || !categories.has(category)) return undefined;
  if (iface === '' || parts.length > 4 || !/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(iface)) return undefined;
  if (parts.length === 4) return { category, interface: iface, version: parts[2]!, group: parts[3]! };
  if (parts.length === 2) return { category, interface: iface, version: '', group: '' };
  // Three segments: an old Dubbo dropped one empty part. The URL parameters say which.
  const third = parts[2]!;
  const version = metadata.version ?? metadata['default.version'];
  const group = metadata.group ?? metadata['default.group'];
  if (third !== '' && group === third && version !== third)
    return { category, interface: iface, version: '', group: third };
  return { category, interface: iface, version: third, group: '' };
}

export function isDubboProviderName(name: string): boolean {
  return parseDubboNacosName(name)?.category === 'providers';
}
