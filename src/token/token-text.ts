/**
 * Tokens as text (base64url, no padding) and their decoded form.
 *
 * Any input, however malformed, becomes either a DecodedToken or a
 * MintfsError with code ERR_TOKEN_MALFORMED, and costs at most one pass over
 * TOKEN_LIMITS.maxTokenChars characters: limits are checked while decoding,
 * before any signature work.
 */
import { isAscii } from 'node:buffer';
import { MintfsError } from '../errors.js';
import { parseIdentifier, type TokenIdentifier } from './identifier.js';
import { TOKEN_LIMITS } from './limits.js';
import { MacaroonDecodeError, decodeMacaroonV2 } from './macaroon-decode.js';
import type { PlacedThirdParty } from './macaroon-codec.js';
import { APPROVAL_LOCATION, TOKEN_LOCATION } from './vocabulary.js';

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface DecodedToken extends TokenIdentifier {
  readonly location: string;
  readonly identifier: Buffer;
  readonly caveats: readonly string[];
  readonly caveatBytes: readonly Buffer[];
  /** Approval caveats (third-party, discharged by the approval service), in order. */
  readonly thirdParty: readonly PlacedThirdParty[];
  readonly signature: Buffer;
}

export function encodeTokenText(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

export function decodeToken(text: string): DecodedToken {
  const trimmed = text.trim();
  if (trimmed === '') throw malformed('token is empty');
  if (trimmed.length > TOKEN_LIMITS.maxTokenChars)
    throw malformed(`token is longer than ${TOKEN_LIMITS.maxTokenChars} characters`);
  if (!BASE64URL.test(trimmed)) throw malformed('token is not base64url text');

  let mac;
  try {
    mac = decodeMacaroonV2(Buffer.from(trimmed, 'base64url'));
  } catch (err) {
    if (err instanceof MacaroonDecodeError) throw malformed(err.message, err);
    throw err;
  }
  if (mac.location !== TOKEN_LOCATION) throw malformed(`token location is not "${TOKEN_LOCATION}"`);
  const id = parseIdentifier(decodeUtf8(mac.identifier, 'identifier'));
  if (!id) throw malformed('token identifier is not a mintfs identifier');
  for (const { caveat } of mac.thirdParty)
    if (caveat.location !== APPROVAL_LOCATION)
      throw malformed(
        `token has a third-party caveat for "${caveat.location.slice(0, 64)}"; mintfs discharges only "${APPROVAL_LOCATION}"`,
      );
  const caveats = mac.caveats.map((caveat) => decodeUtf8(caveat, 'caveat'));
  return {
    ...id,
    location: mac.location,
    identifier: mac.identifier,
    caveats,
    caveatBytes: mac.caveats,
    thirdParty: mac.thirdParty,
    signature: mac.signature,
  };
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  // Caveats and identifiers are ASCII in practice; isAscii is a native scan,
  // and ASCII decodes the same as latin1, without the fatal decoder's cost.
  if (isAscii(bytes))
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw malformed(`token ${what} is not UTF-8`, err);
  }
}

function malformed(message: string, cause?: unknown): MintfsError {
  return new MintfsError('ERR_TOKEN_MALFORMED', message, { cause });
}
