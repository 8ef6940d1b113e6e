/** The checks every credential value passes, whatever its source. */
import { MintfsError } from '../errors.js';

/** Longer than any token a real service issues (GitHub's stateless ghs_ tokens are ~520). */
export const MAX_CREDENTIAL_BYTES = 8 * 1024;

export type Refusal = (reason: string) => MintfsError;

/** The value without its final newline; refused when empty, oversized or able to inject headers. */
export function checkCredentialValue(raw: string, fail: Refusal): string {
  const value = raw.replace(/\r?\n$/, '');
  if (value === '') throw fail('is empty');
  if (Buffer.byteLength(value) > MAX_CREDENTIAL_BYTES)
    throw fail(`is over ${MAX_CREDENTIAL_BYTES} bytes`);
  // A newline inside a header value would let the credential inject headers.
  if (/[\u0000-\u001f\u007f]/.test(value)) throw fail('contains a control character or newline');
  return value;
}

/** The refusal for one upstream's credential, naming where it comes from. */
export function refusalFor(service: string, where: string): Refusal {
  return (reason) =>
    new MintfsError(
      'ERR_CREDENTIAL_UNAVAILABLE',
      `upstreams.${service}.credential: ${where} ${reason}`,
    );
}
