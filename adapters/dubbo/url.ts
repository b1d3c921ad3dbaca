/**
 * Dubbo URLs as registries store them (`dubbo://10.0.0.1:20880/com.foo.Api?k=v&...`).
 *
 * ZookeeperRegistry.toUrlPath names each provider znode `URL.encode(url.toFullString())`, i.e.
 * java.net.URLEncoder (UTF-8, space as `+`). toFullString appends parameters as `k=v` without
 * encoding them, so a value that itself holds `&`/`=` was encoded by its writer beforehand and
 * appears encoded twice in the znode name (`%253D`). The rule: decode the znode name once,
 * split the query on `&`, then decode each value (leniently: a value that is not valid
 * percent-encoding is kept as written, as Dubbo itself never decodes values).
 */
import { flatCopy, registryStrings } from '../../src/util/intern.js';

export interface DubboUrl {
  readonly protocol: string;
  readonly host: string;
  /** 0 when the URL has none (Dubbo's convention). */
  readonly port: number;
  /** Path without the leading `/` (normally the interface). */
  readonly path: string;
  /**
   * Parameters with values decoded; `default.x` also provides `x` when `x` is absent (Dubbo's
   * URLParam: "compatible with lower versions registering default. keys").
   */
  readonly params: Readonly<Record<string, string>>;
}

/** java.net.URLDecoder semantics: `+` is a space, `%XX` are UTF-8 bytes; anything else is an Error. */
export function decodeOnce(text: string): string | Error {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return new Error('bad URL encoding (a "%" not followed by two hex digits, or not UTF-8)');
  }
}

/** Decodes a parameter value when it holds valid percent-encoding; `+` stays `+`. */
export function decodeParamValue(value: string): string {
  if (!/%[0-9A-Fa-f]{2}/.test(value)) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

const protocolRe = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/** Parses a decoded Dubbo URL string (URL.valueOf's grammar). */
export function parseDubboUrl(text: string): DubboUrl | Error {
  if (text.length === 0) return new Error('empty URL');
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this rejects
  if (/[\u0000-\u001f\u007f]/.test(text)) return new Error('URL contains control characters');
  const q = text.indexOf('?');
  const head = q >= 0 ? text.slice(0, q) : text;
  const query = q >= 0 ? text.slice(q + 1) : '';

  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  const defaults: [string, string][] = [];
  for (const rawPart of query.split('&')) {
    const part = rawPart.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq >= 0 ? part.slice(0, eq) : part;
    if (key === '') continue;
    // Interned: a value cut from the URL would otherwise keep the whole URL text alive.
    const value = registryStrings.intern(eq >= 0 ? decodeParamValue(part.slice(eq + 1)) : part);
    params[key] = value;
    if (key.startsWith('default.') && key.length > 'default.'.length)
      defaults.push([key.slice('default.'.length), value]);
  }
  for (const [k, v] of defaults) if (!(k in params)) params[k] = v;

  const sep = head.indexOf('://');
  if (sep <= 0) return new Error('not a URL: no "<protocol>://"');
  const protocol = head.slice(0, sep);
  if (!protocolRe.test(protocol)) return new Error(`bad protocol "${protocol}"`);
  let rest = head.slice(sep + 3);
  const slash = rest.indexOf('/');
  const path = slash >= 0 ? rest.slice(slash + 1) : '';
  rest = slash >= 0 ? rest.slice(0, slash) : rest;
  const at = rest.lastIndexOf('@');
  if (at >= 0) rest = rest.slice(at + 1); // user:password@ is never kept

  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return new Error('unterminated IPv6 address');
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) return new Error(`bad address "${rest}"`);
    portText = after === '' ? undefined : after.slice(1);
  } else {
    const colon = rest.lastIndexOf(':');
    host = colon >= 0 ? rest.slice(0, colon) : rest;
    portText = colon >= 0 ? rest.slice(colon + 1) : undefined;
  }
  let port = 0;
  if (portText !== undefined && portText !== '') {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) return new Error(`bad port "${portText}"`);
    port = Number(portText);
  }
  // Hosts are nearly unique (a table would only grow); a flat copy frees the URL text.
  return {
    protocol: registryStrings.intern(protocol),
    host: flatCopy(host),
    port,
    path: registryStrings.intern(path),
    params,
  };
}

/** Reads a znode name as a Dubbo URL: decode once, then parse. */
export function parseEncodedDubboUrl(znodeName: string): DubboUrl | Error {
  const decoded = decodeOnce(znodeName);
  if (decoded instanceof Error) return decoded;
  return parseDubboUrl(decoded);
}
