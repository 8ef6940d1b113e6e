/**
 * Revocations in Redis, for gateways on many hosts.
 *
 * `mintfs revoke --redis URL` stores each record under
 * `mintfs:revocation:<name>`, expiring when the last token it covers would
 * have (the record's expiresAt), and publishes it on `mintfs:revocations`.
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

export const REVOCATION_KEY_PREFIX = 'mintfs:revocation:';
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

/** Every stored record (an unreadable one is skipped: only mintfs writes these keys). */
async function loadAll(redis: RedisConnection): Promise<RevocationRecord[]> {
  const records: RevocationRecord[] = [];
  for await (const keys of redis.client.scanIterator({
    MATCH: `${REVOCATION_KEY_PREFIX}*`,
    COUNT: 500,
  })) {
    if (keys.length === 0) continue;
    const values = await withTimeout('loading revocations', redis.client.mGet(keys));
    for (const value of values) {
      const record = parseRecord(value);
      if (record !== undefined) records.push(record);
    }
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
      if (!this.#records.has(name) && now < Date.parse(record.expiresAt)) {
        this.#records.set(name, record);
        changed = true;
      }
    }
    for (const [name, record] of this.#records)
      if (now >= Date.parse(record.expiresAt)) {
        this.#records.delete(name);
        changed = true;
      }
    if (changed) this.#list = new RevocationList([...this.#records.values()]);
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
    const text = JSON.stringify(record);
    await withTimeout(
      'recording the revocation',
      redis.client
        .multi()
        .set(`${REVOCATION_KEY_PREFIX}${recordName(record)}`, text, {
          expiration: { type: 'PXAT', value: Date.parse(record.expiresAt) },
        })
        .publish(REVOCATION_CHANNEL, text)
        .exec(),
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
  const redis = await connectRedis(url, logger, { failFast: true });
  try {
    if (!redis.up()) throw new MintfsError('ERR_STATE_UNAVAILABLE', 'Redis is unreachable');
    return (await loadAll(redis)).filter((r) => now.getTime() < Date.parse(r.expiresAt));
  } finally {
    await redis.close();
  }
}
