/**
 * Verification: is this request allowed by this token, now?
 *
 * Never throws for bad input: every failure is a denial carrying an error
 * code and a reason. Order matters: the signature is checked before any
 * caveat, so an unverified token learns nothing about the caveat checks.
 */
import type { MintfsErrorCode } from '../errors.js';
import { isMintfsError } from '../errors.js';
import type { RootKey } from '../keys/root-key.js';
import { formatInstant } from '../util/instant.js';
import { parseCaveat, type AgentCaveat, type Caveat, type TimeBeforeCaveat } from './caveats.js';
import { normaliseRequestPath } from './request-path.js';
import { decodeToken, type DecodedToken } from './token-text.js';

export interface VerifyRequest {
  readonly service: string;
  /** Hostname the upstream is reached at, without port. */
  readonly host: string;
  readonly method: string;
  /** The request path exactly as it will be sent upstream, without the query. */
  readonly rawPath: string;
}

export interface VerifyContext {
  /** Looks a root key up by id; undefined for an unknown or retired key. */
  readonly keyById: (keyId: string) => RootKey | undefined;
  readonly now: Date;
}

interface TokenFacts {
  readonly tokenId?: string;
  readonly keyId?: string;
  readonly agent?: string;
}

export type Verdict =
  | (TokenFacts & { readonly allowed: true; readonly expiresAt: string })
  | (TokenFacts & {
      readonly allowed: false;
      readonly code: MintfsErrorCode;
      readonly reason: string;
      /** The caveat that refused the request, when one did. */
      readonly caveat?: string;
    });

export function verifyToken(
  token: string,
  request: VerifyRequest,
  context: VerifyContext,
): Verdict {
  let decoded: DecodedToken;
  try {
    decoded = decodeToken(token);
  } catch (err) {
    return deny({}, isMintfsError(err) ? err.code : 'ERR_TOKEN_MALFORMED', reasonOf(err));
  }
  const facts: TokenFacts = { tokenId: decoded.tokenId, keyId: decoded.keyId };

  const key = context.keyById(decoded.keyId);
  if (!key)
    return deny(facts, 'ERR_KEY_UNKNOWN', `token was signed by unknown key ${decoded.keyId}`);
  try {
    decoded.macaroon.verify(key.secret, () => null);
  } catch {
    return deny(facts, 'ERR_TOKEN_SIGNATURE', 'token signature is not valid');
  }

  const caveats: Caveat[] = [];
  for (const text of decoded.caveats) {
    const parsed = parseCaveat(text);
    if (!parsed.ok) return deny(facts, parsed.code, parsed.reason, text);
    caveats.push(parsed.caveat);
  }
  const agent = caveats.find((c): c is AgentCaveat => c.kind === 'agent')?.agent;
  const audited: TokenFacts = agent === undefined ? facts : { ...facts, agent };
  const expiries = caveats.filter((c): c is TimeBeforeCaveat => c.kind === 'time-before');
  // Every mintfs token expires; one that does not was not made by mintfs.
  if (expiries.length === 0)
    return deny(audited, 'ERR_CAVEAT_MALFORMED', 'token has no time-before caveat');

  const path = normaliseRequestPath(request.rawPath);
  if (!path.ok) return deny(audited, 'ERR_PATH_AMBIGUOUS', `request refused: ${path.reason}`);

  const checked = {
    service: request.service,
    host: request.host,
    method: request.method.toUpperCase(),
    pathSegments: path.segments,
    now: context.now,
  };
  for (const caveat of caveats) {
    const refusal = caveat.check(checked);
    if (refusal !== undefined) {
      const code = caveat.kind === 'time-before' ? 'ERR_TOKEN_EXPIRED' : 'ERR_CAVEAT_UNSATISFIED';
      return deny(audited, code, refusal, caveat.text);
    }
  }
  const expiresAt = new Date(Math.min(...expiries.map((c) => c.at.getTime())));
  return { ...audited, allowed: true, expiresAt: formatInstant(expiresAt) };
}

function deny(facts: TokenFacts, code: MintfsErrorCode, reason: string, caveat?: string): Verdict {
  return caveat === undefined
    ? { ...facts, allowed: false, code, reason }
    : { ...facts, allowed: false, code, reason, caveat };
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : 'token is malformed';
}
