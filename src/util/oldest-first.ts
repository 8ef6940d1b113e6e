/**
 * Evicts the first-inserted key of a Map or Set (a least-recently-used list
 * when hits are moved to the end by delete and set) in amortized O(1).
 *
 * `collection.keys().next()` looks simple but is not constant time: V8
 * leaves a hole where a key was deleted until the table is rebuilt, and a
 * fresh iterator walks every hole from the start. Under churn (a gateway
 * that sees a new token on every request, the case an agent reading its
 * token file per request makes, and a cheap one for an attacker to make) the
 * holes at the front number thousands, and each eviction walked them all:
 * 19 us per request against 3.4 us with this (10,000 entries, a micro-bench
 * in docs/benchmarks.md). One live iterator is kept instead: it only moves
 * forward, skipping each hole once; the language keeps a live iterator valid
 * across deletions, rebuilds and clear(), and a key moved to the end is met
 * again there, so the order evicted is exactly insertion order
 * (test/unit/oldest-first.test.ts checks it against the plain way).
 */
export class OldestFirst<K> {
  readonly #collection: Map<K, unknown> | Set<K>;
  #keys: Iterator<K>;

  constructor(collection: Map<K, unknown> | Set<K>) {
    this.#collection = collection;
    this.#keys = collection.keys();
  }

  /** Deletes the first-inserted key still there; false when the collection is empty. */
  dropOldest(): boolean {
    let next = this.#keys.next();
    if (next.done === true) {
      // A finished iterator stays finished: start over (the collection may have refilled).
      this.#keys = this.#collection.keys();
      next = this.#keys.next();
      if (next.done === true) return false;
    }
    this.#collection.delete(next.value);
    return true;
  }
}
