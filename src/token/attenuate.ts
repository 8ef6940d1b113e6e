/**
 * Attenuation: what a token's holder can do offline, without the root key.
 * Appending a caveat chains the signature forward, so the result can only
 * ever allow less than the token it came from.
 */
import { MintfsError } from '../errors.js';
import { parseCaveat } from './caveats.js';
import { TOKEN_LIMITS } from './limits.js';
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
  if (
    decoded.caveats.length + decoded.thirdParty.length + extraCaveats.length >
    TOKEN_LIMITS.maxCaveats
  )
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `a token holds at most ${TOKEN_LIMITS.maxCaveats} caveats; this one has ${decoded.caveats.length}`,
    );
  const added = extraCaveats.map((text) => Buffer.from(text));
  let signature: Uint8Array = decoded.signature;
  for (const caveat of added) signature = signCaveat(signature, caveat);
  const bytes = encodeMacaroonV2({
    location: decoded.location,
    identifier: decoded.identifier,
    caveats: [...decoded.caveatBytes, ...added],
    thirdParty: decoded.thirdParty,
    signature,
  });
  const text = encodeTokenText(bytes);
  if (text.length > TOKEN_LIMITS.maxTokenChars)
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `the attenuated token would be longer than ${TOKEN_LIMITS.maxTokenChars} characters`,
    );
  return text;
}
