/**
 * Where an agent's token may be: `Authorization: Bearer|token <t>`, the
 * password of `Basic` auth (git's credential helper), or the same schemes in
 * `Proxy-Authorization` (forward-proxy clients).
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface FoundToken {
  readonly token: string;
  readonly header: 'authorization' | 'proxy-authorization';
  readonly scheme: 'bearer' | 'token' | 'basic';
}

export function extractToken(headers: IncomingHttpHeaders): FoundToken | undefined {
  for (const header of ['proxy-authorization', 'authorization'] as const) {
    const value = headers[header];
    if (typeof value !== 'string') continue;
    const found = fromCredentials(value.trim());
    if (found) return { ...found, header };
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
