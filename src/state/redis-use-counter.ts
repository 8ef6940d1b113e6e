/** Use budgets counted in Redis, so every gateway sharing it agrees (use-counter.ts says how uses are spent). */
import { createHash } from 'node:crypto';
import { withTimeout, type RedisConnection } from './redis.js';
import type { SpendResult, UseCounter } from './use-counter.js';

export const USES_KEY_PREFIX = 'mintfs:uses:';
/** How long a count outlives the token, for clocks that disagree between gateways. */
export const CLOCK_SKEW_MS = 60_000;

/**
 * One script call spends the uses of every request that arrived in the same
 * turn of the event loop: for each key, increment, and make it live at least
 * ARGV[i] more milliseconds (never shortened: a key that already lives longer
 * keeps its life; one with none, however it came to be, gets one). Relative,
 * not PEXPIREAT: a Redis whose clock runs ahead of the gateway's would take an
 * absolute time as already past and delete the count at once. Atomic (Redis runs a script alone) and exact (a key twice in one
 * call is incremented twice, in order). Under load this is one write, one
 * read and one script run for several requests, where a command each cost a
 * system call on both sides per request (measured: most of what Redis added).
 */
const SPEND_SCRIPT = `local counts = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  local life = tonumber(ARGV[i])
  local left = redis.call('PTTL', key)
  if left < life then redis.call('PEXPIRE', key, life) end
  counts[i] = n
end
return counts`;
const SPEND_SHA = createHash('sha1').update(SPEND_SCRIPT).digest('hex');

/** The most uses spent in one script call (a longer queue takes several). */
export const MAX_SPENDS_PER_CALL = 256;

interface PendingSpend {
  readonly key: string;
  /** Milliseconds the count must live from now. */
  readonly life: number;
  readonly uses: number;
  readonly settle: (result: SpendResult) => void;
}

/** Counts in Redis: `mintfs:uses:<token id>`, expiring a minute after the token's minted expiry. */
export class RedisUseCounter implements UseCounter {
  #queue: PendingSpend[] = [];

  constructor(private readonly redis: RedisConnection) {}

  spend(tokenId: string, uses: number, countUntil: Date, now: Date): Promise<SpendResult> {
    if (!this.redis.up())
      return Promise.resolve({ ok: false, reason: 'unavailable', detail: 'Redis is unreachable' });
    // Kept a minute past the minted expiry, for clock skew between the
    // gateways sharing the count. Not capped at any lifetime: a cap shorter
    // than the token's would let it be served again once the count expired.
    const life = Math.max(countUntil.getTime() - now.getTime(), 0) + CLOCK_SKEW_MS;
    return new Promise((settle) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush());
      this.#queue.push({ key: `${USES_KEY_PREFIX}${tokenId}`, life, uses, settle });
    });
  }

  #flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    for (let start = 0; start < queue.length; start += MAX_SPENDS_PER_CALL)
      void this.#spendAll(queue.slice(start, start + MAX_SPENDS_PER_CALL));
  }

  async #spendAll(batch: readonly PendingSpend[]): Promise<void> {
    const options = {
      keys: batch.map((spend) => spend.key),
      arguments: batch.map((spend) => String(spend.life)),
    };
    try {
      const counts = await withTimeout(
        'counting uses',
        this.redis.client.evalSha(SPEND_SHA, options).catch((err: unknown) => {
          // A Redis that restarted (or never saw it) loads the script on first use.
          if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
          return this.redis.client.eval(SPEND_SCRIPT, options);
        }),
      );
      if (!Array.isArray(counts) || counts.length !== batch.length)
        throw new Error('the spend script did not answer one count per use');
      batch.forEach((spend, i) => {
        const used = Number(counts[i]);
        if (!Number.isInteger(used))
          return spend.settle({
            ok: false,
            reason: 'unavailable',
            detail: 'INCR did not answer a number',
          });
        spend.settle(
          used <= spend.uses ? { ok: true, used } : { ok: false, reason: 'spent', used },
        );
      });
    } catch (err) {
      const detail = (err as Error).message;
      for (const spend of batch) spend.settle({ ok: false, reason: 'unavailable', detail });
    }
  }
}
