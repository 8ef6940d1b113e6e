/**
 * Revocations in Redis, for gateways on many hosts.
 *
 * `mintfs revoke --redis URL` stores each record in one hash,
 * `mintfs:{revocations}` (field: the record's name), with its expiry (when the
 * last token it covers would have) in a sorted set beside it, and publishes
 * it on the channel `mintfs:revocations`. One hash, not a key per record, so
 * a gateway's reload is one HGETALL of the records in force, not a SCAN of
 * the whole keyspace (which holds a key per budgeted token: a SCAN every
 * two seconds on every gateway cost more than the budgets themselves).
 * Whoever records a revocation drops the expired ones, and both keys expire
 * with the last record.
 * A gateway subscribes first, then loads every stored record, and merges
 * both: records are only ever added (and dropped once expired), so a record
 * published during the load is never lost. Published records arrive within
 * milliseconds; a full reload every RESYNC_MS catches anything a dropped
 * subscription missed and dates the set. While Redis is away the last known
 * set keeps working until it is `staleAfter` old; from then on, and before
 * the first load, every token is refused: a revocation made meanwhile could
 * not have been heard.
 */
import { MintfsError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import {
  RevocationList,
  RevocationRecord,
  recordName,
  revocationRecordFor,
  type RevocationRequest,
} from '../revocation/revocations.js';
import { connectRedis, withTimeout, type RedisConnection } from './redis.js';
import { USES_KEY_PREFIX } from './redis-use-counter.js';

/**
 * The hash of records in force (field: record name; value: the record's
 * JSON). Both keys share the hash tag {revocations}, so the script that
 * writes them may run on a Redis Cluster too.
 */
export const REVOCATIONS_KEY = 'mintfs:{revocations}';
/** The same names, scored by when each record expires (ms). */
export const REVOCATION_EXPIRY_KEY = 'mintfs:{revocations}:expiry';
export const REVOCATION_CHANNEL = 'mintfs:revocations';
/** How often a gateway reloads the whole set (and so how old it is while Redis is up). */
export const RESYNC_MS = 2_000;

function parseRecord(text: string | null): RevocationRecord | undefined {
  if (text === null) return undefined;
  try {
    const parsed = RevocationRecord.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Records a revocation, atomically: drops the records that have expired,
 * stores this one (unless one of the same name outlives it), keeps both keys
 * until the last record expires, publishes it.
 * KEYS: the hash, the expiry set. ARGV: name, record JSON, its expiry (ms), now (ms), channel.
 */
const RECORD_SCRIPT = `local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
for _, name in ipairs(expired) do redis.call('HDEL', KEYS[1], name) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local known = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not known or tonumber(known) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
redis.call('PEXPIREAT', KEYS[2], last[2])
redis.call('PUBLISH', ARGV[5], ARGV[2])
return 1`;

/** Every stored record (an unreadable one is skipped: only mintfs writes these keys). */
async function loadAll(redis: RedisConnection): Promise<RevocationRecord[]> {
  const stored = await withTimeout('loading revocations', redis.client.hGetAll(REVOCATIONS_KEY));
  const records: RevocationRecord[] = [];
  for (const value of Object.values(stored)) {
    const record = parseRecord(value);
    if (record !== undefined) records.push(record);
  }
  return records;
}

/** What a gateway knows of the shared revocations. */
export class SharedRevocations {
  readonly #records = new Map<string, RevocationRecord>();
  #list = new RevocationList([]);
  #syncedAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #syncing = false;
  #stale = false;
  readonly #listeners = new Set<(list: RevocationList) => void>();

  private constructor(
    private readonly redis: RedisConnection,
    private readonly staleAfterMs: number,
    private readonly logger: Logger,
    private readonly clock: () => Date,
  ) {}

  static async start(
    redis: RedisConnection,
    options: { staleAfterMs: number; logger: Logger; clock: () => Date },
  ): Promise<SharedRevocations> {
    const shared = new SharedRevocations(
      redis,
      options.staleAfterMs,
      options.logger,
      options.clock,
    );
    // Subscribed before the first load, so nothing published in between is missed.
    void redis
      .subscriber()
      .then((sub) =>
        sub.subscribe(REVOCATION_CHANNEL, (message) => {
          const record = parseRecord(message);
          if (record !== undefined) shared.#add([record]);
        }),
      )
      .catch(() => undefined); // retried by the client; the resync covers the gap
    redis.onHealth((up) => {
      if (up) void shared.sync();
    });
    if (redis.up()) await shared.sync();
    shared.#timer = setInterval(() => void shared.sync(), RESYNC_MS);
    shared.#timer.unref();
    return shared;
  }

  /** The records in force (expired ones dropped). */
  current(): RevocationList {
    return this.#list;
  }

  /** Hears every change of the records in force; returns how to stop. */
  onChange(listener: (list: RevocationList) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Why no token can be judged now (no set yet, or one too old), or undefined. */
  problem(now: Date): string | undefined {
    const age = this.#syncedAt === undefined ? Infinity : now.getTime() - this.#syncedAt;
    const stale = age > this.staleAfterMs;
    if (stale !== this.#stale) {
      this.#stale = stale;
      if (stale)
        this.logger.error(
          { event: 'revocations-stale', staleAfterMs: this.staleAfterMs },
          'the shared revocation list is out of date: every token is refused until Redis is reachable',
        );
      else
        this.logger.info(
          { event: 'revocations-fresh' },
          'the shared revocation list is current again',
        );
    }
    if (!stale) return undefined;
    return this.#syncedAt === undefined
      ? 'the shared revocation list has not been loaded from Redis yet'
      : `the shared revocation list was last loaded from Redis ${Math.round(age / 1000)} s ago (redis.staleAfter ${this.staleAfterMs / 1000} s)`;
  }

  /** Whether the set is out of date (for metrics). */
  get stale(): boolean {
    return this.problem(this.clock()) !== undefined;
  }

  async sync(): Promise<void> {
    if (this.#syncing || !this.redis.up()) return;
    this.#syncing = true;
    try {
      const started = this.clock().getTime();
      this.#add(await loadAll(this.redis));
      this.#syncedAt = started;
    } catch (err) {
      this.logger.warn(
        { event: 'revocations-sync-failed', detail: (err as Error).message },
        'loading the shared revocations failed; trying again',
      );
    } finally {
      this.#syncing = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #add(records: readonly RevocationRecord[]): void {
    const now = this.clock().getTime();
    let changed = false;
    for (const record of records) {
      const name = recordName(record);
      const known = this.#records.get(name);
      // Of two records of one name, the one that lasts longer is kept.
      const later =
        known === undefined || Date.parse(known.expiresAt) < Date.parse(record.expiresAt);
      if (later && now < Date.parse(record.expiresAt)) {
        this.#records.set(name, record);
        changed = true;
      }
    }
    for (const [name, record] of this.#records)
      if (now >= Date.parse(record.expiresAt)) {
        this.#records.delete(name);
        changed = true;
      }
    if (!changed) return;
    this.#list = new RevocationList([...this.#records.values()]);
    for (const listener of this.#listeners) listener(this.#list);
  }
}

/** `mintfs revoke --redis`: stores the record with its expiry and tells every gateway. */
export async function recordRevocationInRedis(
  url: string,
  request: RevocationRequest,
  now: Date,
  logger: Logger,
): Promise<RevocationRecord> {
  const record = revocationRecordFor(request, now);
  const redis = await connectRedis(url, logger, { failFast: true });
  try {
    if (!redis.up())
      throw new MintfsError('ERR_STATE_UNAVAILABLE', 'Redis is unreachable; nothing was recorded');
    await withTimeout(
      'recording the revocation',
      redis.client.eval(RECORD_SCRIPT, {
        keys: [REVOCATIONS_KEY, REVOCATION_EXPIRY_KEY],
        arguments: [
          recordName(record),
          JSON.stringify(record),
          String(Date.parse(record.expiresAt)),
          String(now.getTime()),
          REVOCATION_CHANNEL,
        ],
      }),
    );
    return record;
  } finally {
    await redis.close();
  }
}

/** `mintfs revoke --list --redis`: the records in force. */
export async function listRevocationsInRedis(
  url: string,
  now: Date,
  logger: Logger,
): Promise<RevocationRecord[]> {
  return (await readSharedState(url, now, logger)).records;
}

/**
 * One look at the shared state (`mintfs verify --redis`): the revocations in
 * force and, for a token id, the uses counted for it (0 when none are).
 * Connects once and fails fast: a one-shot command that cannot read Redis
 * says so rather than answer without the revocations recorded there.
 */
export async function readSharedState(
  url: string,
  now: Date,
  logger: Logger,
  tokenId?: string,
): Promise<{ records: RevocationRecord[]; used: number | undefined }> {
  const redis = await connectRedis(url, logger, { failFast: true });
  try {
    if (!redis.up()) throw new MintfsError('ERR_STATE_UNAVAILABLE', 'Redis is unreachable');
    const records = (await loadAll(redis)).filter((r) => now.getTime() < Date.parse(r.expiresAt));
    if (tokenId === undefined) return { records, used: undefined };
    const count = await withTimeout(
      'reading a use count',
      redis.client.get(`${USES_KEY_PREFIX}${tokenId}`),
    );
    return { records, used: count === null ? 0 : Number(count) };
  } finally {
    await redis.close();
  }
}
