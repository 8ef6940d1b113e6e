/**
 * `mintfs/verify`: accept mintfs tokens directly in a first-party service,
 * with the same pipeline the gateway uses (decode, signature, revocation,
 * caveats) over a keyring directory that is watched like the gateway's:
 * rotations, retirements and revocations apply within a second.
 *
 *   import { createTokenVerifier } from 'mintfs/verify';
 *   const verifier = createTokenVerifier({ keys: '/var/lib/mintfs/keys' });
 *   const verdict = verifier.check(token, { service: 'billing', method: 'GET', url: 'https://billing.internal/invoices/7' });
 *   if (!verdict.allowed) return reply(401, verdict.code);   // typed: ERR_TOKEN_EXPIRED, ERR_CAVEAT_UNSATISFIED, ...
 *   verifier.close();
 */
import { MintfsError, type MintfsErrorCode } from '../errors.js';
import { reloadIfKeyAppeared, watchKeyring } from '../keys/watch-keyring.js';
import { createLogger, type Logger } from '../log/logger.js';
import { revocationsDir } from '../revocation/revocations.js';
import { watchRevocations } from '../revocation/watch-revocations.js';
import { splitUrl } from '../token/request-path.js';
import type { Denial, Verdict } from '../token/verify.js';
import { createVerifier } from '../verifier/verifier.js';
import { installNativeHmacChain } from '../verifier/native-hmac.js';

export type { Denial, MintfsErrorCode, Verdict };
export { MintfsError };

export interface TokenVerifierOptions {
  /** The keyring directory (the same one the mounts sign with). */
  readonly keys: string;
  /** Where reload and failure lines go; silent by default. */
  readonly logger?: Logger;
  /** The clock; `new Date()` by default. */
  readonly clock?: () => Date;
}

export interface RequestToCheck {
  /** The service this request is for: the `service` caveat must name it. */
  readonly service: string;
  readonly method: string;
  /** The absolute URL as the client sent it (its host and raw path are what caveats judge). */
  readonly url: string;
}

export interface TokenVerifier {
  /** Never throws for a bad token or request: every refusal is a Denial with a code. */
  check(token: string, request: RequestToCheck): Verdict;
  /** Stops watching the keyring and revocations. */
  close(): void;
}

/** Throws ERR_KEYRING_MISSING (and the like) when the keyring cannot be used at all. */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const logger = options.logger ?? createLogger({ level: 'silent' });
  installNativeHmacChain();
  const keyring = watchKeyring(options.keys, logger);
  const revocations = watchRevocations(revocationsDir(options.keys), logger);
  const verifier = createVerifier({
    keyring: () => keyring.current,
    reloadKeyringFor: (keyId) => reloadIfKeyAppeared(keyring, keyId),
    revocations: () => revocations.current,
  });
  const clock = options.clock ?? (() => new Date());
  return {
    check(token, request) {
      const target = splitUrl(request.url);
      if (target === undefined)
        return {
          allowed: false,
          code: 'ERR_REQUEST_INVALID',
          reason: 'url is not an absolute http(s) URL',
        } satisfies Denial;
      return verifier.check(
        token,
        {
          service: request.service,
          method: request.method,
          host: target.host,
          rawPath: target.rawPath,
        },
        clock(),
      ).verdict;
    },
    close() {
      keyring.close();
      revocations.close();
    },
  };
}
