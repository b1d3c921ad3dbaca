/**
 * Identifiers with rules. Each branded type is made only by its parser, so a value of the type
 * is known to be valid wherever it travels.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A DNS-1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric, ≤ 63. */
export type Dns1123Label = Brand<string, 'Dns1123Label'>;
/** A dotted hostname Istio accepts as a ServiceEntry host. */
export type Hostname = Brand<string, 'Hostname'>;
/** A Kubernetes object name valid for a ServiceEntry (DNS-1123 subdomain, ≤ 63 here). */
export type ObjectName = Brand<string, 'ObjectName'>;

const labelRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDns1123Label(value: string): boolean {
  return value.length > 0 && value.length <= 63 && labelRe.test(value);
}

export function parseDns1123Label(value: string): Dns1123Label | Error {
  if (isDns1123Label(value)) return value as Dns1123Label;
  return new Error(
    `"${value}" is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)`,
  );
}

/**
 * Istio's rules for a ServiceEntry host (pkg/config/validation: validateServiceEntryHost /
 * ValidateWildcardDomain): ≤ 255 characters, each label a DNS-1123 label ≤ 63, no `_`, no `:`.
 * We also require a dot (short hosts are ignored or rewritten in practice) and lowercase
 * (Kubernetes and Envoy compare hosts case-insensitively; one spelling avoids duplicates).
 * Wildcards are never produced by the bridge.
 */
export function parseHostname(value: string): Hostname | Error {
  if (value.length === 0) return new Error('host is empty');
  if (value.length > 255) return new Error(`host "${value}" is longer than 255 characters`);
  if (!value.includes('.')) return new Error(`host "${value}" has no dot; Istio needs a fully qualified host`);
  for (const label of value.split('.')) {
    if (!isDns1123Label(label)) {
      return new Error(`host "${value}": label "${label}" is not a DNS-1123 label`);
    }
  }
  return value as Hostname;
}

const subdomainRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function parseObjectName(value: string): ObjectName | Error {
  if (value.length === 0 || value.length > 63 || !subdomainRe.test(value)) {
    return new Error(`"${value}" is not a valid object name (DNS-1123 subdomain of at most 63 characters)`);
  }
  return value as ObjectName;
}

/** Kubernetes namespace names are DNS-1123 labels. */
export function isNamespaceName(value: string): boolean {
  return isDns1123Label(value);
}
