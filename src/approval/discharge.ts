/**
 * Discharges: what an approver's decision becomes. A discharge is a
 * macaroon whose identifier is the approval ticket, signed with the ticket's
 * caveat root key, bound to the one token it discharges (third-party.ts), and
 * narrowed by first-party caveats of its own:
 *
 *   time-before T      a short life (the approver may choose longer)
 *   request HEX        SHA-256 of the request it approves: method, host,
 *                      path with query, the body's SHA-256, its type and encoding
 *   uses N             how many requests it releases (1 unless the approver chooses more)
 *   decision ID        the decision's id, what its uses are counted under
 *
 * Any other caveat, or one twice, refuses the discharge: it was not made here.
 */
import { createHash } from 'node:crypto';
import { hmacSha256 } from '../token/hmac-chain.js';
import { deriveMacaroonKey, encodeMacaroonV2 } from '../token/macaroon-codec.js';
import {
  decodeMacaroonV2,
  MacaroonDecodeError,
  MAX_CAVEAT_ID_BYTES,
} from '../token/macaroon-decode.js';
import { bindDischarge, openVerificationId, sameBytes } from '../token/third-party.js';
import type { ApprovalCaveat } from '../token/verify.js';
import { APPROVAL_LOCATION } from '../token/vocabulary.js';
import { formatInstant, parseInstant } from '../util/instant.js';

/** What one decision approves, as the gateway saw the held request. */
export interface ApprovedRequest {
  readonly method: string;
  readonly host: string;
  /** Path and query exactly as they go upstream. */
  readonly target: string;
  /** SHA-256 of the body (of nothing, for a request without one), hex. */
  readonly bodySha256: string;
  /**
   * How the upstream reads the body: every Content-Type, then every
   * Content-Encoding value as sent (comma-joined), on two lines. The same
   * bytes as JSON, as a form, or gzip-compressed are different requests.
   */
  readonly bodyType: string;
}

export interface DecisionTerms {
  readonly decisionId: string;
  readonly expiresAt: Date;
  readonly uses: number;
}

const DECISION_ID = /^[A-Za-z0-9_-]{8,64}$/;
const HEX64 = /^[0-9a-f]{64}$/;
export const MAX_DISCHARGE_USES = 100;

export function requestDigest(request: ApprovedRequest): string {
  return createHash('sha256')
    .update(
      [
        request.method.toUpperCase(),
        request.host,
        request.target,
        request.bodySha256,
        request.bodyType,
      ].join('\n'),
    )
    .digest('hex');
}

/** A discharge for one approval caveat of one token, bound to it. */
export function mintDischarge(
  ticket: Uint8Array,
  caveatRootKey: Uint8Array,
  tokenSignature: Uint8Array,
  request: ApprovedRequest,
  terms: DecisionTerms,
): Buffer {
  return bindDischargeTo(
    mintUnboundDischarge(ticket, caveatRootKey, request, terms),
    tokenSignature,
  ) as Buffer;
}

/**
 * A discharge not yet bound to a token: what one gateway hands another
 * through Redis, so the token's signature (the secret half of a bearer
 * token) never leaves the gateway that holds the request. That gateway
 * binds it (bindDischargeTo) and checks it (checkDischarge).
 */
export function mintUnboundDischarge(
  ticket: Uint8Array,
  caveatRootKey: Uint8Array,
  request: ApprovedRequest,
  terms: DecisionTerms,
): Buffer {
  const caveats = [
    `time-before ${formatInstant(terms.expiresAt)}`,
    `request ${requestDigest(request)}`,
    `uses ${terms.uses}`,
    `decision ${terms.decisionId}`,
  ].map((text) => Buffer.from(text));
  let signature = hmacSha256(deriveMacaroonKey(caveatRootKey), ticket);
  for (const caveat of caveats) signature = hmacSha256(signature, caveat);
  return encodeMacaroonV2({ location: APPROVAL_LOCATION, identifier: ticket, caveats, signature });
}

/** An unbound discharge bound to a token; undefined when it does not decode. */
export function bindDischargeTo(unbound: Buffer, tokenSignature: Uint8Array): Buffer | undefined {
  let decoded;
  try {
    decoded = decodeMacaroonV2(unbound, { maxIdentifierBytes: MAX_CAVEAT_ID_BYTES });
  } catch (err) {
    if (err instanceof MacaroonDecodeError) return undefined;
    throw err;
  }
  if (decoded.thirdParty.length > 0) return undefined;
  return encodeMacaroonV2({
    location: decoded.location,
    identifier: decoded.identifier,
    caveats: decoded.caveats,
    signature: bindDischarge(tokenSignature, decoded.signature),
  });
}

export type DischargeCheck =
  | { readonly ok: true; readonly terms: DecisionTerms }
  | { readonly ok: false; readonly reason: string };

/** Whether a discharge releases this request of this token now. Never throws. */
export function checkDischarge(
  approval: ApprovalCaveat,
  tokenSignature: Uint8Array,
  discharge: Buffer,
  request: ApprovedRequest,
  now: Date,
): DischargeCheck {
  const refuse = (reason: string): DischargeCheck => ({ ok: false, reason });
  const caveatKey = openVerificationId(approval.signatureBefore, approval.verificationId);
  if (caveatKey === undefined) return refuse("the approval caveat's verification id does not open");
  let decoded;
  try {
    // Its identifier is the ticket, as long as a token's caveat id may be.
    decoded = decodeMacaroonV2(discharge, { maxIdentifierBytes: MAX_CAVEAT_ID_BYTES });
  } catch (err) {
    if (err instanceof MacaroonDecodeError)
      return refuse(`the discharge is malformed: ${err.message}`);
    throw err;
  }
  if (decoded.location !== APPROVAL_LOCATION || decoded.thirdParty.length > 0)
    return refuse('the discharge was not made by the approval service');
  if (!sameBytes(decoded.identifier, approval.caveatId))
    return refuse('the discharge is for another approval caveat');
  let signature = hmacSha256(caveatKey, decoded.identifier);
  for (const caveat of decoded.caveats) signature = hmacSha256(signature, caveat);
  if (!sameBytes(bindDischarge(tokenSignature, signature), decoded.signature))
    return refuse('the discharge is not bound to this token, or its signature is not valid');
  const seen = new Map<string, string>();
  for (const bytes of decoded.caveats) {
    const text = bytes.toString('latin1');
    const space = text.indexOf(' ');
    const name = space < 0 ? text : text.slice(0, space);
    if (seen.has(name)) return refuse(`the discharge has two ${name} caveats`);
    seen.set(name, text.slice(space + 1));
  }
  const until = parseInstant(seen.get('time-before') ?? '');
  const digest = seen.get('request') ?? '';
  const uses = Number(seen.get('uses'));
  const decisionId = seen.get('decision') ?? '';
  if (
    seen.size !== 4 ||
    until === undefined ||
    !HEX64.test(digest) ||
    !Number.isInteger(uses) ||
    uses < 1 ||
    uses > MAX_DISCHARGE_USES ||
    !DECISION_ID.test(decisionId)
  )
    return refuse('the discharge has caveats the approval service does not write');
  if (now.getTime() >= until.getTime()) return refuse('the approval has expired');
  if (digest !== requestDigest(request))
    return refuse('the approval was given for another request (method, path, query or body)');
  return { ok: true, terms: { decisionId, expiresAt: until, uses } };
}
