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

/** The key pair an aws-credential-process file names: no secret, the gateway signs for real. */
export const AWS_PLACEHOLDER_KEY_ID = 'MINTFSPLACEHOLDER';
export const AWS_PLACEHOLDER_SECRET = 'mintfs-signs-at-the-gateway';

/**
 * What a token file holds, per format, as data: the text before the token
 * (the profile's prefix follows it), and the text after it, with {expiresAt}
 * and {tokenId} filled in. This table is the one definition: renderContent
 * below renders it for the fuse-native backend, and the native backend's
 * minter is handed these two strings with each file (native-tree.ts) and
 * knows no format of its own (native/addon/mint.c). Every filled-in value is
 * base64url, digits or RFC 3339 punctuation, none of which JSON escapes, and
 * the profile schema holds prefixes to the same, so `json` stays JSON.
 */
export const FORMAT_LAYOUTS: Readonly<
  Record<TokenFormat, { readonly before: string; readonly after: string }>
> = {
  raw: { before: '', after: '' },
  line: { before: '', after: '\n' },
  json: { before: '{"token":"', after: '","expiresAt":"{expiresAt}","tokenId":"{tokenId}"}\n' },
  // AWS's credential_process document (`credential_process = cat FILE`): the
  // macaroon rides as the session token, in X-Amz-Security-Token, where the
  // gateway takes it from; SDKs read the file again before Expiration. The key
  // pair is a placeholder: the gateway re-signs with the real one (src/aws/).
  // The token comes early so `before` stays within the native minter's 64 bytes.
  'aws-credential-process': {
    before: '{"Version":1,"SessionToken":"',
    after: `","Expiration":"{expiresAt}","AccessKeyId":"${AWS_PLACEHOLDER_KEY_ID}","SecretAccessKey":"${AWS_PLACEHOLDER_SECRET}"}\n`,
  },
};

export function renderContent(minted: MintedToken, format: TokenFormat, prefix = ''): Buffer {
  const { before, after } = FORMAT_LAYOUTS[format];
  const filled = after
    .replaceAll('{expiresAt}', formatInstant(minted.expiresAt))
    .replaceAll('{tokenId}', minted.tokenId);
  return Buffer.from(`${before}${prefix}${minted.token}${filled}`);
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
