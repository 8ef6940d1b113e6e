/**
 * Where an agent's token may be: `Authorization: Bearer|token <t>`, the
 * password of `Basic` auth (git's credential helper), the same schemes in
 * `Proxy-Authorization` (forward-proxy clients), or the raw value of the
 * upstream's `tokenHeader` (x-api-key and the like). The upstream's
 * `tokenPrefix` (a shape some clients insist on, such as gh's ghp_) is
 * stripped; it is decoration, the macaroon after it is what is verified.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface FoundToken {
  readonly token: string;
  readonly header: string;
  readonly scheme: 'bearer' | 'token' | 'basic' | 'raw';
}

export interface TokenPlaces {
  readonly tokenHeader?: string | undefined;
  readonly tokenPrefix?: string | undefined;
}

export function extractToken(
  headers: IncomingHttpHeaders,
  places: TokenPlaces = {},
): FoundToken | undefined {
  const found = findToken(headers, places.tokenHeader);
  const prefix = places.tokenPrefix;
  if (found === undefined || prefix === undefined || !found.token.startsWith(prefix)) return found;
  return { ...found, token: found.token.slice(prefix.length) };
}

function findToken(
  headers: IncomingHttpHeaders,
  tokenHeader: string | undefined,
): FoundToken | undefined {
  for (const header of ['proxy-authorization', 'authorization'] as const) {
    const value = headers[header];
    if (typeof value !== 'string') continue;
    const found = fromCredentials(value.trim());
    if (found) return { ...found, header };
  }
  if (tokenHeader !== undefined) {
    const value = headers[tokenHeader];
    // Repeated, it is ambiguous which one a client meant: none is taken.
    if (typeof value === 'string' && value.trim() !== '')
      return { token: value.trim(), header: tokenHeader, scheme: 'raw' };
  }
  return undefined;
}

function fromCredentials(value: string): Omit<FoundToken, 'header'> | undefined {
  const space = value.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = value.slice(0, space).toLowerCase();
  const rest = value.slice(space + 1).trim();
  if (rest === '') return undefined;
  if (scheme === 'bearer' || scheme === 'token') return { token: rest, scheme };
  if (scheme === 'basic') {
    const decoded = Buffer.from(rest, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const password = colon < 0 ? '' : decoded.slice(colon + 1).trim();
    return password === '' ? undefined : { token: password, scheme };
  }
  return undefined;
}
