/**
 * Attenuation: what a token's holder can do offline, without the root key.
 * Appending a caveat chains the signature forward, so the result can only
 * ever allow less than the token it came from.
 */
import { MintfsError } from '../errors.js';
import { parseCaveat } from './caveats.js';
import { encodeMacaroonV2, signCaveat } from './macaroon-codec.js';
import { decodeToken, encodeTokenText } from './token-text.js';

export function attenuateToken(token: string, extraCaveats: readonly string[]): string {
  if (extraCaveats.length === 0)
    throw new MintfsError('ERR_INPUT_INVALID', 'attenuate needs at least one --caveat');
  for (const text of extraCaveats) {
    // Refuse what a verifier would refuse: an agent would otherwise hold a token
    // that looks narrower but only ever fails.
    const parsed = parseCaveat(text);
    if (!parsed.ok) throw new MintfsError(parsed.code, parsed.reason);
  }
  const decoded = decodeToken(token);
  const mac = decoded.macaroon;
  const added = extraCaveats.map((text) => Buffer.from(text));
  let signature: Uint8Array = mac.signature;
  for (const caveat of added) signature = signCaveat(signature, caveat);
  const bytes = encodeMacaroonV2({
    location: mac.location,
    identifier: mac.identifier,
    caveats: [...mac.caveats.map((caveat) => caveat.identifier), ...added],
    signature,
  });
  return encodeTokenText(bytes);
}
