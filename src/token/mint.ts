/**
 * Minting: a grant (what a file allows) plus an injected key, clock and token
 * id give a token. Pure: no I/O, no clock reads, no randomness of its own.
 */
import type { RootKey } from './root-key.js';
import { formatTimeBefore, grantCaveats } from './caveats.js';
import { formatIdentifier } from './identifier.js';
import {
  chainSignature,
  deriveMacaroonKey,
  derivedKeyOf,
  encodeMacaroonV2,
} from './macaroon-codec.js';
import { encodeTokenText } from './token-text.js';
import { sealVerificationId, signThirdParty, type ThirdPartyCaveat } from './third-party.js';
import { APPROVAL_LOCATION, TOKEN_LOCATION } from './vocabulary.js';
import type { GitHubGrant } from './caveats.js';
import { dischargeRootKey, sealTicket, type ApprovalCondition } from './approval-ticket.js';

export interface TokenGrant {
  readonly agent: string;
  readonly service: string;
  readonly hosts: readonly string[];
  readonly methods: readonly string[];
  readonly paths: readonly string[];
  readonly ttlMs: number;
  /** Requests the token may make (a `uses` caveat); no limit when absent. */
  readonly uses?: number | undefined;
  /** What the token may ask of GitHub (`github-repos`, `github-perms` caveats); unnarrowed when absent. */
  readonly github?: GitHubGrant | undefined;
  /** Requests that wait for an approver: a third-party caveat, last (src/approval/). */
  readonly approval?: ApprovalCondition | undefined;
  /** The AWS session policy the token's role session gets (`aws-policy` caveat). */
  readonly awsPolicy?: string | undefined;
}

export interface MintContext {
  readonly key: RootKey;
  readonly now: Date;
  readonly tokenId: string;
}

export interface MintedToken {
  readonly token: string;
  readonly tokenId: string;
  readonly keyId: string;
  readonly expiresAt: Date;
  readonly caveats: readonly string[];
}

/** Expiry in whole seconds, rounded down so a token never outlives its TTL. */
export function expiryFor(now: Date, ttlMs: number): Date {
  return new Date(Math.floor((now.getTime() + ttlMs) / 1000) * 1000);
}

// Every caveat but time-before depends only on the grant: encode them once per grant.
const staticCaveats = new WeakMap<TokenGrant, { texts: string[]; bytes: Buffer[] }>();

function staticCaveatsOf(grant: TokenGrant): { texts: string[]; bytes: Buffer[] } {
  let cached = staticCaveats.get(grant);
  if (!cached) {
    const texts = grantCaveats(grant, new Date(0)).slice(1);
    cached = { texts, bytes: texts.map((text) => Buffer.from(text)) };
    staticCaveats.set(grant, cached);
  }
  return cached;
}

/**
 * What a minter outside this module (the native backend's C minter) needs to
 * produce mintToken's bytes: the derived signing key (never the root key),
 * and every caveat but time-before, in order.
 */
export function signingParts(
  grant: TokenGrant,
  key: RootKey,
): {
  derivedKey: Buffer;
  caveats: readonly string[];
  approval?: { ticket: Buffer; derivedKey: Buffer };
} {
  const approval = approvalPartsOf(grant, key);
  return {
    derivedKey: derivedKeyOf(key.secret),
    caveats: staticCaveatsOf(grant).texts,
    ...(approval === undefined
      ? {}
      : {
          approval: { ticket: approval.ticket, derivedKey: deriveMacaroonKey(approval.rootKey) },
        }),
  };
}

// An approval ticket and its caveat root key depend only on the grant and the key.
// Keyed by the key's secret buffer (a RootKey keeps one for life), not its id.
const approvalParts = new WeakMap<
  TokenGrant,
  WeakMap<Uint8Array, { ticket: Buffer; rootKey: Buffer }>
>();

/** The approval ticket (caveat id) and caveat root key for a grant under a key, if it has one. */
export function approvalPartsOf(
  grant: TokenGrant,
  key: RootKey,
): { ticket: Buffer; rootKey: Buffer } | undefined {
  if (grant.approval === undefined) return undefined;
  let byKey = approvalParts.get(grant);
  if (byKey === undefined) {
    byKey = new WeakMap();
    approvalParts.set(grant, byKey);
  }
  let parts = byKey.get(key.secret);
  if (parts === undefined) {
    const ticket = sealTicket(key, grant.approval);
    parts = { ticket, rootKey: dischargeRootKey(key, ticket) };
    byKey.set(key.secret, parts);
  }
  return parts;
}

export function mintToken(grant: TokenGrant, context: MintContext): MintedToken {
  const expiresAt = expiryFor(context.now, grant.ttlMs);
  const timeBefore = formatTimeBefore(expiresAt);
  const fixed = staticCaveatsOf(grant);
  const caveats = [timeBefore, ...fixed.texts];
  const identifier = Buffer.from(
    formatIdentifier({ keyId: context.key.id, tokenId: context.tokenId, issuedAt: context.now }),
  );
  const caveatBytes = [Buffer.from(timeBefore), ...fixed.bytes];
  let signature = chainSignature(derivedKeyOf(context.key.secret), identifier, caveatBytes);
  const approval = approvalPartsOf(grant, context.key);
  let thirdParty: ThirdPartyCaveat | undefined;
  if (approval !== undefined) {
    thirdParty = {
      location: APPROVAL_LOCATION,
      caveatId: approval.ticket,
      verificationId: sealVerificationId(signature, approval.rootKey),
    };
    signature = signThirdParty(signature, thirdParty);
  }
  const bytes = encodeMacaroonV2({
    location: TOKEN_LOCATION,
    identifier,
    caveats: caveatBytes,
    ...(thirdParty === undefined
      ? {}
      : { thirdParty: [{ after: caveatBytes.length, caveat: thirdParty }] }),
    signature,
  });
  return {
    token: encodeTokenText(bytes),
    tokenId: context.tokenId,
    keyId: context.key.id,
    expiresAt,
    caveats,
  };
}
