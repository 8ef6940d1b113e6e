/**
 * Use budgets (`uses N` caveats): each request a budgeted token makes
 * spends one use, counted per token id, and the (N+1)th is refused. Counted
 * in Redis when the gateway has `redis` (one atomic INCR per request, so
 * every gateway sharing it agrees and a race of first uses lets exactly one
 * through), in memory otherwise (one gateway process). A use is spent once
 * every other check has passed, before the request goes upstream: it is not
 * given back if the upstream then fails (a budget must never be spent twice).
 *
 * A count lives as long as any copy of the token could be valid: until the
 * expiry the minter wrote (AuthenticatedToken.mintedExpiresAt), never the
 * presented copy's. A holder can append an earlier `time-before`; were the
 * count to die with that copy, the original (same id, later expiry) would
 * find its budget whole again. A count's life is only ever extended.
 */

export type SpendResult =
  | { readonly ok: true; readonly used: number }
  | { readonly ok: false; readonly reason: 'spent'; readonly used: number }
  | { readonly ok: false; readonly reason: 'unavailable'; readonly detail: string };

export interface UseCounter {
  /**
   * Spends one use of `tokenId` (budget `uses`), counted until at least
   * `countUntil`: the token's minted expiry, past which no copy is valid.
   */
  spend(tokenId: string, uses: number, countUntil: Date, now: Date): Promise<SpendResult>;
}

/** One process's counts; entries go once their token has expired. */
export class MemoryUseCounter implements UseCounter {
  readonly #counts = new Map<string, { used: number; until: number }>();
  #nextSweep = 0;

  spend(tokenId: string, uses: number, countUntil: Date, now: Date): Promise<SpendResult> {
    this.#sweep(now.getTime());
    const entry = this.#counts.get(tokenId) ?? { used: 0, until: countUntil.getTime() };
    // Never shortened: whichever spend asked for the longest life wins.
    entry.until = Math.max(entry.until, countUntil.getTime());
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

/** With several workers and no Redis, counts in memory would multiply every budget: refuse instead. */
export class RefusingUseCounter implements UseCounter {
  constructor(private readonly detail: string) {}

  spend(): Promise<SpendResult> {
    return Promise.resolve({ ok: false, reason: 'unavailable', detail: this.detail });
  }
}
