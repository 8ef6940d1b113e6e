/**
 * The macaroon identifier: `mintfs/v2/<key-id>/<token-id>/<issued>`. It names
 * the root key that signed the token (so verifiers pick the right key after
 * rotation), a random token id (for audit and revocation), and when it was
 * minted in Unix seconds (for `mintfs revoke --agent --before`). It holds no
 * secret. The identifier is signed at the root of the HMAC chain, so unlike
 * a caveat nobody holding the token can add or change an issue time.
 */
import { randomFillSync } from 'node:crypto';

export const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN_ID = /^[A-Za-z0-9_-]{22}$/;
// Ten digits until the year 2286: every token of one file has the same length.
const ISSUED = /^[0-9]{10}$/;
const PREFIX = 'mintfs/v2/';

export interface TokenIdentifier {
  readonly keyId: string;
  readonly tokenId: string;
  /** Whole seconds. */
  readonly issuedAt: Date;
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
  const issued = String(Math.floor(id.issuedAt.getTime() / 1000)).padStart(10, '0');
  return `${PREFIX}${id.keyId}/${id.tokenId}/${issued}`;
}

export function parseIdentifier(text: string): TokenIdentifier | undefined {
  if (!text.startsWith(PREFIX)) return undefined;
  const [keyId, tokenId, issued, ...rest] = text.slice(PREFIX.length).split('/');
  if (rest.length > 0 || keyId === undefined || tokenId === undefined || issued === undefined)
    return undefined;
  if (!KEY_ID.test(keyId) || !TOKEN_ID.test(tokenId) || !ISSUED.test(issued)) return undefined;
  return { keyId, tokenId, issuedAt: new Date(Number(issued) * 1000) };
}
