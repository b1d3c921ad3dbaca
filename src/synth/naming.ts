import { parseHostname, parseObjectName, type Hostname, type ObjectName } from '../model/names.js';
import type { RegistryService } from '../model/service.js';
import { shortHash } from './hash.js';

/** Variables every host template may use; adapters may add their own through `attributes`. */
export const baseTemplateVariables = ['service', 'group', 'namespace', 'source'] as const;

const templateVarRe = /\{([A-Za-z][A-Za-z0-9_]*)\}/g;

/** The variable names a template refers to, for validation at config load. */
export function templateVariables(template: string): string[] {
  return [...template.matchAll(templateVarRe)].map((m) => m[1]!);
}

/**
 * Turns one registry value into host labels. Case is folded and `_` becomes `-` (the common,
 * readable mapping: `DEFAULT_GROUP` → `default-group`). When anything else had to be replaced
 * (unicode, `:`, `@`, spaces) or a label had to be shortened, a short hash of the original
 * value is appended, so two values that differ only in those characters never share a host.
 * Dots in the value stay label separators; empty labels disappear.
 */
export function sanitizeHostValue(value: string): string {
  const lowered = value.toLowerCase().replace(/_/g, '-');
  const lossy = /[^a-z0-9.-]/.test(lowered);
  const replaced = lowered.replace(/[^a-z0-9.-]+/g, '-');
  let truncated = false;
  const labels = replaced
    .split('.')
    .map((l) => l.replace(/-+/g, '-').replace(/^-+|-+$/g, ''))
    .filter((l) => l.length > 0)
    .map((l) => {
      if (l.length <= 63) return l;
      truncated = true;
      return l.slice(0, 63);
    });
  if (labels.length === 0) return lossy ? `x${shortHash(value, 6)}` : '';
  if (lossy || truncated) {
    const last = labels[labels.length - 1]!;
    labels[labels.length - 1] = `${last.slice(0, 56).replace(/-+$/, '')}-${shortHash(value, 6)}`;
  }
  return labels.join('.');
}

export function templateVarsOf(service: RegistryService): Record<string, string> {
  return {
    ...(service.attributes ?? {}),
    service: service.key.name,
    group: service.key.group,
    namespace: service.key.namespace,
    source: service.key.source,
  };
}

/** Renders the host of a service: its explicit host, or the template with sanitized values. */
export function renderHost(service: RegistryService, template: string): Hostname | Error {
  if (service.host !== undefined) return parseHostname(service.host.toLowerCase().replace(/\.$/, ''));
  const vars = templateVarsOf(service);
  let missing: string | undefined;
  const rendered = template.replace(templateVarRe, (_m, name: string) => {
    const value = vars[name];
    if (value === undefined) {
      missing = name;
      return '';
    }
    return sanitizeHostValue(value);
  });
  if (missing !== undefined) return new Error(`host template variable {${missing}} has no value for this service`);
  // Empty variables leave empty labels behind: drop them.
  const host = rendered
    .split('.')
    .filter((l) => l.length > 0)
    .join('.');
  return parseHostname(host);
}

/**
 * Object name for a host. A host ≤ 63 characters is itself a valid ServiceEntry name (a
 * DNS-1123 subdomain) and, hosts being unique, names are too. Longer hosts are cut and get a
 * hash of the whole host, so two long hosts with the same prefix never share a name.
 */
export function objectNameForHost(host: Hostname): ObjectName {
  if (host.length <= 63) return host as string as ObjectName;
  const head = host.slice(0, 54).replace(/[.-]+$/, '');
  const name = parseObjectName(`${head}-${shortHash(host, 8)}`);
  if (name instanceof Error) throw name; // cannot happen: head is a prefix of a valid host
  return name;
}
