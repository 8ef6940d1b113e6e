/**
 * Third-party caveats and discharges in the macaroon format (libmacaroons,
 * pymacaroons, go-macaroon and the `macaroon` package agree on it):
 *
 * - A third-party caveat carries a location, a caveat id (what the third
 *   party reads) and a verification id: the caveat's root key, derived as
 *   every macaroon key is and sealed (XSalsa20-Poly1305, NaCl's secretbox)
 *   under the signature so far. It moves the signature on with
 *   sig = HMAC(sig, HMAC(sig, vid) || HMAC(sig, cid)).
 * - A discharge is a macaroon whose identifier is the caveat id, signed with
 *   the caveat's root key; it is bound to the token it discharges by
 *   sig' = HMAC(0, HMAC(0, token sig) || HMAC(0, discharge sig)), so it is
 *   good with that token only.
 *
 * The secretbox nonce is derived from the signature so far rather than drawn
 * at random: that signature is unique to one token (its id is random), so no
 * nonce is ever used with a key twice, and minting stays pure.
 */
import { timingSafeEqual } from 'node:crypto';
import nacl from 'tweetnacl';
import { hmacSha256 } from './hmac-chain.js';
import { deriveMacaroonKey } from './macaroon-codec.js';

const NONCE_BYTES = nacl.secretbox.nonceLength;
const ZERO_KEY = Buffer.alloc(32);
const NONCE_LABEL = Buffer.from('mintfs third-party vid nonce');
/** nonce + Poly1305 tag + a 32-byte key. */
export const VID_BYTES = NONCE_BYTES + nacl.secretbox.overheadLength + 32;

export interface ThirdPartyCaveat {
  readonly location: string;
  readonly caveatId: Buffer;
  readonly verificationId: Buffer;
}

export function keyedHash2(key: Uint8Array, a: Uint8Array, b: Uint8Array): Buffer {
  return hmacSha256(key, Buffer.concat([hmacSha256(key, a), hmacSha256(key, b)]));
}

/** The verification id for a caveat root key, sealed under the signature before the caveat. */
export function sealVerificationId(signatureBefore: Uint8Array, caveatRootKey: Uint8Array): Buffer {
  const nonce = hmacSha256(signatureBefore, NONCE_LABEL).subarray(0, NONCE_BYTES);
  const sealed = nacl.secretbox(deriveMacaroonKey(caveatRootKey), nonce, signatureBefore);
  return Buffer.concat([nonce, sealed]);
}

/** The derived caveat key a verification id holds, or undefined when it does not open. */
export function openVerificationId(
  signatureBefore: Uint8Array,
  verificationId: Uint8Array,
): Buffer | undefined {
  if (verificationId.length !== VID_BYTES) return undefined;
  const opened = nacl.secretbox.open(
    verificationId.subarray(NONCE_BYTES),
    verificationId.subarray(0, NONCE_BYTES),
    signatureBefore,
  );
  return opened === null ? undefined : Buffer.from(opened);
}

/** The signature after a third-party caveat. */
export function signThirdParty(
  signatureBefore: Uint8Array,
  caveat: Pick<ThirdPartyCaveat, 'caveatId' | 'verificationId'>,
): Buffer {
  return keyedHash2(signatureBefore, caveat.verificationId, caveat.caveatId);
}

/** A discharge's signature bound to the token it discharges (libmacaroons' bind). */
export function bindDischarge(tokenSignature: Uint8Array, dischargeSignature: Uint8Array): Buffer {
  return keyedHash2(ZERO_KEY, tokenSignature, dischargeSignature);
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
