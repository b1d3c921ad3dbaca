/**
 * Identifiers with rules. Each branded type is made only by its parser, so a value of the type
 * is known to be valid wherever it travels.
 */
import { isIP } from 'node:net';

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
  if (isIP(value) !== 0) return new Error(`host "${value}" is an IP address, not a host name`);
  if (!value.includes('.')) return new Error(`host "${value}" has no dot; Istio needs a fully qualified host`);
  const labels = value.split('.');
  for (const label of labels) {
    if (!isDns1123Label(label)) {
      return new Error(`host "${value}": label "${label}" is not a DNS-1123 label`);
    }
  }
  // agent.ValidateDNS1123Labels: the top-level label cannot be all-numeric (`10.1.2.3`, `orders.2024`).
  const top = labels[labels.length - 1]!;
  if (/^[0-9]+$/.test(top)) {
    return new Error(`host "${value}": the last label "${top}" is all-numeric, which Istio refuses`);
  }
  return value as Hostname;
}

/**
 * Why an instance address cannot be a ServiceEntry endpoint, or undefined when it can: an IP
 * address (netip.ParseAddr in Istio), or a fully qualified DNS name by {@link parseHostname}'s
 * rules (agent.ValidateFQDN: DNS-1123 labels, ≤ 255, a top-level label that is not all-numeric,
 * so `999.1.1.1` is neither). A name without a dot (`localhost`, `db`) is refused too: it
 * resolves differently in every pod's search domains, never to the registered instance.
 */
export function endpointAddressProblem(address: string): string | undefined {
  if (address.length === 0) return 'the address is empty';
  if (isIP(address) !== 0) return undefined;
  if (/^[0-9.]+$/.test(address)) return `"${address}" is not a valid IP address`;
  if (address.length > 253) return `"${address}" is longer than 253 characters`;
  if (!address.includes('.'))
    return `"${address}" is a short name (no dot); an endpoint needs an IP address or a fully qualified name`;
  const parsed = parseHostname(address);
  return parsed instanceof Error ? `${parsed.message.replace(/^host /, '')}; not an IP address either` : undefined;
}

/**
 * Istio's port name rule (validation.ValidatePortName): a DNS-1123 label, letters of either case.
 * At most 62 characters: the CRD's CEL rule on endpoint `ports` keys (which are port names)
 * is `size(key) < 63`.
 */
export function portNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the port name is empty';
  if (name.length > 62) return `port name "${name}" is longer than 62 characters`;
  if (!/^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/.test(name))
    return `port name "${name}" is not a DNS-1123 label (letters, digits and '-', starting and ending with a letter or digit)`;
  return undefined;
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
