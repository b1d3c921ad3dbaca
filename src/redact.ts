/**
 * What counts as a secret in free-form data the bridge did not write itself: registry metadata
 * keys, URL query parameters, form bodies and server error texts. One matcher serves the
 * endpoint labels (a secret-like metadata key never becomes a label) and the log lines (the value
 * of a secret-like parameter is replaced before a line is written).
 */

/**
 * The built-in deny-list. Each entry is matched, case-insensitively, against the words of a key
 * (split on `.`, `/`, `-`, `_`, `:`, spaces and camelCase) and against every run of up to three
 * adjacent words written together: `password` matches `spring.datasource.password` and
 * `dbPassword`; `apikey` matches `apiKey`, `api-key`, `API_KEY` and `x.api.key`.
 */
export const defaultSecretKeyPatterns: readonly string[] = [
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'secret',
  'secrets',
  'token',
  'tokens',
  'credential',
  'credentials',
  'apikey',
  'accesskey',
  'secretkey',
  'privatekey',
  'authorization',
  'signature',
  'cookie',
];

/** Decides whether a metadata key or parameter name names a secret. */
export interface SecretKeyMatcher {
  (key: string): boolean;
  /** The patterns in use, in a stable order (for reports and docs). */
  readonly patterns: readonly string[];
}

/** The words of a key: `spring.datasource.password` → spring, datasource, password; `apiKey` → api, key. */
export function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

/** A pattern as it is compared: lowercase, separators removed (`api-key` → `apikey`). */
export function normalizeSecretPattern(pattern: string): string {
  return pattern.toLowerCase().replace(/[^a-z0-9*]+/g, '');
}

function globRegExp(glob: string): RegExp {
  const body = glob
    .toLowerCase()
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

/**
 * A matcher from patterns. A pattern with `*` is a glob over the whole key (case-insensitive,
 * e.g. `*.pin`); any other pattern is a word or words matched as described on
 * {@link defaultSecretKeyPatterns}.
 */
export function secretKeyMatcher(patterns: readonly string[]): SecretKeyMatcher {
  const words = new Set<string>();
  const globs: RegExp[] = [];
  const kept: string[] = [];
  for (const p of patterns) {
    if (p.includes('*')) {
      globs.push(globRegExp(p));
      kept.push(p.toLowerCase());
      continue;
    }
    const n = normalizeSecretPattern(p);
    if (n.length === 0) continue;
    words.add(n);
    kept.push(n);
  }
  const cache = new Map<string, boolean>();
  const match = (key: string): boolean => {
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    let result = false;
    const lower = key.toLowerCase();
    if (globs.some((g) => g.test(lower))) result = true;
    else {
      const w = keyWords(key);
      outer: for (let i = 0; i < w.length; i++) {
        let joined = '';
        for (let j = i; j < Math.min(w.length, i + 3); j++) {
          joined += w[j]!;
          if (words.has(joined)) {
            result = true;
            break outer;
          }
        }
      }
    }
    if (cache.size < 10_000) cache.set(key, result);
    return result;
  };
  return Object.assign(match, { patterns: [...new Set(kept)].sort() });
}

export const defaultSecretKeys: SecretKeyMatcher = secretKeyMatcher(defaultSecretKeyPatterns);

export const redactedText = '[redacted]';

// `name=value` in a query string, a form body or a text (value up to the next separator).
const assignmentRe = /([A-Za-z0-9_.%\-[\]]+)(=)([^&\s"',;<>]*)/g;
// `"name":"value"` and `'name': 'value'` in a JSON (or JSON-like) echo.
const jsonPairRe = /(["'])([^"'\s]{1,128})\1(\s*:\s*)(["'])((?:\\.|(?!\4)[^\\])*)\4/g;
// `name: value` in a YAML-ish or `key: value` text (a blank after the colon), value up to a separator.
const colonPairRe = /\b([A-Za-z][A-Za-z0-9_.-]{0,127})(:[ \t]+)([^\s"',;&]+)/g;
// Credentials in a URL's user-info part: scheme://user:password@host
const userInfoRe = /\b([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*):([^/\s@]*)@/gi;
// HTTP authorization schemes with their credentials.
const bearerRe = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g;

/**
 * A text with the values of secret-like parameters replaced: query strings
 * (`?accessToken=…`), form bodies (`username=u&password=…`), JSON echoes
 * (`"password":"…"`), `key: value` texts, URL user-info and bearer credentials.
 */
export function redactText(text: string, isSecret: SecretKeyMatcher = defaultSecretKeys): string {
  if (text.length === 0) return text;
  let out = text;
  if (out.includes('=')) {
    out = out.replace(assignmentRe, (m, name: string, eq: string, value: string) =>
      value.length > 0 && isSecret(decodeName(name)) ? `${name}${eq}${redactedText}` : m,
    );
  }
  // Each pattern runs only on a text that has what it needs to match (a quote, `Bearer` or
  // `Basic`, a colon followed by a blank, `@`): every string of every log line goes through here.
  if (out.includes(':')) {
    if (out.includes('"') || out.includes("'"))
      out = out.replace(jsonPairRe, (m, q: string, name: string, sep: string, vq: string, value: string) =>
        value.length > 0 && isSecret(name) ? `${q}${name}${q}${sep}${vq}${redactedText}${vq}` : m,
      );
    out = redactBearer(out);
    if (out.includes(': ') || out.includes(':\t')) out = redactColonPairs(out, isSecret);
    if (out.includes('@'))
      out = out.replace(userInfoRe, (_m, scheme: string, user: string) => `${scheme}${user}:${redactedText}@`);
  }
  return redactBearer(out);
}

function redactBearer(text: string): string {
  return text.includes('Bearer') || text.includes('Basic')
    ? text.replace(bearerRe, (_m, scheme: string) => `${scheme} ${redactedText}`)
    : text;
}

/** `caused: secretKey: v` → `caused: secretKey: [redacted]`: a name's value is consumed only when it is redacted. */
function redactColonPairs(text: string, isSecret: SecretKeyMatcher): string {
  const re = new RegExp(colonPairRe.source, 'g');
  let out = '';
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const [, name, sep, value] = m as unknown as [string, string, string, string];
    if (value !== redactedText && !value.startsWith('//') && isSecret(name)) {
      out += `${text.slice(last, m.index)}${name}${sep}${redactedText}`;
      last = m.index + m[0].length;
    } else {
      re.lastIndex = m.index + name.length + sep.length;
    }
  }
  return out + text.slice(last);
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
