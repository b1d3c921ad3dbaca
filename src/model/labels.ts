/**
 * Kubernetes label syntax (k8s.io/apimachinery validation.IsQualifiedName / IsValidLabelValue),
 * which Istio applies to ServiceEntry endpoint labels: one bad label rejects the whole object.
 */
const nameRe = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const prefixRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function labelKeyProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return 'more than one "/"';
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix.length === 0 || prefix.length > 253 || !prefixRe.test(prefix)) {
      return `prefix "${prefix}" is not a DNS-1123 subdomain`;
    }
  }
  if (name.length === 0) return 'name part is empty';
  if (name.length > 63) return 'name part is longer than 63 characters';
  if (!nameRe.test(name)) return 'name part has characters other than alphanumerics, "-", "_", "."';
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value.length === 0) return undefined;
  if (value.length > 63) return 'value is longer than 63 characters';
  if (!nameRe.test(value)) return 'value has characters other than alphanumerics, "-", "_", "."';
  return undefined;
}

export function isValidLabel(key: string, value: string): boolean {
  return labelKeyProblem(key) === undefined && labelValueProblem(value) === undefined;
}
