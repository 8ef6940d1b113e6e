/**
 * The timing of held records shared through Redis (shared.ts). Apart from
 * it so that the approval service, which every gateway loads, reads them
 * without loading shared.ts and with it the Redis client: that was ~60 ms
 * of every gateway start without Redis (a --cpu-prof of `mintfs run`).
 */

/** How long a held record outlives its holder's last renewal. */
export const LEASE_MS = 10_000;
/** How often a holder renews its records (and looks for a decision it missed). */
export const RENEW_MS = 2_000;
