/** The one place error codes become process exit codes. */
import { isMintfsError, type MintfsErrorCode } from '../errors.js';

export const EXIT_OK = 0;
/** The request was refused (verify). */
export const EXIT_DENIED = 1;
/** Bad input: usage, profile, token or caveat. */
export const EXIT_INVALID = 2;
/** The environment failed: keyring, mountpoint, FUSE. */
export const EXIT_FAILURE = 3;

const INVALID: readonly MintfsErrorCode[] = [
  'ERR_PROFILE_INVALID',
  'ERR_PROFILE_UNREADABLE',
  'ERR_INPUT_INVALID',
  'ERR_CONFIG_INVALID',
  'ERR_CONFIG_UNREADABLE',
  'ERR_POLICY_INVALID',
  'ERR_POLICY_UNREADABLE',
  'ERR_TOKEN_MALFORMED',
  'ERR_CAVEAT_UNKNOWN',
  'ERR_CAVEAT_MALFORMED',
  'ERR_NOT_FOUND',
  'ERR_KEY_UNKNOWN',
  'ERR_KEY_SIGNING',
];

export function exitCodeFor(err: unknown): number {
  if (isMintfsError(err) && INVALID.includes(err.code)) return EXIT_INVALID;
  return EXIT_FAILURE;
}
