/**
 * Held requests and decisions shared through Redis, so that an approver on
 * any gateway (its socket or its page) sees every held request and decides
 * it, wherever it is held.
 *
 *   mintfs:approval:held:ID       the held request, sealed (sealed-record.ts);
 *                                 lives LEASE_MS, renewed by its holder while
 *                                 it holds: a gateway that dies leaves nothing
 *                                 an approver can decide after a few seconds
 *   mintfs:approval:index         ids held, scored by when they were held
 *   mintfs:approval:decision:ID   the decision, sealed (DECISION_KEEP_MS)
 *   mintfs:approval:standing:K:N  an approval with uses left, sealed under key K;
 *                                 N = HMAC of its token id and request digest
 *                                 (opaqueName): a reader cannot test a guess
 *   channel mintfs:approvals      "held ID", "decided ID": what changed
 *
 * Exactly one decision wins: deciding is one script that deletes the held
 * record and stores the decision only if the record was still there. The
 * holder's own timeout and its client going away decide through the same
 * script, so an approver is never told "approved" about a request that
 * timed out. An approval is a set of unbound discharges; the holder binds
 * them to its token and checks them (discharge.ts): no record in Redis, nor
 * anyone who can write there without the keyring, releases a request.
 */
import * as z from 'zod';
import type { Logger } from '../log/logger.js';
import type { RootKey } from '../token/root-key.js';
import { withTimeout, type RedisConnection, type RedisClient } from '../state/redis.js';
import { LEASE_MS } from './lease.js';
import { opaqueName, openRecord, recordKeyId, sealRecord } from './sealed-record.js';

export const HELD_PREFIX = 'mintfs:approval:held:';
export const INDEX_KEY = 'mintfs:approval:index';
export const DECISION_PREFIX = 'mintfs:approval:decision:';
export const STANDING_PREFIX = 'mintfs:approval:standing:';
export const CHANNEL = 'mintfs:approvals';
export { LEASE_MS, RENEW_MS } from './lease.js';
/**
 * How long listing, reading and deciding held requests may take: a person
 * (or a holder waiting for one) waits on these, not a request's latency
 * budget, so a Redis busy for a moment (an fsync, a CPU-starved host) is
 * not reported to an approver as Redis being away. A decision reads then
 * decides: twice this stays inside the approvals client's 10 s wait.
 */
export const APPROVER_TIMEOUT_MS = 4_000;
/** How long a decision is kept for a holder that missed its message. */
export const DECISION_KEEP_MS = 60_000;
/** Approval ids as the service makes them: checked before one names a key. */
export const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{16}$/;

const Iso = z.string().refine((text) => !Number.isNaN(Date.parse(text)));
const Base64 = z.string().regex(/^[A-Za-z0-9+/=_-]*$/);

export const SharedViewSchema = z.strictObject({
  id: z.string().regex(APPROVAL_ID),
  agent: z.string(),
  reader: z.string().optional(),
  tokenId: z.string(),
  service: z.string(),
  method: z.string(),
  host: z.string(),
  path: z.string(),
  query: z.string(),
  bodyBytes: z.number().int().min(0),
  bodyType: z.string(),
  bodyPreview: z.string(),
  heldAt: Iso,
  timesOutAt: Iso,
});

export const HeldRecordSchema = z.strictObject({
  view: SharedViewSchema,
  request: z.strictObject({
    method: z.string(),
    host: z.string(),
    target: z.string(),
    bodySha256: z.string().regex(/^[0-9a-f]{64}$/),
    bodyType: z.string(),
  }),
  /** The tickets (caveat ids) the request needs discharges for, base64. */
  tickets: z.array(Base64).min(1).max(4),
  keyId: z.string(),
  /** The whole body as an approver may read it (redacted as the preview is). */
  body: z.string(),
});
export type HeldRecord = z.infer<typeof HeldRecordSchema>;

const TermsSchema = z.strictObject({
  decisionId: z.string(),
  expiresAt: Iso,
  uses: z.number().int().min(1),
});

export const DecisionRecordSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('approved'),
    approver: z.string().max(128),
    /** Unbound discharges, base64. */
    discharges: z.array(Base64).min(1).max(4),
    terms: TermsSchema,
  }),
  z.strictObject({
    kind: z.literal('denied'),
    approver: z.string().max(128),
    reason: z.string().max(500),
  }),
  z.strictObject({ kind: z.enum(['timeout', 'cancelled', 'stopped']) }),
]);
export type DecisionRecord = z.infer<typeof DecisionRecordSchema>;

export const StandingRecordSchema = z.strictObject({
  discharges: z.array(Base64).min(1).max(4),
  terms: TermsSchema,
});
export type StandingRecord = z.infer<typeof StandingRecordSchema>;

/**
 * Publishes a held record: stores it for LEASE_MS, indexes it, tells every gateway.
 * KEYS: held key, index. ARGV: sealed record, lease ms, id, held at ms, channel.
 */
const HOLD_SCRIPT = `redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('PUBLISH', ARGV[5], 'held ' .. ARGV[3])
return 1`;

/**
 * Decides: only while the held record is there, deletes it and stores the
 * decision. Returns 1 when this decision won, 0 when another had (or the
 * record expired). KEYS: held key, decision key, index. ARGV: sealed
 * decision, keep ms, id, channel.
 */
const DECIDE_SCRIPT = `if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[4], 'decided ' .. ARGV[3])
return 1`;

function standingKey(key: RootKey, name: string): string {
  return `${STANDING_PREFIX}${key.id}:${opaqueName(key, name)}`;
}

export type SharedEvent =
  | { readonly kind: 'held'; readonly id: string }
  | { readonly kind: 'decided'; readonly id: string };

export class SharedApprovals {
  readonly #listeners = new Set<(event: SharedEvent) => void>();
  #subscriber: RedisClient | undefined;

  private constructor(
    private readonly redis: RedisConnection,
    private readonly keyById: (keyId: string) => RootKey | undefined,
    private readonly logger: Logger,
  ) {}

  static async start(
    redis: RedisConnection,
    keyById: (keyId: string) => RootKey | undefined,
    logger: Logger,
  ): Promise<SharedApprovals> {
    const shared = new SharedApprovals(redis, keyById, logger);
    try {
      const sub = await redis.subscriber();
      shared.#subscriber = sub;
      await sub.subscribe(CHANNEL, (message) => shared.#heard(message));
    } catch {
      // The client resubscribes when Redis returns; holders also poll (RENEW_MS).
      logger.warn(
        { event: 'approval-subscribe-failed' },
        'not subscribed to shared approvals yet: decisions made elsewhere are noticed within seconds',
      );
    }
    return shared;
  }

  /** Hears held requests and decisions of every gateway; returns how to stop. */
  onEvent(listener: (event: SharedEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #heard(message: string): void {
    const space = message.indexOf(' ');
    const kind = message.slice(0, space);
    const id = message.slice(space + 1);
    if ((kind !== 'held' && kind !== 'decided') || !APPROVAL_ID.test(id)) return;
    for (const listener of this.#listeners) listener({ kind, id });
  }

  up(): boolean {
    return this.redis.up();
  }

  /** Stores a held request for every gateway to see (throws ERR_STATE_UNAVAILABLE). */
  async hold(key: RootKey, record: HeldRecord): Promise<void> {
    const id = record.view.id;
    await withTimeout(
      'sharing a held request',
      this.redis.client.eval(HOLD_SCRIPT, {
        keys: [`${HELD_PREFIX}${id}`, INDEX_KEY],
        arguments: [
          sealRecord(key, 'held', id, record),
          String(LEASE_MS),
          id,
          String(Date.parse(record.view.heldAt)),
          CHANNEL,
        ],
      }),
    );
  }

  /** Renews a held record's lease; false when it is gone (decided, or lost). */
  async renew(id: string): Promise<boolean> {
    const renewed = await withTimeout(
      'renewing a held request',
      this.redis.client.pExpire(`${HELD_PREFIX}${id}`, LEASE_MS),
    );
    return Number(renewed) === 1;
  }

  /** A held request of any gateway, opened; undefined when none is (or it does not open). */
  async held(id: string): Promise<HeldRecord | undefined> {
    if (!APPROVAL_ID.test(id)) return undefined;
    const text = await withTimeout(
      'reading a held request',
      this.redis.client.get(`${HELD_PREFIX}${id}`),
      APPROVER_TIMEOUT_MS,
    );
    return text === null ? undefined : this.#openHeld(id, text);
  }

  /** Every held request of every gateway that opens here, oldest first. */
  async list(): Promise<HeldRecord[]> {
    const ids = await withTimeout(
      'listing held requests',
      this.redis.client.zRange(INDEX_KEY, 0, 1023),
      APPROVER_TIMEOUT_MS,
    );
    if (ids.length === 0) return [];
    const texts = await withTimeout(
      'reading held requests',
      this.redis.client.mGet(ids.map((id) => `${HELD_PREFIX}${id}`)),
      APPROVER_TIMEOUT_MS,
    );
    const records: HeldRecord[] = [];
    const gone: string[] = [];
    ids.forEach((id, i) => {
      const text = texts[i];
      if (text === null || text === undefined) {
        gone.push(id);
        return;
      }
      const record = this.#openHeld(id, text);
      if (record !== undefined) records.push(record);
    });
    // Records of gateways that died expire; their index entries go here.
    if (gone.length > 0) await this.redis.client.zRem(INDEX_KEY, gone).catch(() => undefined);
    return records;
  }

  /**
   * Decides a held request, sealed under `key` (the held token's). True when
   * this decision won; false when the request was decided (or gone) already.
   */
  async decide(id: string, key: RootKey, decision: DecisionRecord): Promise<boolean> {
    if (!APPROVAL_ID.test(id)) return false;
    const won = await withTimeout(
      'deciding a held request',
      this.redis.client.eval(DECIDE_SCRIPT, {
        keys: [`${HELD_PREFIX}${id}`, `${DECISION_PREFIX}${id}`, INDEX_KEY],
        arguments: [
          sealRecord(key, 'decision', id, decision),
          String(DECISION_KEEP_MS),
          id,
          CHANNEL,
        ],
      }),
      APPROVER_TIMEOUT_MS,
    );
    return Number(won) === 1;
  }

  /** The decision on a request, opened; undefined when there is none (yet). */
  async decision(id: string): Promise<DecisionRecord | undefined> {
    const text = await withTimeout(
      'reading a decision',
      this.redis.client.get(`${DECISION_PREFIX}${id}`),
      APPROVER_TIMEOUT_MS,
    );
    if (text === null) return undefined;
    const parsed = DecisionRecordSchema.safeParse(openRecord(this.keyById, 'decision', id, text));
    if (!parsed.success) this.#unreadable('decision', id);
    return parsed.success ? parsed.data : undefined;
  }

  /** Stores an approval with uses left, until it expires. */
  async putStanding(
    name: string,
    key: RootKey,
    record: StandingRecord,
    lifeMs: number,
  ): Promise<void> {
    await withTimeout(
      'storing a standing approval',
      this.redis.client.set(standingKey(key, name), sealRecord(key, 'standing', name, record), {
        PX: Math.max(1, Math.ceil(lifeMs)),
      }),
    );
  }

  /** An approval with uses left, sealed under the key `keyId` names; undefined when none. */
  async standing(name: string, keyId: string): Promise<StandingRecord | undefined> {
    const key = this.keyById(keyId);
    if (key === undefined) return undefined;
    const text = await withTimeout(
      'reading a standing approval',
      this.redis.client.get(standingKey(key, name)),
    );
    // Sealed under the token's own key, or it is not this token's.
    if (text === null || recordKeyId(text) !== keyId) return undefined;
    const parsed = StandingRecordSchema.safeParse(openRecord(this.keyById, 'standing', name, text));
    if (!parsed.success) this.#unreadable('standing', name);
    return parsed.success ? parsed.data : undefined;
  }

  async close(): Promise<void> {
    await this.#subscriber?.unsubscribe(CHANNEL).catch(() => undefined);
  }

  #openHeld(id: string, text: string): HeldRecord | undefined {
    const parsed = HeldRecordSchema.safeParse(openRecord(this.keyById, 'held', id, text));
    if (!parsed.success || parsed.data.view.id !== id || recordKeyId(text) !== parsed.data.keyId) {
      this.#unreadable('held', id);
      return undefined;
    }
    return parsed.data;
  }

  #unreadable(kind: string, name: string): void {
    // Another key (retired here, or not yet loaded) or a record not made by a gateway.
    this.logger.warn(
      { event: 'approval-record-unreadable', kind, name: name.slice(0, 100) },
      'a shared approval record does not open under this keyring; ignored',
    );
  }
}
