/**
 * Use budgets (`uses N` caveats): each request a budgeted token makes
 * spends one use, counted per token id, and the (N+1)th is refused. Counted
 * in Redis when the gateway has `redis` (one atomic INCR per request, so
 * every gateway sharing it agrees and a race of first uses lets exactly one
 * through), in memory otherwise (one gateway process). A use is spent once
 * every other check has passed, before the request goes upstream: it is not
 * given back if the upstream then fails (a budget must never be spent twice).
 */
import { MAX_TTL_MS } from '../token/limits.js';
import { withTimeout, type RedisConnection } from './redis.js';

export type SpendResult =
  | { readonly ok: true; readonly used: number }
  | { readonly ok: false; readonly reason: 'spent'; readonly used: number }
  | { readonly ok: false; readonly reason: 'unavailable'; readonly detail: string };

export interface UseCounter {
  /** Spends one use of `tokenId` (budget `uses`, counted until `expiresAt`). */
  spend(tokenId: string, uses: number, expiresAt: Date, now: Date): Promise<SpendResult>;
}

/** One process's counts; entries go once their token has expired. */
export class MemoryUseCounter implements UseCounter {
  readonly #counts = new Map<string, { used: number; until: number }>();
  #nextSweep = 0;

  spend(tokenId: string, uses: number, expiresAt: Date, now: Date): Promise<SpendResult> {
    this.#sweep(now.getTime());
    const entry = this.#counts.get(tokenId) ?? { used: 0, until: expiresAt.getTime() };
    entry.used += 1;
    this.#counts.set(tokenId, entry);
    return Promise.resolve(
      entry.used <= uses
        ? { ok: true, used: entry.used }
        : { ok: false, reason: 'spent', used: entry.used },
    );
  }

  get size(): number {
    return this.#counts.size;
  }

  #sweep(now: number): void {
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + 60_000;
    for (const [id, entry] of this.#counts) if (entry.until <= now) this.#counts.delete(id);
  }
}

export const USES_KEY_PREFIX = 'mintfs:uses:';

/** Counts in Redis: `mintfs:uses:<token id>`, expiring with the token. */
export class RedisUseCounter implements UseCounter {
  constructor(private readonly redis: RedisConnection) {}

  async spend(tokenId: string, uses: number, expiresAt: Date, now: Date): Promise<SpendResult> {
    if (!this.redis.up())
      return { ok: false, reason: 'unavailable', detail: 'Redis is unreachable' };
    const key = `${USES_KEY_PREFIX}${tokenId}`;
    // Kept a little past the token's expiry (clock skew between hosts), never
    // longer than any token lives.
    const until = Math.min(expiresAt.getTime(), now.getTime() + MAX_TTL_MS) + 60_000;
    try {
      const [used] = await withTimeout(
        'counting a use',
        this.redis.client.multi().incr(key).pExpireAt(key, until).exec(),
      );
      const count = Number(used);
      if (!Number.isInteger(count)) throw new Error('INCR did not answer a number');
      return count <= uses
        ? { ok: true, used: count }
        : { ok: false, reason: 'spent', used: count };
    } catch (err) {
      return { ok: false, reason: 'unavailable', detail: (err as Error).message };
    }
  }
}

/** With several workers and no Redis, counts in memory would multiply every budget: refuse instead. */
export class RefusingUseCounter implements UseCounter {
  constructor(private readonly detail: string) {}

  spend(): Promise<SpendResult> {
    return Promise.resolve({ ok: false, reason: 'unavailable', detail: this.detail });
  }
}
