/**
 * The one verification pipeline, composed here and nowhere else:
 *
 *   decode → signature (key lookup; a key file that appeared since the last
 *   load is picked up at once) → revocation → caveats against the request.
 *
 * `mintfs verify`, the gateway and the `mintfs/verify` library all use it;
 * the gateway's cache wraps its signature step (one HMAC chain per token
 * text). The token code underneath is pure; the sources (keyring,
 * revocations) are functions, so callers choose between a loaded snapshot
 * and a watched, reloading one.
 */
import type { Keyring } from '../keys/keyring.js';
import { describeRevocation, type RevocationList } from '../revocation/revocations.js';
import {
  authenticateToken,
  authorizeRequest,
  checkRevocation,
  type AuthenticatedToken,
  type Denial,
  type RevocationCheck,
  type Verdict,
  type VerifyRequest,
} from '../token/verify.js';

export interface VerifierSources {
  readonly keyring: () => Keyring;
  /** Reloads the keyring if a key with this id has appeared on disk; whether it did. */
  readonly reloadKeyringFor?: (keyId: string | undefined) => boolean;
  readonly revocations?: () => RevocationList;
  /** Remembers authenticated tokens by their text (the gateway's VerificationCache). */
  readonly cache?: {
    authenticate(token: string, keyring: Keyring, now: Date): AuthenticatedToken | Denial;
  };
}

export interface Checked {
  readonly verdict: Verdict;
  /** The token, when its signature and caveats were valid (for audit: agent, reader). */
  readonly token?: AuthenticatedToken;
}

export interface Verifier {
  /** Signature and caveat syntax only: is this a token we issued, unexpired caveats aside? */
  authenticate(token: string, now: Date): AuthenticatedToken | Denial;
  /** The whole pipeline: may this request go ahead with this token, now? */
  check(token: string, request: VerifyRequest, now: Date): Checked;
}

export function createVerifier(sources: VerifierSources): Verifier {
  const once = (token: string, now: Date): AuthenticatedToken | Denial => {
    const keyring = sources.keyring();
    if (sources.cache) return sources.cache.authenticate(token, keyring, now);
    return authenticateToken(token, keyring.keyById, (id) =>
      keyring.retired.some((key) => key.id === id),
    );
  };
  const authenticate = (token: string, now: Date): AuthenticatedToken | Denial => {
    const first = once(token, now);
    // Signed by a key rotated in since our last poll: pick it up now rather than refuse.
    if (
      'allowed' in first &&
      first.code === 'ERR_KEY_UNKNOWN' &&
      sources.reloadKeyringFor?.(first.keyId)
    )
      return once(token, now);
    return first;
  };
  // Reads the current list on each call (it reloads); made once, not per request.
  const revocations = sources.revocations;
  const revokedBy: RevocationCheck | undefined =
    revocations === undefined
      ? undefined
      : (token, now) => {
          const record = revocations().find(token, now);
          return record === undefined ? undefined : describeRevocation(record);
        };
  return {
    authenticate,
    check(token, request, now) {
      const authenticated = authenticate(token, now);
      if ('allowed' in authenticated) return { verdict: authenticated };
      const revoked = checkRevocation(authenticated, revokedBy, now);
      if (revoked) return { verdict: revoked, token: authenticated };
      return { verdict: authorizeRequest(authenticated, request, now), token: authenticated };
    },
  };
}
