/** Use budgets counted in Redis, so every gateway sharing it agrees (use-counter.ts says how uses are spent). */
import { MAX_TTL_MS } from '../token/limits.js';
import { withTimeout, type RedisConnection } from './redis.js';
import type { SpendResult, UseCounter } from './use-counter.js';

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
