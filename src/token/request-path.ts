/**
 * Normalisation of a request path before any `path` caveat sees it.
 *
 * The path a caveat judges must be the one the upstream serves, whatever the
 * upstream is. Servers disagree on `..`, `%2e%2e`, `..;` (Tomcat, Jetty and
 * Spring drop `;` parameters, then resolve dots), `%252e` (decoded twice by
 * some stacks), `%61` (decoded by some, kept by others), `\`, `//`, trailing
 * dots and spaces (IIS) and compatibility characters such as U+FF0E (NFKC).
 * So a path in any form two common servers could read differently is
 * refused outright, never rewritten. Accepted paths:
 *
 *   - start with /, have no empty segment except one trailing slash;
 *   - contain no `;`, `\` or control character, raw or encoded (a space
 *     only encoded, inside a segment);
 *   - percent-encode only what must be: never `%25`, `%2F`, `%5C` or an
 *     unreserved character (letters, digits, - . _ ~);
 *   - decode to UTF-8 already in NFKC form, with no segment of only dots
 *     and spaces, starting with a space or ending with a dot or space;
 *   - have at most REQUEST_LIMITS.maxPathSegments segments.
 *
 * test/unit/request-path.test.ts holds every accepted path to that promise
 * with a second decode and a `..;`-style normaliser (property tests).
 */
import { REQUEST_LIMITS } from './limits.js';

export type NormalisedPath =
  | { readonly ok: true; readonly segments: readonly string[] }
  | { readonly ok: false; readonly reason: string };

const PERCENT = /%([0-9A-Fa-f]{2})?/g;
// RFC 3986 unreserved: encoding one of these is legal but optional, so servers differ.
const UNRESERVED_BYTE = /^(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[Dd]|2[Ee]|5[Ff]|7[Ee])$/;
// Control characters, space and DEL never belong in a request path.
const CONTROL = /[\u0000-\u0020\u007f]/;
const DECODED_FORBIDDEN = /[\u0000-\u001f\u007f;\\/]/;
// Only dots and white space: `..`, `...`, `.. ` all mean "up" to some server.
const DOT_LIKE = /^[.\s]*\.[.\s]*$/;
const EDGE_TRIMMED = /^\s|[.\s]$/;

export function normaliseRequestPath(rawPath: string): NormalisedPath {
  const refuse = (reason: string): NormalisedPath => ({ ok: false, reason });
  if (!rawPath.startsWith('/')) return refuse('path does not start with /');
  if (rawPath.includes('?') || rawPath.includes('#'))
    return refuse('path contains a query or fragment');
  if (rawPath.includes('\\')) return refuse('path contains a backslash');
  if (rawPath.includes(';'))
    return refuse('path contains ; (servers read ;parameters differently)');
  if (CONTROL.test(rawPath)) return refuse('path contains a control character or space');
  for (const match of rawPath.matchAll(PERCENT)) {
    const hex = match[1];
    if (hex === undefined) return refuse('path has a malformed %-escape');
    const upper = hex.toUpperCase();
    if (upper === '25') return refuse('path contains %25 (a second decode would read it again)');
    if (upper === '2F' || upper === '5C')
      return refuse('path contains an encoded slash or backslash');
    if (upper === '3B') return refuse('path contains an encoded ;');
    if (UNRESERVED_BYTE.test(hex))
      return refuse(`path encodes an unreserved character (%${hex}); send it as is`);
  }

  const parts = rawPath.split('/').slice(1);
  // A single trailing slash names the same resource as the path without it.
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length > REQUEST_LIMITS.maxPathSegments)
    return refuse(`path has more than ${REQUEST_LIMITS.maxPathSegments} segments`);
  const segments: string[] = [];
  for (const part of parts) {
    if (part === '') return refuse('path contains an empty segment (//)');
    let decoded: string;
    try {
      decoded = part.includes('%') ? decodeURIComponent(part) : part;
    } catch {
      return refuse('path has a malformed %-escape (not UTF-8)');
    }
    if (DECODED_FORBIDDEN.test(decoded))
      return refuse('path contains a control character, ; or separator');
    if (DOT_LIKE.test(decoded)) return refuse('path contains a dot segment');
    // IIS and Windows file APIs drop trailing dots and spaces, some stacks trim spaces.
    if (EDGE_TRIMMED.test(decoded))
      return refuse('path has a segment that starts with a space or ends with a dot or space');
    if (decoded.normalize('NFKC') !== decoded)
      return refuse('path is not in Unicode normal form (NFKC)');
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
