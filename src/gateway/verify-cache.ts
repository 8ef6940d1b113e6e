/**
 * The gateway sees one token many times (an agent reuses it for minutes), so
 * the signature check runs once per token: authenticated tokens are cached by
 * their exact text until they expire, and only the caveats are checked per
 * request. A change of keyring (rotation, retirement) empties it. The key is
 * the text itself, not a digest: a Map lookup costs a fraction of a SHA-256,
 * compares whole strings (no collisions to reason about), and the gateway
 * holds each token in memory on every request anyway.
 *
 * Agents that read the token file per request send a fresh token every time:
 * caching those is pure cost (memory that grew by ~100 MiB under such load).
 * So a token is cached on its second use: the first only remembers its text
 * in a bounded probation set.
 */
import type { Keyring } from '../keys/keyring.js';
import { authenticateToken, type AuthenticatedToken, type Denial } from '../token/verify.js';
import { LruMap } from '../util/lru-map.js';

export class VerificationCache {
  // Bounded, least recently used out first, in O(1) (util/lru-map.ts says why not a Map).
  readonly #entries: LruMap<string, AuthenticatedToken>;
  /** Tokens authenticated once, oldest out first: the next use caches them. */
  readonly #seen: LruMap<string, true>;
  #keyring: Keyring | undefined;
  #hits = 0;
  #misses = 0;

  constructor(maxEntries = 10_000) {
    this.#entries = new LruMap(maxEntries);
    this.#seen = new LruMap(maxEntries);
  }

  /** Lookups answered from the cache, and those that ran the signature check (for metrics). */
  get stats(): { readonly hits: number; readonly misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }

  get size(): number {
    return this.#entries.size;
  }

  authenticate(token: string, keyring: Keyring, now: Date): AuthenticatedToken | Denial {
    if (keyring !== this.#keyring) {
      this.#entries.clear();
      this.#seen.clear();
      this.#keyring = keyring;
    }
    // A hit becomes the most recently used.
    const cached = this.#entries.get(token);
    if (cached && now.getTime() < cached.expiresAt.getTime()) {
      this.#hits++;
      return cached;
    }
    this.#misses++;
    if (cached) this.#entries.delete(token);
    const result = authenticateToken(token, keyring.keyById, (id) =>
      keyring.retired.some((key) => key.id === id),
    );
    // Denials are not cached: garbage must not fill the cache.
    if (!('authenticated' in result)) return result;
    if (!this.#seen.delete(token)) {
      this.#seen.set(token, true);
      return result;
    }
    this.#entries.set(token, result);
    return result;
  }
}
