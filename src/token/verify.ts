/**
 * Verification: is this request allowed by this token, now?
 *
 * Two steps, so a caller that sees one token many times (the gateway) can
 * pay for the signature once:
 *   authenticateToken: decode, find the key, check the HMAC chain, parse
 *     every caveat (unknown or malformed ones refuse the token);
 *   authorizeRequest: normalise the path and check each caveat.
 * verifyToken does both. Nothing here throws for bad input: every failure
 * is a denial with an error code and a reason. The signature is checked
 * before any caveat, so an unverified token learns nothing from caveat checks;
 * the limits (TOKEN_LIMITS) are checked before the signature, so a hostile
 * token costs no more HMAC work than any other bad token.
 */
import type { MintfsErrorCode } from '../errors.js';
import { isMintfsError } from '../errors.js';
import type { RootKey } from './root-key.js';
import { formatInstant } from '../util/instant.js';
import {
  caveatLimitProblem,
  githubGrantOf,
  awsPoliciesOf,
  parseCaveatWithinLimits,
  refusalCodeOf,
  type AgentCaveat,
  type Caveat,
  type GitHubGrant,
  type ReaderCaveat,
  type TimeBeforeCaveat,
  type UsesCaveat,
} from './caveats.js';
import { normaliseRequestPath } from './request-path.js';
import { chainWithThirdParty, derivedKeyOf, signatureMatches } from './macaroon-codec.js';
import { sameBytes } from './third-party.js';
import { needsApproval, openTicket, type ApprovalCondition } from './approval-ticket.js';
import { decodeToken, type DecodedToken } from './token-text.js';

/** Where the minter puts a reader caveat (native/addon/mint.c): right after time-before. */
export const READER_CAVEAT_INDEX = 1;

export interface VerifyRequest {
  readonly service: string;
  /** Hostname the upstream is reached at, without port. */
  readonly host: string;
  readonly method: string;
  /** The request path exactly as it will be sent upstream, without the query. */
  readonly rawPath: string;
  /** rawPath already normalised by the caller (the gateway's router): skips doing it twice. */
  readonly pathSegments?: readonly string[];
}

export interface VerifyContext {
  /** Looks a root key up by id; undefined for an unknown or retired key. */
  readonly keyById: (keyId: string) => RootKey | undefined;
  /** Whether an id names a retired key (refused as ERR_KEY_RETIRED). */
  readonly isRetired?: (keyId: string) => boolean;
  readonly now: Date;
  /** Why a token is revoked, or undefined; none are when omitted (see revocation/). */
  readonly revoked?: RevocationCheck;
}

export interface TokenFacts {
  readonly tokenId?: string;
  readonly keyId?: string;
  readonly agent?: string;
  /** The token's use budget (its smallest `uses` caveat), when it has one. */
  readonly uses?: number;
  /** Uses spent so far, this request's included, when whoever judged it counted them. */
  readonly used?: number;
}

export interface Denial extends TokenFacts {
  readonly allowed: false;
  readonly code: MintfsErrorCode;
  readonly reason: string;
  /** The caveat that refused the request, when one did. */
  readonly caveat?: string;
  /** With ERR_APPROVAL_REQUIRED: the approval caveats this request needs discharged. */
  readonly approvals?: readonly ApprovalCaveat[];
}

/** An approval caveat of an authenticated token: what a discharge for it is checked against. */
export interface ApprovalCaveat {
  readonly caveatId: Buffer;
  readonly verificationId: Buffer;
  /** The token's signature before this caveat: it seals the verification id. */
  readonly signatureBefore: Buffer;
  readonly condition: ApprovalCondition;
}

export type Verdict =
  (TokenFacts & { readonly allowed: true; readonly expiresAt: string }) | Denial;

/** A token whose signature is valid and whose caveats all parse. */
export interface AuthenticatedToken {
  readonly authenticated: true;
  readonly tokenId: string;
  readonly keyId: string;
  readonly agent?: string;
  /** Who read it from the mount, when the token carries a `reader` caveat. */
  readonly reader?: string;
  readonly issuedAt: Date;
  /** Requests the token may make (its smallest `uses` caveat), to be counted by the caller; absent: no limit. */
  readonly uses?: number;
  /** What the token may ask of GitHub (the intersection of its github caveats); absent: not narrowed. */
  readonly github?: GitHubGrant;
  /** The session policies its aws-policy caveats name (more than one: none may be used); absent: none named. */
  readonly awsPolicies?: readonly string[];
  /** When this copy stops being valid: the earliest of its `time-before` caveats. */
  readonly expiresAt: Date;
  /**
   * The expiry the minter wrote: its `time-before`, always the first caveat. A
   * holder can append an earlier one, never a later one, so no copy of this
   * token (same id) is valid past it. What a use budget is counted until:
   * counting only until expiresAt would let a short-lived copy reset it.
   */
  readonly mintedExpiresAt: Date;
  /** expiresAt as RFC 3339, formatted once. */
  readonly expiresAtText: string;
  readonly caveats: readonly Caveat[];
  /** Approval caveats (third-party); empty for most tokens. */
  readonly approvals: readonly ApprovalCaveat[];
  /** The token's signature: a discharge is bound to it. */
  readonly signature: Buffer;
}

export function authenticateToken(
  token: string,
  keyById: (keyId: string) => RootKey | undefined,
  /** Whether an id is of a retired key: such a token is refused as retired, not unknown. */
  isRetired: (keyId: string) => boolean = () => false,
): AuthenticatedToken | Denial {
  let decoded: DecodedToken;
  try {
    decoded = decodeToken(token);
  } catch (err) {
    return deny({}, isMintfsError(err) ? err.code : 'ERR_TOKEN_MALFORMED', reasonOf(err));
  }
  const facts: TokenFacts = { tokenId: decoded.tokenId, keyId: decoded.keyId };
  for (const text of decoded.caveats) {
    const problem = caveatLimitProblem(text);
    if (problem !== undefined) return deny(facts, 'ERR_TOKEN_MALFORMED', problem);
  }

  const key = keyById(decoded.keyId);
  if (!key)
    return isRetired(decoded.keyId)
      ? deny(facts, 'ERR_KEY_RETIRED', `token was signed by key ${decoded.keyId}, which is retired`)
      : deny(facts, 'ERR_KEY_UNKNOWN', `token was signed by unknown key ${decoded.keyId}`);
  const approvals: ApprovalCaveat[] = [];
  if (decoded.thirdParty.length === 0) {
    if (!signatureMatches(key.secret, decoded.identifier, decoded.caveatBytes, decoded.signature))
      return deny(facts, 'ERR_TOKEN_SIGNATURE', 'token signature is not valid');
  } else {
    const chain = chainWithThirdParty(
      derivedKeyOf(key.secret),
      decoded.identifier,
      decoded.caveatBytes,
      decoded.thirdParty,
    );
    if (!sameBytes(chain.signature, decoded.signature))
      return deny(facts, 'ERR_TOKEN_SIGNATURE', 'token signature is not valid');
    for (const [index, { caveat }] of decoded.thirdParty.entries()) {
      const opened = openTicket(key, caveat.caveatId);
      if (!opened.ok) return deny(facts, 'ERR_CAVEAT_MALFORMED', opened.reason);
      approvals.push({
        caveatId: caveat.caveatId,
        verificationId: caveat.verificationId,
        signatureBefore: chain.before[index] as Buffer,
        condition: opened.condition,
      });
    }
  }

  const caveats: Caveat[] = [];
  for (const [index, text] of decoded.caveats.entries()) {
    const parsed = parseCaveatWithinLimits(text);
    if (!parsed.ok) return deny(facts, parsed.code, parsed.reason, text);
    // The mount writes its reader caveat second, straight after time-before;
    // a holder can only append, so one anywhere else is a forged audit claim.
    if (parsed.caveat.kind === 'reader' && index !== READER_CAVEAT_INDEX)
      return deny(
        facts,
        'ERR_CAVEAT_MALFORMED',
        'a reader caveat was added after minting: only the mount names the reader',
        text,
      );
    caveats.push(parsed.caveat);
  }
  const agent = caveats.find((c): c is AgentCaveat => c.kind === 'agent')?.agent;
  const reader = caveats.find((c): c is ReaderCaveat => c.kind === 'reader')?.reader;
  const audited: TokenFacts = agent === undefined ? facts : { ...facts, agent };
  const expiries = caveats.filter((c): c is TimeBeforeCaveat => c.kind === 'time-before');
  // Every mintfs token expires; one that does not was not made by mintfs.
  if (expiries.length === 0)
    return deny(audited, 'ERR_CAVEAT_MALFORMED', 'token has no time-before caveat');
  // The minter writes its expiry first (holders can only append): a token
  // whose first caveat is anything else was not minted by mintfs, and its
  // budget could not be dated (see mintedExpiresAt).
  const minted = caveats[0];
  if (minted?.kind !== 'time-before')
    return deny(
      audited,
      'ERR_CAVEAT_MALFORMED',
      'the first caveat is not time-before: mintfs writes the expiry first',
    );
  const expiresAt = new Date(Math.min(...expiries.map((c) => c.at.getTime())));
  const budgets = caveats.filter((c): c is UsesCaveat => c.kind === 'uses');
  const uses = budgets.length === 0 ? undefined : Math.min(...budgets.map((c) => c.uses));
  const github = githubGrantOf(caveats);
  const awsPolicies = awsPoliciesOf(caveats);
  return {
    authenticated: true,
    tokenId: decoded.tokenId,
    keyId: decoded.keyId,
    ...(agent === undefined ? {} : { agent }),
    ...(reader === undefined ? {} : { reader }),
    ...(uses === undefined ? {} : { uses }),
    ...(github === undefined ? {} : { github }),
    ...(awsPolicies === undefined ? {} : { awsPolicies }),
    issuedAt: decoded.issuedAt,
    expiresAt,
    mintedExpiresAt: (minted as TimeBeforeCaveat).at,
    expiresAtText: formatInstant(expiresAt),
    caveats,
    approvals,
    signature: decoded.signature,
  };
}

export function authorizeRequest(
  token: AuthenticatedToken,
  request: VerifyRequest,
  now: Date,
): Verdict {
  const facts: TokenFacts = {
    tokenId: token.tokenId,
    keyId: token.keyId,
    ...(token.agent === undefined ? {} : { agent: token.agent }),
    ...(token.uses === undefined ? {} : { uses: token.uses }),
  };
  let segments = request.pathSegments;
  if (segments === undefined) {
    const path = normaliseRequestPath(request.rawPath);
    if (!path.ok) return deny(facts, 'ERR_PATH_AMBIGUOUS', `request refused: ${path.reason}`);
    segments = path.segments;
  }
  const checked = {
    service: request.service,
    host: request.host,
    method: request.method.toUpperCase(),
    pathSegments: segments,
    now,
  };
  for (const caveat of token.caveats) {
    const refusal = caveat.check(checked);
    if (refusal !== undefined) {
      return deny(facts, refusalCodeOf(caveat.kind), refusal, caveat.text);
    }
  }
  if (token.approvals.length > 0) {
    // Requests outside every approval condition are discharged by the
    // approval service's standing policy (nothing to ask); the rest wait.
    const wanted = token.approvals.filter((a) =>
      needsApproval(a.condition, checked.method, segments),
    );
    if (wanted.length > 0)
      return {
        ...deny(
          facts,
          'ERR_APPROVAL_REQUIRED',
          `${checked.method} /${segments.join('/')} needs an approver's decision`,
        ),
        approvals: wanted,
      };
  }
  return { ...facts, allowed: true, expiresAt: token.expiresAtText };
}

export function verifyToken(
  token: string,
  request: VerifyRequest,
  context: VerifyContext,
): Verdict {
  const authenticated = authenticateToken(token, context.keyById, context.isRetired);
  if ('allowed' in authenticated) return authenticated;
  const revoked = checkRevocation(authenticated, context.revoked, context.now);
  if (revoked) return revoked;
  return authorizeRequest(authenticated, request, context.now);
}

/** Why an authenticated token is revoked at `now`, or undefined when it is not. */
export type RevocationCheck = (token: AuthenticatedToken, now: Date) => string | undefined;

/** A denial when a revocation in force covers this (authenticated) token. */
export function checkRevocation(
  token: AuthenticatedToken,
  revoked: RevocationCheck | undefined,
  now: Date,
): Denial | undefined {
  const reason = revoked?.(token, now);
  if (reason === undefined) return undefined;
  return deny(
    {
      tokenId: token.tokenId,
      keyId: token.keyId,
      ...(token.agent === undefined ? {} : { agent: token.agent }),
    },
    'ERR_TOKEN_REVOKED',
    reason,
  );
}

function deny(facts: TokenFacts, code: MintfsErrorCode, reason: string, caveat?: string): Denial {
  return caveat === undefined
    ? { ...facts, allowed: false, code, reason }
    : { ...facts, allowed: false, code, reason, caveat };
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : 'token is malformed';
}
