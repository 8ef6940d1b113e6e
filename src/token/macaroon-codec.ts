/**
 * Macaroon V2 binary format and the HMAC chain, for minting and attenuating.
 *
 * Why not `macaroon`'s own `exportBinary()`: its ByteBuffer compares against
 * an undefined `_capacity`, so every append doubles the buffer, and a token
 * with about six caveats asks for a multi-gigabyte array and throws
 * (test/unit/macaroon-package-bug.test.ts shows it). Why not its verify():
 * sjcl's HMAC costs ~100 µs a token on the gateway's hot path (ours: hmac-chain.ts), and it decodes
 * any number of caveats before it checks anything. The package stays the
 * reference both are tested against (test/unit/macaroon-reference.test.ts).
 *
 * Signatures follow libmacaroons: the root key is first derived with
 * HMAC-SHA256("macaroons-key-generator", key), then sig = HMAC(key', id) and
 * sig = HMAC(sig, caveat) for each first-party caveat (third-party caveats:
 * third-party.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import { hmacChain, hmacSha256 } from './hmac-chain.js';
import { signThirdParty, type ThirdPartyCaveat } from './third-party.js';

/** A third-party caveat and where it sits: after this many first-party caveats. */
export interface PlacedThirdParty {
  readonly after: number;
  readonly caveat: ThirdPartyCaveat;
}

export interface MacaroonParts {
  readonly location: string;
  readonly identifier: Uint8Array;
  /** First-party caveat conditions, in order. */
  readonly caveats: readonly Uint8Array[];
  /** Third-party caveats among them (approval), in order; none for most tokens. */
  readonly thirdParty?: readonly PlacedThirdParty[];
  readonly signature: Uint8Array;
}

const FIELD_EOS = 0;
const FIELD_LOCATION = 1;
const FIELD_IDENTIFIER = 2;
const FIELD_VID = 4;
const FIELD_SIGNATURE = 6;
const KEY_GENERATOR = Buffer.from('macaroons-key-generator');

export function deriveMacaroonKey(rootKey: Uint8Array): Buffer {
  return hmacSha256(KEY_GENERATOR, rootKey);
}

// The derived key depends only on the root key's bytes: derive it once per key.
const derivedKeys = new WeakMap<Uint8Array, Buffer>();

/** deriveMacaroonKey, remembered per root-key buffer (a RootKey keeps one buffer for life). */
export function derivedKeyOf(rootKey: Uint8Array): Buffer {
  let derived = derivedKeys.get(rootKey);
  if (!derived) {
    derived = deriveMacaroonKey(rootKey);
    derivedKeys.set(rootKey, derived);
  }
  return derived;
}

/** The HMAC chain over an identifier and its caveats, as the token's signature should be. */
export function chainSignature(
  derivedKey: Uint8Array,
  identifier: Uint8Array,
  caveats: readonly Uint8Array[],
): Buffer {
  return hmacChain(derivedKey, identifier, caveats);
}

/** Whether `signature` is the chain's, compared in constant time. */
export function signatureMatches(
  rootKey: Uint8Array,
  identifier: Uint8Array,
  caveats: readonly Uint8Array[],
  signature: Uint8Array,
): boolean {
  const expected = chainSignature(derivedKeyOf(rootKey), identifier, caveats);
  return signature.length === expected.length && timingSafeEqual(expected, signature);
}

/**
 * The chain over first- and third-party caveats in their order, and the
 * signature before each third-party caveat (what seals its verification id).
 */
export function chainWithThirdParty(
  derivedKey: Uint8Array,
  identifier: Uint8Array,
  caveats: readonly Uint8Array[],
  thirdParty: readonly PlacedThirdParty[],
): { signature: Buffer; before: Buffer[] } {
  let signature = hmacSha256(derivedKey, identifier);
  const before: Buffer[] = [];
  let next = 0;
  for (let i = 0; i <= caveats.length; i++) {
    while (next < thirdParty.length && (thirdParty[next] as PlacedThirdParty).after === i) {
      before.push(signature);
      signature = signThirdParty(signature, (thirdParty[next] as PlacedThirdParty).caveat);
      next++;
    }
    if (i < caveats.length) signature = hmacSha256(signature, caveats[i] as Uint8Array);
  }
  return { signature, before };
}

export function signIdentifier(derivedKey: Uint8Array, identifier: Uint8Array): Buffer {
  return hmacSha256(derivedKey, identifier);
}

export function signCaveat(signature: Uint8Array, caveat: Uint8Array): Buffer {
  return hmacSha256(signature, caveat);
}

export function encodeMacaroonV2(parts: MacaroonParts): Buffer {
  const chunks: Uint8Array[] = [Uint8Array.of(2)];
  if (parts.location !== '') field(chunks, FIELD_LOCATION, Buffer.from(parts.location, 'utf8'));
  field(chunks, FIELD_IDENTIFIER, parts.identifier);
  chunks.push(Uint8Array.of(FIELD_EOS));
  const thirdParty = parts.thirdParty ?? [];
  let next = 0;
  for (let i = 0; i <= parts.caveats.length; i++) {
    while (next < thirdParty.length && (thirdParty[next] as PlacedThirdParty).after === i) {
      const { caveat } = thirdParty[next] as PlacedThirdParty;
      field(chunks, FIELD_LOCATION, Buffer.from(caveat.location, 'utf8'));
      field(chunks, FIELD_IDENTIFIER, caveat.caveatId);
      field(chunks, FIELD_VID, caveat.verificationId);
      chunks.push(Uint8Array.of(FIELD_EOS));
      next++;
    }
    if (i === parts.caveats.length) break;
    field(chunks, FIELD_IDENTIFIER, parts.caveats[i] as Uint8Array);
    chunks.push(Uint8Array.of(FIELD_EOS));
  }
  chunks.push(Uint8Array.of(FIELD_EOS));
  field(chunks, FIELD_SIGNATURE, parts.signature);
  return Buffer.concat(chunks);
}

function field(chunks: Uint8Array[], type: number, data: Uint8Array): void {
  chunks.push(Uint8Array.of(type), uvarint(data.length), data);
}

function uvarint(value: number): Uint8Array {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Uint8Array.from(bytes);
}
