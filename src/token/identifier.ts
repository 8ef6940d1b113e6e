/**
 * The macaroon identifier: `mintfs/v1/<key-id>/<token-id>`. It names the root
 * key that signed the token (so verifiers pick the right key after rotation)
 * and a random token id (for audit and revocation). It holds no secret.
 */
import { randomBytes } from 'node:crypto';

export const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN_ID = /^[A-Za-z0-9_-]{22}$/;
const PREFIX = 'mintfs/v1/';

export interface TokenIdentifier {
  readonly keyId: string;
  readonly tokenId: string;
}

/** 128 random bits, base64url: always 22 characters. */
export function newTokenId(): string {
  return randomBytes(16).toString('base64url');
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
