/** Use budgets counted in Redis, so every gateway sharing it agrees (use-counter.ts says how uses are spent). */
import { createHash } from 'node:crypto';
import { MAX_TTL_MS } from '../token/limits.js';
import { withTimeout, type RedisConnection } from './redis.js';
import type { SpendResult, UseCounter } from './use-counter.js';

export const USES_KEY_PREFIX = 'mintfs:uses:';

/**
 * One command a request: increment, and set the expiry on the first use
 * (one round trip and one script run, where MULTI INCR PEXPIREAT EXEC was
 * four commands; the difference shows under load on a shared machine).
 * Atomic: Redis runs a script alone.
 */
const SPEND_SCRIPT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return n`;
const SPEND_SHA = createHash('sha1').update(SPEND_SCRIPT).digest('hex');

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
      const options = { keys: [key], arguments: [String(until)] };
      const used = await withTimeout(
        'counting a use',
        this.redis.client.evalSha(SPEND_SHA, options).catch((err: unknown) => {
          // A Redis that restarted (or never saw it) loads the script on first use.
          if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
          return this.redis.client.eval(SPEND_SCRIPT, options);
        }),
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
