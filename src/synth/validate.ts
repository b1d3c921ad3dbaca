import { isIP } from 'node:net';
import { parseHostname, portNameProblem } from '../model/names.js';
import { labelKeyProblem, labelValueProblem } from '../model/labels.js';
import { isIstioProtocol } from './protocol.js';
import type { ServiceEntrySpec } from './types.js';

/**
 * Istio's ServiceEntry validation, mirrored (istio/istio pkg/config/validation,
 * ValidateServiceEntry, and the CRD's CEL rules) for the subset of fields the bridge writes.
 * Returns every problem found, each naming the field; an empty list means Istio accepts it.
 *
 * Rules and their source (istio/istio pkg/config/validation/validation.go unless noted):
 * - hosts: agent.ValidateWildcardDomain — ≤ 255, DNS-1123 labels, the last label not
 *   all-numeric (so no IP address); the bridge also needs a dot and never writes wildcards.
 *   CRD: 1..256 hosts.
 * - ports: ValidatePortName (DNS-1123 label), ValidateProtocol, agent.ValidatePort, names and
 *   numbers unique. CRD: ≤ 256 ports; endpoint `ports` keys shorter than 63 characters.
 * - endpoints: STATIC needs IP addresses (validateWorkloadEntry without FQDNs); DNS needs an IP
 *   or agent.ValidateFQDN; labels.Instance.Validate for labels; `ports` keys name a service
 *   port. CRD: ≤ 4096 endpoints, ≤ 256 labels and ≤ 128 ports each, address ≤ 256 characters,
 *   locality ≤ 2048, DNS_ROUND_ROBIN at most one endpoint.
 */
export function serviceEntryProblems(spec: ServiceEntrySpec): string[] {
  const problems: string[] = [];
  if (spec.hosts.length === 0) problems.push('hosts must not be empty');
  if (spec.hosts.length > 256) problems.push(`hosts has ${spec.hosts.length} entries; at most 256`);
  spec.hosts.forEach((h, i) => {
    if (h === '*' || h.startsWith('*'))
      problems.push(`hosts[${i}] "${h}": wildcard hosts are not produced by the bridge`);
    const parsed = parseHostname(h);
    if (parsed instanceof Error) problems.push(`hosts[${i}]: ${parsed.message}`);
  });

  if (spec.ports.length === 0) problems.push('ports must not be empty');
  if (spec.ports.length > 256) problems.push(`ports has ${spec.ports.length} entries; at most 256`);
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  spec.ports.forEach((p, i) => {
    if (!Number.isInteger(p.number) || p.number < 1 || p.number > 65535) {
      problems.push(`ports[${i}].number ${p.number} is not in 1..65535`);
    }
    const nameProblem = portNameProblem(p.name);
    if (nameProblem !== undefined) problems.push(`ports[${i}].name: ${nameProblem}`);
    if (portNames.has(p.name)) problems.push(`ports[${i}].name "${p.name}" is not unique`);
    if (portNumbers.has(p.number)) problems.push(`ports[${i}].number ${p.number} is not unique`);
    portNames.add(p.name);
    portNumbers.add(p.number);
    if (!isIstioProtocol(p.protocol))
      problems.push(`ports[${i}].protocol "${p.protocol}" is not a protocol Istio supports`);
  });

  const endpoints = spec.endpoints ?? [];
  if (endpoints.length > 4096) problems.push(`endpoints has ${endpoints.length} entries; at most 4096`);
  if (spec.resolution === 'NONE' && endpoints.length > 0) problems.push('NONE resolution cannot have endpoints');
  if (spec.resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
    problems.push('DNS_ROUND_ROBIN allows at most one endpoint');
  }
  endpoints.forEach((ep, i) => {
    const where = `endpoints[${i}]`;
    if (ep.address.length === 0) problems.push(`${where}.address is required`);
    if (ep.address.length > 256) problems.push(`${where}.address is longer than 256 characters`);
    if (Object.keys(ep.labels ?? {}).length > 256) problems.push(`${where}.labels has more than 256 entries`);
    if (Object.keys(ep.ports ?? {}).length > 128) problems.push(`${where}.ports has more than 128 entries`);
    if (ep.locality !== undefined && ep.locality.length > 2048)
      problems.push(`${where}.locality is longer than 2048 characters`);
    if (spec.resolution === 'STATIC') {
      if (isIP(ep.address) === 0)
        problems.push(`${where}.address "${ep.address}" must be an IP address for STATIC resolution`);
    } else if (spec.resolution === 'DNS' || spec.resolution === 'DNS_ROUND_ROBIN') {
      if (isIP(ep.address) === 0 && parseHostname(ep.address) instanceof Error) {
        problems.push(`${where}.address "${ep.address}" must be an IP address or a fully qualified domain name`);
      }
    }
    for (const [name, number] of Object.entries(ep.ports ?? {})) {
      if (!portNames.has(name)) problems.push(`${where}.ports: "${name}" is not a port name of the ServiceEntry`);
      const keyProblem = portNameProblem(name);
      if (keyProblem !== undefined) problems.push(`${where}.ports: ${keyProblem}`);
      if (!Number.isInteger(number) || number < 1 || number > 65535) {
        problems.push(`${where}.ports.${name} ${number} is not in 1..65535`);
      }
    }
    for (const [k, v] of Object.entries(ep.labels ?? {})) {
      const problem = labelKeyProblem(k) ?? labelValueProblem(v);
      if (problem) problems.push(`${where}.labels["${k}"]: ${problem}`);
    }
    if (ep.weight !== undefined && (!Number.isInteger(ep.weight) || ep.weight < 0 || ep.weight > 4294967295)) {
      problems.push(`${where}.weight ${ep.weight} is not a uint32`);
    }
  });

  (spec.exportTo ?? []).forEach((e, i) => {
    if (e !== '*' && e !== '.' && e !== '~' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(e)) {
      problems.push(`exportTo[${i}] "${e}" is not "*", ".", "~" or a namespace name`);
    }
  });
  const exportTo = spec.exportTo ?? [];
  if (exportTo.includes('~') && exportTo.length > 1)
    problems.push('exportTo "~" cannot be combined with other entries');
  if (new Set(exportTo).size !== exportTo.length) problems.push('exportTo has duplicate entries');
  return problems;
}
