/**
 * One error class for the whole project. Every failure carries a code from
 * this union; each edge (CLI exit code, FUSE errno) maps codes once, and tests
 * assert on codes rather than message text.
 */
export type MintfsErrorCode =
  // configuration and input
  | 'ERR_PROFILE_INVALID'
  | 'ERR_PROFILE_UNREADABLE'
  | 'ERR_INPUT_INVALID'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_UNREADABLE'
  | 'ERR_CREDENTIAL_UNAVAILABLE'
  // keyring
  | 'ERR_KEYRING_MISSING'
  | 'ERR_KEYRING_EXISTS'
  | 'ERR_KEYRING_PERMISSIONS'
  | 'ERR_KEYRING_CORRUPT'
  | 'ERR_KEY_UNKNOWN'
  | 'ERR_KEY_RETIRED'
  | 'ERR_KEY_SIGNING'
  | 'ERR_REVOCATIONS_UNREADABLE'
  | 'ERR_PATH_UNSAFE'
  | 'ERR_CA_EXISTS'
  | 'ERR_CA_INVALID'
  // tokens
  | 'ERR_TOKEN_MALFORMED'
  | 'ERR_TOKEN_SIGNATURE'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_TOKEN_REVOKED'
  | 'ERR_TOKEN_USES_SPENT'
  | 'ERR_CAVEAT_UNKNOWN'
  | 'ERR_CAVEAT_MALFORMED'
  | 'ERR_CAVEAT_UNSATISFIED'
  | 'ERR_PATH_AMBIGUOUS'
  // gateway requests
  | 'ERR_TOKEN_MISSING'
  | 'ERR_TUNNEL_REFUSED'
  | 'ERR_HOST_MISMATCH'
  | 'ERR_LISTEN_FAILED'
  | 'ERR_REQUEST_INVALID'
  | 'ERR_SERVICE_UNKNOWN'
  | 'ERR_METHOD_NOT_ALLOWED'
  | 'ERR_BODY_TOO_LARGE'
  | 'ERR_REQUEST_TIMEOUT'
  | 'ERR_TOO_MANY_REQUESTS'
  | 'ERR_UPSTREAM_UNREACHABLE'
  | 'ERR_UPSTREAM_TIMEOUT'
  // file system
  | 'ERR_NOT_FOUND'
  | 'ERR_NOT_A_DIRECTORY'
  | 'ERR_IS_A_DIRECTORY'
  | 'ERR_READ_ONLY'
  | 'ERR_BAD_HANDLE'
  | 'ERR_MINT_FAILED'
  // mounting
  | 'ERR_MOUNTPOINT_INVALID'
  | 'ERR_MOUNTPOINT_BUSY'
  | 'ERR_MOUNT_FAILED'
  | 'ERR_UNSUPPORTED_PLATFORM'
  | 'ERR_NATIVE_UNAVAILABLE'
  | 'ERR_READER_DENIED'
  // sandboxes
  | 'ERR_SANDBOX_FAILED'
  // shared state (Redis)
  | 'ERR_STATE_UNAVAILABLE';

export class MintfsError extends Error {
  override readonly name = 'MintfsError';
  readonly code: MintfsErrorCode;

  constructor(code: MintfsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isMintfsError(err: unknown, code?: MintfsErrorCode): err is MintfsError {
  return err instanceof MintfsError && (code === undefined || err.code === code);
}

/** A one-line description of any thrown value, for errors we did not create. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name;
  return String(err);
}
