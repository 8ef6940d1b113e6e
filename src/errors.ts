/**
 * One error class for the whole project, and the one registry of its codes:
 * every failure carries a code from ERROR_CODES, with what it means; each
 * edge maps codes once (cli/exit-codes.ts, gateway/http-errors.ts,
 * fuse/errno.ts), tests assert on codes rather than message text, and
 * docs/commands.md lists them all from here (`npm run generate`).
 */
export const ERROR_CODES = {
  // configuration and input
  ERR_PROFILE_INVALID: 'a profile does not pass its schema (the message names the field)',
  ERR_PROFILE_UNREADABLE: 'a profile cannot be read, or is not YAML',
  ERR_INPUT_INVALID: 'a command-line value is not what the option takes',
  ERR_CONFIG_INVALID: 'a gateway config does not pass its schema (the message names the field)',
  ERR_CONFIG_UNREADABLE: 'a gateway config cannot be read, or is not YAML',
  ERR_CREDENTIAL_UNAVAILABLE:
    "an upstream's credential source is missing, empty or unsafe at start, or failed to mint one for a request",
  // keyring
  ERR_KEYRING_MISSING: 'no keyring at that path (mintfs keys init makes one)',
  ERR_KEYRING_EXISTS: 'keys init would overwrite a keyring',
  ERR_KEYRING_PERMISSIONS: 'the keyring or a key file is readable by group or others',
  ERR_KEYRING_CORRUPT: 'a key file or retired record does not hold what it must',
  ERR_KEY_UNKNOWN: 'the token names a key this keyring does not have',
  ERR_KEY_RETIRED: 'the token was signed by a retired key',
  ERR_KEY_SIGNING: 'the signing key cannot be retired',
  ERR_REVOCATIONS_UNREADABLE: 'a revocation record cannot be read (the last good list stays)',
  ERR_PATH_UNSAFE: 'a keyring, config, profile or credential path others could change',
  ERR_CA_EXISTS: 'ca init would overwrite an interception CA',
  ERR_CA_INVALID: 'the interception CA cannot be read or does not cover a host',
  // tokens
  ERR_TOKEN_MALFORMED: 'the token text is not a mintfs macaroon',
  ERR_TOKEN_SIGNATURE: 'the signature does not verify',
  ERR_TOKEN_EXPIRED: 'the time-before caveat has passed',
  ERR_TOKEN_REVOKED: 'a revocation covers the token',
  ERR_TOKEN_USES_SPENT: 'the token has made the requests its uses caveat allows',
  ERR_TOKEN_USES_UNCOUNTED:
    'a token with a use budget met a check that does not spend it (mintfs/verify: checkAndSpend)',
  ERR_CAVEAT_UNKNOWN: 'a caveat outside the vocabulary (refused, never skipped)',
  ERR_CAVEAT_MALFORMED: 'a caveat of a known kind that does not parse',
  ERR_CAVEAT_UNSATISFIED: 'a caveat does not allow this request (the message names it)',
  ERR_PATH_AMBIGUOUS:
    'a request path upstreams could read differently (dot segments, encoded slashes)',
  // gateway requests
  ERR_TOKEN_MISSING: 'a request without a token',
  ERR_TUNNEL_REFUSED: 'a CONNECT the gateway will not intercept',
  ERR_HOST_MISMATCH: 'a request inside a tunnel for another host than the tunnel',
  ERR_LISTEN_FAILED: 'the gateway cannot listen on an address',
  ERR_REQUEST_INVALID: 'a request the gateway will not forward as it is',
  ERR_SERVICE_UNKNOWN: 'no upstream of that name',
  ERR_METHOD_NOT_ALLOWED: 'a method override, or a body on a method that takes none',
  ERR_BODY_TOO_LARGE: 'a body over limits.maxBodyBytes',
  ERR_REQUEST_TIMEOUT: 'the client was too slow sending its request or body',
  ERR_TOO_MANY_REQUESTS: 'the agent has limits.agentConcurrency requests in flight',
  ERR_TOO_MANY_CONNECTIONS:
    'the client holds limits.clientConnections connections (tunnels included)',
  ERR_UPSTREAM_UNREACHABLE:
    'the upstream cannot be reached, or answered in a form the gateway cannot check (an unknown coding, an unasked partial response)',
  ERR_UPSTREAM_TIMEOUT: 'the upstream did not answer within limits.upstreamTimeout',
  // approval
  ERR_APPROVAL_REQUIRED:
    'the request is one the token holds for an approver, and no approval service judged it',
  ERR_APPROVAL_DENIED:
    'an approver denied the request (do not retry; the message gives the reason)',
  ERR_APPROVAL_TIMEOUT: 'no approver decided within approval.timeout',
  ERR_APPROVAL_UNAVAILABLE: 'the gateway stopped while the request waited for an approver (retry)',
  ERR_APPROVAL_UNKNOWN: 'no pending approval has that id (decided, timed out, or never there)',
  // file system
  ERR_NOT_FOUND: 'no such virtual file or directory',
  ERR_NOT_A_DIRECTORY: 'a path goes through a file',
  ERR_IS_A_DIRECTORY: 'a directory opened as a file',
  ERR_READ_ONLY: 'any change to the file system',
  ERR_BAD_HANDLE: 'a file handle the mount does not know',
  ERR_MINT_FAILED: 'a token could not be minted (the reader gets EIO, never a partial token)',
  // mounting
  ERR_MOUNTPOINT_INVALID: 'the mountpoint is a file, not empty, or not reachable',
  ERR_MOUNTPOINT_BUSY: 'another live daemon serves the mountpoint (--takeover replaces it)',
  ERR_MOUNT_FAILED: 'the mount itself failed (FUSE, permissions, root needed)',
  ERR_UNSUPPORTED_PLATFORM: 'not Linux, or a kernel without what the option needs',
  ERR_NATIVE_UNAVAILABLE: 'the native backend is not built or does not load',
  ERR_READER_DENIED: "the reader is not in the file's readers (EACCES)",
  // sandboxes
  ERR_SANDBOX_FAILED: 'mintfs run could not set up or run the sandbox',
  // CSI node plugin (mintfs csi)
  ERR_POLICY_INVALID: 'a CSI policy does not pass its schema (the message names the field)',
  ERR_POLICY_UNREADABLE: 'a CSI policy cannot be read, or is not YAML',
  ERR_VOLUME_ARGUMENT:
    'a CSI request with a missing or bad field, or asking for what mintfs volumes are not (writable, block, persistent)',
  ERR_VOLUME_DENIED:
    "the CSI policy binds no such profile to the pod's namespace and service account",
  ERR_VOLUME_CONFLICT: 'another volume is published at the target path',
  // shared state (Redis)
  ERR_STATE_UNAVAILABLE: 'shared state the answer depends on is out of reach (fails closed)',
} as const;

export type MintfsErrorCode = keyof typeof ERROR_CODES;

/** Marks a MintfsError whichever copy of this module made it (below). */
const MINTFS_ERROR = Symbol.for('mintfs.MintfsError');

export class MintfsError extends Error {
  override readonly name = 'MintfsError';
  readonly code: MintfsErrorCode;

  constructor(code: MintfsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    // Not enumerable: it stays out of inspected and printed errors.
    Object.defineProperty(this, MINTFS_ERROR, { value: true });
  }

  /**
   * `instanceof MintfsError` by a mark rather than the prototype chain: the
   * one-shot commands are bundled as separate CommonJS files (the fast path,
   * the commands, verify --redis's Redis code; scripts/bundle-cli.mjs), each
   * with its own copy of this class, and an error one throws must still be
   * a MintfsError where another reports it (one line, its exit code).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // A subclass inherits this method: its instanceof keeps the prototype chain.
    if (this !== MintfsError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [MINTFS_ERROR]?: unknown })[MINTFS_ERROR] === true
    );
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
