import { dubboServiceKey } from './naming.js';
import type { DubboUrl } from './url.js';

/**
 * Dubbo configurators (`override://` and `absent://` URLs under `<iface>/configurators`) applied
 * to a provider URL the way a Dubbo consumer applies them (dubbo-cluster AbstractConfigurator):
 *
 * - a rule with `enabled=false`, or without a host, is ignored;
 * - without `configVersion` (the form dubbo-admin 2.6 and hand-written rules use): a rule with a
 *   port applies to the provider on that port whose host matches (the rule's host or 0.0.0.0);
 *   a rule without a port applies to all providers only when its host is 0.0.0.0 and the
 *   provider says `side=provider`;
 * - with `configVersion` (2.7+): the rule must say `side=provider` like the provider, and its
 *   host be 0.0.0.0 or the provider's host;
 * - then `providerAddresses`, `application` and the service key (group/interface:version, `*`
 *   matches any) must match, and every `~key` plus `application`/`side` must equal the
 *   provider's parameter (or be `*`);
 * - a matching rule adds its parameters minus the condition keys (`override`) or only those the
 *   provider lacks (`absent`). Rules apply in Dubbo's order: by host text (0.0.0.0 sorts before
 *   specific addresses, so an address-specific rule wins), then `priority`.
 *
 * The provider-visible outcome we use is `disabled=true` and `weight=<n>`.
 */
const CONDITION_KEYS = new Set([
  'category',
  'check',
  'dynamic',
  'enabled',
  'group',
  'version',
  'application',
  'side',
  'configVersion',
  'compatible_config',
  'interfaces',
  'anyhost',
]);

const ANYHOST = '0.0.0.0';

export function isConfiguratorUrl(url: DubboUrl): boolean {
  const p = url.protocol.toLowerCase();
  return p === 'override' || p === 'absent';
}

export function applyConfigurators(provider: DubboUrl, rules: readonly DubboUrl[], fallbackInterface = ''): DubboUrl {
  const ordered = rules
    .filter(isConfiguratorUrl)
    .map((rule, i) => ({ rule, i }))
    .sort((a, b) => cmp(a.rule.host, b.rule.host) || priority(a.rule) - priority(b.rule) || a.i - b.i);
  let current = provider;
  for (const { rule } of ordered) current = configure(current, rule, fallbackInterface);
  return current;
}

function configure(url: DubboUrl, rule: DubboUrl, fallbackInterface: string): DubboUrl {
  const r = rule.params;
  if (r.enabled === 'false' || rule.host === '' || url.host === '') return url;
  const side = url.params.side ?? '';
  let hostMatches: boolean;
  if (r.configVersion) {
    hostMatches = side === 'provider' && r.side === 'provider' && (rule.host === ANYHOST || rule.host === url.host);
  } else if (rule.port !== 0) {
    hostMatches = url.port === rule.port && (rule.host === ANYHOST || rule.host === url.host);
  } else {
    hostMatches = side === 'provider' && rule.host === ANYHOST;
  }
  if (!hostMatches || !v27ConditionsMatch(url, rule, fallbackInterface) || !legacyConditionsMatch(url, rule))
    return url;

  const params: Record<string, string> = { ...url.params };
  const absentOnly = rule.protocol.toLowerCase() === 'absent';
  for (const [k, v] of Object.entries(r)) {
    if (CONDITION_KEYS.has(k) || k.startsWith('~') || k === 'providerAddresses' || k === 'priority') continue;
    if (absentOnly && k in params) continue;
    params[k] = v;
  }
  return { ...url, params };
}

function v27ConditionsMatch(url: DubboUrl, rule: DubboUrl, fallbackInterface: string): boolean {
  const r = rule.params;
  const addresses = r.providerAddresses;
  if (addresses) {
    const ok = addresses
      .split(',')
      .some(
        (a) =>
          a === `${url.host}:${url.port}` ||
          a === ANYHOST ||
          a === `${ANYHOST}:*` ||
          a === `${ANYHOST}:${url.port}` ||
          a === url.host,
      );
    if (!ok) return false;
  }
  const app = r.application;
  if (app !== undefined && app !== '*' && app !== (url.params.application ?? '')) return false;
  const ruleIface = r.interface || rule.path || fallbackInterface;
  const ruleKey =
    ruleIface === '*' ? '*' : dubboServiceKey({ interface: ruleIface, version: r.version ?? '', group: r.group ?? '' });
  const urlKey = dubboServiceKey({
    interface: url.params.interface || url.path || fallbackInterface,
    version: url.params.version ?? '',
    group: url.params.group ?? '',
  });
  // Dubbo compares service keys exactly; `*` as version or group (dubbo-admin writes them) matches any.
  if (ruleKey !== '*' && ruleKey !== urlKey) {
    const wildVersion = r.version === '*';
    const wildGroup = r.group === '*';
    if (!wildVersion && !wildGroup) return false;
    const sameIface = ruleIface === (url.params.interface || url.path || fallbackInterface);
    const versionOk = wildVersion || (r.version ?? '') === (url.params.version ?? '');
    const groupOk = wildGroup || (r.group ?? '') === (url.params.group ?? '');
    if (!(sameIface && versionOk && groupOk)) return false;
  }
  return true;
}

function legacyConditionsMatch(url: DubboUrl, rule: DubboUrl): boolean {
  for (const [k, v] of Object.entries(rule.params)) {
    const tilde = k.startsWith('~');
    if (!tilde && k !== 'application' && k !== 'side') continue;
    if (v === '*') continue;
    if (v !== url.params[tilde ? k.slice(1) : k]) return false;
  }
  return true;
}

function priority(rule: DubboUrl): number {
  const n = Number(rule.params.priority ?? '0');
  return Number.isFinite(n) ? n : 0;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
