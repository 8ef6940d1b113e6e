/**
 * The macaroon identifier: `mintfs/v1/<key-id>/<token-id>`. It names the root
 * key that signed the token (so verifiers pick the right key after rotation)
 * and a random token id (for audit and revocation). It holds no secret.
 */
import { randomFillSync } from 'node:crypto';

export const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN_ID = /^[A-Za-z0-9_-]{22}$/;
const PREFIX = 'mintfs/v1/';

export interface TokenIdentifier {
  readonly keyId: string;
  readonly tokenId: string;
}

// Random bytes are drawn from the CSPRNG in batches: one call per 256 ids.
const ID_BYTES = 16;
const pool = Buffer.alloc(ID_BYTES * 256);
let poolOffset = pool.length;

/** 128 random bits, base64url: always 22 characters. */
export function newTokenId(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + ID_BYTES);
  // Never hand the same bytes out twice, even if the pool were read again.
  pool.fill(0, poolOffset, poolOffset + ID_BYTES);
  poolOffset += ID_BYTES;
  return id;
}

export function formatIdentifier(id: TokenIdentifier): string {
  return `${PREFIX}${id.keyId}/${id.tokenId}`;
}

export function parseIdentifier(text: string): TokenIdentifier | undefined {
  if (!text.startsWith(PREFIX)) return undefined;
  const [keyId, tokenId, ...rest] = text.slice(PREFIX.length).split('/');
  if (rest.length > 0 || keyId === undefined || tokenId === undefined) return undefined;
  if (!KEY_ID.test(keyId) || !TOKEN_ID.test(tokenId)) return undefined;
  return { keyId, tokenId };
}
