/**
 * What a virtual file contains: a minted token in the file's format.
 *
 * Every token of one file signed by one key has the same length (fixed-length
 * ids, whole-second expiry), so `stat` can report the exact size before any
 * open. Readers rely on it: copy_file_range and sendfile copy st_size bytes,
 * and some readers stop at st_size. contentLength() finds it by rendering a
 * token with the same shape; open() then checks each real token against it.
 */
import { RootKey } from '../token/root-key.js';
import type { TokenFormat } from '../profile/schema.js';
import { mintToken, type MintedToken, type TokenGrant } from '../token/mint.js';
import { formatInstant } from '../util/instant.js';

export function renderContent(minted: MintedToken, format: TokenFormat, prefix = ''): Buffer {
  const token = `${prefix}${minted.token}`;
  switch (format) {
    case 'raw':
      return Buffer.from(token);
    case 'line':
      return Buffer.from(`${token}\n`);
    case 'json':
      return Buffer.from(
        `${JSON.stringify({
          token,
          expiresAt: formatInstant(minted.expiresAt),
          tokenId: minted.tokenId,
        })}\n`,
      );
  }
}

const SAMPLE_TOKEN_ID = 'A'.repeat(22);
const SAMPLE_TIME = new Date('2000-01-01T00:00:00Z');

/** The byte length of every token this grant and key id produce. */
export function contentLength(
  grant: TokenGrant,
  format: TokenFormat,
  keyId: string,
  prefix = '',
): number {
  const sampleKey = new RootKey(keyId, Buffer.alloc(32));
  const sample = mintToken(grant, { key: sampleKey, now: SAMPLE_TIME, tokenId: SAMPLE_TOKEN_ID });
  return renderContent(sample, format, prefix).length;
}
