/**
 * Decoding of Macaroon V2 binary tokens, bounded by TOKEN_LIMITS.
 *
 * Written here rather than taken from the `macaroon` package because the
 * decoder is where hostile input is cheapest to refuse: it stops at the first
 * field past a limit (caveat count, caveat size) before anything is signed or
 * parsed, and it refuses every form mintfs never writes (unknown fields, a
 * verification id without a location, third-party caveats past a few). The `macaroon` package stays
 * the reference this is tested against (test/unit/macaroon-decode.test.ts).
 *
 * Layout (libmacaroons' V2): version 2; [location]; identifier; EOS;
 * per caveat: [location; identifier; vid] or identifier, then EOS; EOS; signature. Each field is a type byte, a
 * uvarint length and that many bytes.
 */
import { TOKEN_LIMITS } from './limits.js';
import type { PlacedThirdParty } from './macaroon-codec.js';
import { VID_BYTES } from './third-party.js';

export interface DecodedMacaroon {
  readonly location: string;
  readonly identifier: Buffer;
  /** First-party caveats, in order. */
  readonly caveats: readonly Buffer[];
  /** Third-party caveats and where they sit among the first-party ones (empty for most tokens). */
  readonly thirdParty: readonly PlacedThirdParty[];
  readonly signature: Buffer;
}

/** At most this many third-party caveats (each costs a discharge to check). */
export const MAX_THIRD_PARTY_CAVEATS = 4;
/** Caveat ids of third-party caveats: mintfs approval tickets are ~150 bytes. */
export const MAX_CAVEAT_ID_BYTES = 512;

export class MacaroonDecodeError extends Error {
  override readonly name = 'MacaroonDecodeError';
}

const FIELD_EOS = 0;
const FIELD_LOCATION = 1;
const FIELD_IDENTIFIER = 2;
const FIELD_VID = 4;
const FIELD_SIGNATURE = 6;
const SIGNATURE_BYTES = 32;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface DecodeOptions {
  /**
   * The longest macaroon identifier (default 256, a mintfs token's). A
   * discharge's identifier is an approval ticket: up to MAX_CAVEAT_ID_BYTES.
   */
  readonly maxIdentifierBytes?: number;
}

export function decodeMacaroonV2(bytes: Buffer, options: DecodeOptions = {}): DecodedMacaroon {
  let at = 0;
  const fail = (reason: string): never => {
    throw new MacaroonDecodeError(reason);
  };
  const byte = (): number => {
    if (at >= bytes.length) fail('token ends early');
    return bytes[at++] as number;
  };
  const field = (type: number, what: string, max: number): Buffer => {
    const found = byte();
    if (found !== type) fail(`token has an unexpected field (${found}) where ${what} belongs`);
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      if (shift > 21) fail(`token ${what} is too long`);
      const next = byte();
      length += (next & 0x7f) * 2 ** shift;
      if (next < 0x80) break;
    }
    if (length > max) fail(`token ${what} is over ${max} bytes`);
    if (at + length > bytes.length) fail('token ends early');
    const data = bytes.subarray(at, at + length);
    at += length;
    return data;
  };

  if (byte() !== 2) fail('token is not a V2 macaroon');
  let location = '';
  if (bytes[at] === FIELD_LOCATION) {
    const raw = field(FIELD_LOCATION, 'location', 256);
    try {
      location = utf8.decode(raw);
    } catch {
      fail('token location is not UTF-8');
    }
  }
  const identifier = field(FIELD_IDENTIFIER, 'identifier', options.maxIdentifierBytes ?? 256);
  if (byte() !== FIELD_EOS) fail('token identifier section does not end');
  const caveats: Buffer[] = [];
  const thirdParty: PlacedThirdParty[] = [];
  while (bytes[at] !== FIELD_EOS) {
    if (at >= bytes.length) fail('token ends early');
    if (caveats.length + thirdParty.length === TOKEN_LIMITS.maxCaveats)
      fail(`token has more than ${TOKEN_LIMITS.maxCaveats} caveats`);
    if (bytes[at] === FIELD_LOCATION) {
      // A third-party caveat: location, caveat id, verification id, in that order.
      if (thirdParty.length === MAX_THIRD_PARTY_CAVEATS)
        fail(`token has more than ${MAX_THIRD_PARTY_CAVEATS} third-party caveats`);
      const rawLocation = field(FIELD_LOCATION, 'caveat location', 256);
      let caveatLocation = '';
      try {
        caveatLocation = utf8.decode(rawLocation);
      } catch {
        fail('token caveat location is not UTF-8');
      }
      const caveatId = field(FIELD_IDENTIFIER, 'caveat id', MAX_CAVEAT_ID_BYTES);
      const verificationId = field(FIELD_VID, 'verification id', VID_BYTES);
      if (verificationId.length !== VID_BYTES)
        fail(`token verification id is not ${VID_BYTES} bytes`);
      if (byte() !== FIELD_EOS) fail('token third-party caveat does not end');
      thirdParty.push({
        after: caveats.length,
        caveat: { location: caveatLocation, caveatId, verificationId },
      });
      continue;
    }
    if (bytes[at] === FIELD_VID) fail('token has a verification id without a location');
    caveats.push(field(FIELD_IDENTIFIER, 'caveat', TOKEN_LIMITS.maxCaveatBytes));
    if (byte() !== FIELD_EOS) fail('token has a verification id without a location');
  }
  at++;
  const signature = field(FIELD_SIGNATURE, 'signature', SIGNATURE_BYTES);
  if (signature.length !== SIGNATURE_BYTES) fail('token signature is not 32 bytes');
  if (at !== bytes.length) fail('token has bytes after its signature');
  return { location, identifier, caveats, thirdParty, signature };
}
