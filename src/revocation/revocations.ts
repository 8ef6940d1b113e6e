/**
 * Revocation: host-side records of tokens that must stop working before they
 * expire. Two kinds:
 *   token: one token, by id;
 *   agent: every token minted for an agent before a time (issue times are
 *     whole seconds, so a token minted in the same second counts as before).
 *
 * The records live in `<keyring>/revocations/`, one JSON file each, written
 * atomically: whoever can verify a token (it needs the keyring) sees them,
 * concurrent `mintfs revoke` runs never lose each other's records, and a
 * reader never sees half a record. A record expires once no token it covers
 * can still be valid (mintfs tokens live at most MAX_TTL_MS); expired
 * records are ignored and deleted by the next `mintfs revoke`.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as z from '../util/zod-mini.js';
import { MintfsError } from '../errors.js';
import { syncDirectory, writeFileAtomic } from '../keys/atomic-write.js';
import { MAX_TTL_MS } from '../token/limits.js';
import type { RevocationCheck } from '../token/verify.js';
import { AGENT_NAME } from '../token/vocabulary.js';
import { formatInstant, parseInstant } from '../util/instant.js';
import { directoryFingerprint } from '../util/reloadable.js';

const Instant = z
  .string()
  .check(z.refine((text) => parseInstant(text) !== undefined, 'not an RFC 3339 time'));
const TOKEN_ID = /^[A-Za-z0-9_-]{22}$/;

export const RevocationRecord = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('token'),
    tokenId: z.string().check(z.regex(TOKEN_ID)),
    revokedAt: Instant,
    expiresAt: Instant,
  }),
  z.strictObject({
    kind: z.literal('agent'),
    agent: z.string().check(z.regex(AGENT_NAME)),
    before: Instant,
    revokedAt: Instant,
    expiresAt: Instant,
  }),
]);
export type RevocationRecord = z.infer<typeof RevocationRecord>;

/** What a verifier knows about a token once its signature checked out. */
export interface RevocableToken {
  readonly tokenId: string;
  readonly agent?: string | undefined;
  readonly issuedAt: Date;
}

const RECORD_FILE = /^(token|agent)-[A-Za-z0-9_-]+\.json$/;

export function revocationsDir(keysDir: string): string {
  return join(keysDir, 'revocations');
}

/**
 * A revocation list that changes: the keyring directory's files (every
 * gateway on the host watches them), or the records shared through Redis
 * (`mintfs revoke --redis`, heard by every gateway sharing it).
 */
export interface RevocationFeed {
  readonly current: RevocationList;
  onReload(listener: (list: RevocationList) => void): () => void;
}

export class RevocationList {
  readonly records: readonly RevocationRecord[];
  readonly #tokens = new Map<string, RevocationRecord>();
  readonly #agents = new Map<string, RevocationRecord[]>();

  constructor(records: readonly RevocationRecord[]) {
    this.records = records;
    for (const record of records) {
      if (record.kind === 'token') this.#tokens.set(record.tokenId, record);
      else this.#agents.set(record.agent, [...(this.#agents.get(record.agent) ?? []), record]);
    }
  }

  /** The record that revokes this token, if one is in force at `now`. */
  find(token: RevocableToken, now: Date): RevocationRecord | undefined {
    const at = now.getTime();
    const byId = this.#tokens.get(token.tokenId);
    if (byId && at < Date.parse(byId.expiresAt)) return byId;
    if (token.agent === undefined) return undefined;
    for (const record of this.#agents.get(token.agent) ?? []) {
      if (record.kind !== 'agent' || at >= Date.parse(record.expiresAt)) continue;
      if (token.issuedAt.getTime() < Date.parse(record.before)) return record;
    }
    return undefined;
  }
}

/** The verifier's view of a list: why a token is revoked, or undefined. */
export function revocationCheck(list: RevocationList): RevocationCheck {
  return (token, now) => {
    const record = list.find(token, now);
    return record === undefined ? undefined : describeRevocation(record);
  };
}

/** Why a revoked token is refused, in one line. */
export function describeRevocation(record: RevocationRecord): string {
  return record.kind === 'token'
    ? `token ${record.tokenId} was revoked at ${record.revokedAt}`
    : `tokens of agent ${record.agent} issued before ${record.before} were revoked at ${record.revokedAt}`;
}

/** Reads every record; a missing directory is an empty list. A corrupt record fails the load. */
export function loadRevocations(dir: string): RevocationList {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => RECORD_FILE.test(name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new RevocationList([]);
    throw new MintfsError('ERR_REVOCATIONS_UNREADABLE', `revocations ${dir} cannot be read`, {
      cause: err,
    });
  }
  return new RevocationList(names.sort().map((name) => readRecord(join(dir, name))));
}

export function revocationsFingerprint(dir: string): string {
  return directoryFingerprint(dir, (name) => RECORD_FILE.test(name));
}

export type RevocationRequest =
  | { readonly kind: 'token'; readonly tokenId: string }
  | { readonly kind: 'agent'; readonly agent: string; readonly before?: Date | undefined };

/**
 * The record a request makes at `now`, checked; refused when it would cover
 * nothing. The same record goes to a file or to Redis.
 */
export function revocationRecordFor(request: RevocationRequest, now: Date): RevocationRecord {
  const record: RevocationRecord =
    request.kind === 'token'
      ? {
          kind: 'token',
          tokenId: request.tokenId,
          revokedAt: formatInstant(now),
          // The token was minted by now, so it expires within MAX_TTL_MS of now.
          expiresAt: formatInstant(new Date(now.getTime() + MAX_TTL_MS)),
        }
      : {
          kind: 'agent',
          agent: request.agent,
          before: formatInstant(request.before ?? now),
          revokedAt: formatInstant(now),
          expiresAt: formatInstant(
            new Date((request.before ?? now).getTime() + MAX_TTL_MS + 1_000),
          ),
        };
  const checked = RevocationRecord.parse(record);
  // Every token minted before `before` has expired by now: a record would
  // cover nothing and be pruned at once. Say so rather than write it.
  if (Date.parse(checked.expiresAt) <= now.getTime())
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `--before ${checked.kind === 'agent' ? checked.before : ''}: every token minted before then has expired (tokens live at most ${MAX_TTL_MS / 60_000} min), so nothing would be revoked; nothing was recorded`,
    );
  return checked;
}

/** Records a revocation (replacing an identical one) and deletes expired records. */
export function recordRevocation(
  dir: string,
  request: RevocationRequest,
  now: Date,
): { record: RevocationRecord; pruned: number } {
  const checked = revocationRecordFor(request, now);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  writeFileAtomic(join(dir, fileNameOf(checked)), `${JSON.stringify(checked)}\n`, { mode: 0o600 });
  return { record: checked, pruned: pruneExpired(dir, now) };
}

function pruneExpired(dir: string, now: Date): number {
  let pruned = 0;
  for (const record of loadRevocations(dir).records) {
    if (now.getTime() < Date.parse(record.expiresAt)) continue;
    try {
      unlinkSync(join(dir, fileNameOf(record)));
      pruned += 1;
    } catch {
      // Another `mintfs revoke` pruned it first.
    }
  }
  if (pruned > 0) syncDirectory(dir);
  return pruned;
}

function fileNameOf(record: RevocationRecord): string {
  return `${recordName(record)}.json`;
}

/** A record's name: the same record always has the same one (a file name, a Redis key). */
export function recordName(record: RevocationRecord): string {
  if (record.kind === 'token') return `token-${record.tokenId}`;
  // Agent names are safe in file names today; a digest keeps it so whatever they become.
  const agent = createHash('sha256').update(record.agent).digest('base64url').slice(0, 16);
  return `agent-${agent}-${Date.parse(record.before)}`;
}

function readRecord(path: string): RevocationRecord {
  let parsed;
  try {
    parsed = RevocationRecord.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (err) {
    throw new MintfsError('ERR_REVOCATIONS_UNREADABLE', `revocation record ${path} is not JSON`, {
      cause: err,
    });
  }
  if (!parsed.success)
    throw new MintfsError(
      'ERR_REVOCATIONS_UNREADABLE',
      `revocation record ${path}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  return parsed.data;
}
