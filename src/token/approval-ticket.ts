/**
 * Approval tickets: the caveat id of an approval caveat, which only the
 * approval service (the gateway, holding the root keys) can open.
 *
 * A ticket says which requests of the token wait for a person (methods, and
 * optionally path globs), sealed with AES-256-GCM under a key derived from
 * the root key that signs the token: `mintfs-approval/v1/KEYID/SEALED`.
 * The caveat's root key (what signs a discharge) is derived from the ticket
 * itself, HMAC(key', ticket), so nothing secret travels in it and every
 * token of one profile file and key carries the same ticket. The nonce is
 * derived from the condition (a synthetic IV): sealing is deterministic, so
 * minting stays pure, and one condition sealed twice is one ciphertext.
 *
 * What this hides: only the condition's text (the agent knows its profile).
 * What it guards: a ticket that does not open under the token's own key is
 * refused, so a holder cannot append an approval caveat of its own making
 * that the gateway would read as "nothing needs approval" for another key.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import * as z from '../util/zod-mini.js';
import { hmacSha256 } from './hmac-chain.js';
import { MAX_CAVEAT_ID_BYTES } from './macaroon-decode.js';
import { matchPathGlob, parsePathGlob, pathGlobProblem } from './path-glob.js';
import type { RootKey } from './root-key.js';
import { HTTP_METHODS } from './vocabulary.js';

const VERSION = 'mintfs-approval/v1/';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const SEAL_LABEL = Buffer.from('mintfs approval ticket seal v1');
const DISCHARGE_LABEL = Buffer.from('mintfs approval discharge root v1');

/** Which requests of a token wait for an approver (a profile file's `approval:`). */
export interface ApprovalCondition {
  readonly methods: readonly string[];
  /** Path globs; absent: any path. */
  readonly paths?: readonly string[] | undefined;
}

export const ApprovalConditionSchema = z
  .strictObject({
    methods: z
      .array(z.enum(HTTP_METHODS))
      .check(
        z.minLength(1, 'name at least one method that needs approval'),
        z.maxLength(HTTP_METHODS.length),
        z.describe(
          'Methods whose requests wait for an approver (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)',
        ),
      ),
    paths: z
      .optional(
        z
          .array(
            z.string().check(
              z.superRefine((glob, ctx) => {
                const problem = pathGlobProblem(glob);
                if (problem !== undefined)
                  ctx.addIssue({ code: 'custom', message: `glob ${problem}` });
              }),
            ),
          )
          .check(z.minLength(1), z.maxLength(16)),
      )
      .check(
        z.describe(
          'Path globs (as in `paths`) whose requests of those methods wait; omitted: every path',
        ),
      ),
  })
  .check(
    z.superRefine((condition, ctx) => {
      // The sealed condition is the caveat id every verifier reads: past
      // MAX_CAVEAT_ID_BYTES the gateway would refuse every token of the file.
      const bytes = plainTicket(condition).length;
      if (bytes > MAX_CONDITION_BYTES)
        ctx.addIssue({
          code: 'custom',
          path: ['paths'],
          message: `the condition is ${bytes} bytes as a ticket holds it, over ${MAX_CONDITION_BYTES}: name fewer or shorter paths`,
        });
    }),
  );

/**
 * The longest condition (as JSON) a ticket may seal: the ticket, its prefix
 * with the longest key id included, stays within a caveat id's limit.
 */
export const MAX_CONDITION_BYTES =
  Math.floor(((MAX_CAVEAT_ID_BYTES - VERSION.length - 64 - 1) * 3) / 4) - NONCE_BYTES - TAG_BYTES;

function plainTicket(condition: ApprovalCondition): Buffer {
  return Buffer.from(
    JSON.stringify(
      condition.paths === undefined
        ? { m: condition.methods }
        : { m: condition.methods, p: condition.paths },
    ),
  );
}

const sealKeys = new WeakMap<Uint8Array, { seal: Buffer; discharge: Buffer }>();

function keysOf(rootKey: RootKey): { seal: Buffer; discharge: Buffer } {
  let keys = sealKeys.get(rootKey.secret);
  if (keys === undefined) {
    keys = {
      seal: hmacSha256(rootKey.secret, SEAL_LABEL),
      discharge: hmacSha256(rootKey.secret, DISCHARGE_LABEL),
    };
    sealKeys.set(rootKey.secret, keys);
  }
  return keys;
}

/** The ticket (caveat id) for a condition under a root key. */
export function sealTicket(rootKey: RootKey, condition: ApprovalCondition): Buffer {
  const plain = plainTicket(condition);
  const { seal } = keysOf(rootKey);
  const prefix = Buffer.from(`${VERSION}${rootKey.id}/`);
  const nonce = hmacSha256(seal, plain).subarray(0, NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', seal, nonce);
  cipher.setAAD(prefix);
  const sealed = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return Buffer.concat([prefix, Buffer.from(sealed.toString('base64url'))]);
}

/** The caveat root key of a ticket: what signs its discharges. */
export function dischargeRootKey(rootKey: RootKey, ticket: Uint8Array): Buffer {
  return hmacSha256(keysOf(rootKey).discharge, ticket);
}

export type OpenedTicket =
  | { readonly ok: true; readonly keyId: string; readonly condition: ApprovalCondition }
  | { readonly ok: false; readonly reason: string };

const PlainTicketSchema = z.strictObject({
  m: ApprovalConditionSchema.shape.methods,
  p: ApprovalConditionSchema.shape.paths,
});

/** Opens a ticket under the key that signed its token; any flaw is a refusal, never a throw. */
export function openTicket(rootKey: RootKey, ticket: Uint8Array): OpenedTicket {
  const text = Buffer.from(ticket).toString('latin1');
  const prefix = `${VERSION}${rootKey.id}/`;
  if (!text.startsWith(prefix))
    return { ok: false, reason: 'the approval ticket is not sealed under the key of its token' };
  const sealed = Buffer.from(text.slice(prefix.length), 'base64url');
  if (sealed.length < NONCE_BYTES + TAG_BYTES + 2)
    return { ok: false, reason: 'the approval ticket is too short' };
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      keysOf(rootKey).seal,
      sealed.subarray(0, NONCE_BYTES),
    );
    decipher.setAAD(Buffer.from(prefix));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const plain = Buffer.concat([
      decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]);
    const parsed = PlainTicketSchema.safeParse(JSON.parse(plain.toString('utf8')));
    if (!parsed.success) return { ok: false, reason: 'the approval ticket holds no condition' };
    const condition: ApprovalCondition =
      parsed.data.p === undefined
        ? { methods: parsed.data.m }
        : { methods: parsed.data.m, paths: parsed.data.p };
    return { ok: true, keyId: rootKey.id, condition };
  } catch {
    return {
      ok: false,
      reason: 'the approval ticket does not open (tampered with, or another key)',
    };
  }
}

/**
 * Whether a request (method, normalised path segments) is one the condition
 * holds for a person. Unlike a `path` caveat (an allow-list, where a path the
 * glob misses is refused), the condition names what must NOT go through
 * unasked, so a miss fails open: its paths match ignoring case, because many
 * upstreams do (GitHub's owners and repositories, IIS, case-insensitive file
 * systems) and `/repos/ACME/widgets/...` must wait as `/repos/acme/widgets/...` does.
 */
export function needsApproval(
  condition: ApprovalCondition,
  method: string,
  pathSegments: readonly string[],
): boolean {
  const upper = method.toUpperCase();
  // HEAD is GET without the body: a condition holding GET holds HEAD too (fail closed).
  const named =
    condition.methods.includes(upper) || (upper === 'HEAD' && condition.methods.includes('GET'));
  if (!named) return false;
  if (condition.paths === undefined) return true;
  const folded = pathSegments.map(foldCase);
  return condition.paths.some((glob) => matchPathGlob(parsePathGlob(glob).map(foldCase), folded));
}

function foldCase(text: string): string {
  return text.toLowerCase();
}
