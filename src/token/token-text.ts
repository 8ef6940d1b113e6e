/**
 * Tokens as text (base64url, no padding) and their decoded form.
 *
 * Decoding uses the `macaroon` package, an implementation independent of the
 * encoder in macaroon-codec.ts. Any input, however malformed, becomes either
 * a DecodedToken or a MintfsError with code ERR_TOKEN_MALFORMED.
 */
import macaroon, { type Macaroon } from 'macaroon';
import { MintfsError } from '../errors.js';
import { parseIdentifier, type TokenIdentifier } from './identifier.js';
import { TOKEN_LOCATION } from './vocabulary.js';

/** Far above any real token; keeps hostile input from costing much. */
export const MAX_TOKEN_LENGTH = 16 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface DecodedToken extends TokenIdentifier {
  readonly location: string;
  readonly caveats: readonly string[];
  readonly macaroon: Macaroon;
}

export function encodeTokenText(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

export function decodeToken(text: string): DecodedToken {
  const trimmed = text.trim();
  if (trimmed === '') throw malformed('token is empty');
  if (trimmed.length > MAX_TOKEN_LENGTH) throw malformed('token is too long');
  if (!BASE64URL.test(trimmed)) throw malformed('token is not base64url text');

  let mac: Macaroon;
  try {
    mac = macaroon.importMacaroon(Uint8Array.from(Buffer.from(trimmed, 'base64url')));
  } catch (err) {
    throw malformed('token is not a V2 macaroon', err);
  }
  if (mac.location !== TOKEN_LOCATION) throw malformed(`token location is not "${TOKEN_LOCATION}"`);
  const id = parseIdentifier(decodeUtf8(mac.identifier, 'identifier'));
  if (!id) throw malformed('token identifier is not a mintfs identifier');
  const caveats = mac.caveats.map((caveat) => {
    // Third-party caveats need discharges mintfs never issues: refuse them.
    if (caveat.vid !== undefined) throw malformed('token has a third-party caveat');
    return decodeUtf8(caveat.identifier, 'caveat');
  });
  return { ...id, location: mac.location, caveats, macaroon: mac };
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw malformed(`token ${what} is not UTF-8`, err);
  }
}

function malformed(message: string, cause?: unknown): MintfsError {
  return new MintfsError('ERR_TOKEN_MALFORMED', message, { cause });
}
