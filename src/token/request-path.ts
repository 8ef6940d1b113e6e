/**
 * Normalisation of a request path before any `path` caveat sees it.
 *
 * Upstreams disagree on how they read `..`, `%2e%2e`, `%2f`, `\` and `//`, so a
 * path containing any of them is refused outright instead of being rewritten:
 * a caveat must judge exactly the resource the upstream will serve.
 */
export type NormalisedPath =
  | { readonly ok: true; readonly segments: readonly string[] }
  | { readonly ok: false; readonly reason: string };

const ENCODED_SEPARATOR = /%(2f|5c)/i;
const BAD_PERCENT = /%(?![0-9a-f]{2})/i;
// Control characters, space and DEL never belong in a request path.

const CONTROL = /[\u0000-\u0020\u007f]/;

const DECODED_CONTROL = /[\u0000-\u001f\u007f]/;

export function normaliseRequestPath(rawPath: string): NormalisedPath {
  if (!rawPath.startsWith('/')) return { ok: false, reason: 'path does not start with /' };
  if (rawPath.includes('?') || rawPath.includes('#'))
    return { ok: false, reason: 'path contains a query or fragment' };
  if (rawPath.includes('\\')) return { ok: false, reason: 'path contains a backslash' };
  if (ENCODED_SEPARATOR.test(rawPath))
    return { ok: false, reason: 'path contains an encoded slash or backslash' };
  if (BAD_PERCENT.test(rawPath)) return { ok: false, reason: 'path has a malformed %-escape' };
  if (CONTROL.test(rawPath)) return { ok: false, reason: 'path contains a control character' };

  const parts = rawPath.split('/').slice(1);
  // A single trailing slash names the same resource as the path without it.
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  const segments: string[] = [];
  for (const part of parts) {
    if (part === '') return { ok: false, reason: 'path contains an empty segment (//)' };
    let decoded: string;
    try {
      decoded = decodeURIComponent(part);
    } catch {
      return { ok: false, reason: 'path has a malformed %-escape' };
    }
    if (decoded === '.' || decoded === '..')
      return { ok: false, reason: 'path contains a dot segment' };
    if (DECODED_CONTROL.test(decoded))
      return { ok: false, reason: 'path contains a control character' };
    segments.push(decoded);
  }
  return { ok: true, segments };
}

/** Host and raw path of an absolute http(s) URL, without resolving dot segments. */
export function splitUrl(url: string): { host: string; rawPath: string } | undefined {
  // WHATWG URL parsing would silently resolve `..` and decode `%2e`; keep the raw path.
  const match = /^(https?):\/\/([^/?#]*)([^?#]*)/i.exec(url);
  if (!match) return undefined;
  const authority = match[2] ?? '';
  const host = hostnameOf(authority.slice(authority.lastIndexOf('@') + 1));
  if (host === undefined) return undefined;
  return { host, rawPath: match[3] === '' ? '/' : (match[3] ?? '/') };
}

/** The lower-cased hostname of a `host[:port]` authority, without the port. */
export function hostnameOf(hostAndPort: string): string | undefined {
  let host = hostAndPort;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return undefined;
    host = host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) host = host.slice(0, colon);
  }
  host = host.toLowerCase().replace(/\.$/, '');
  return host === '' ? undefined : host;
}
