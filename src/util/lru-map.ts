/**
 * A bounded map that forgets its least recently used entry, every operation
 * O(1): a Map from key to a node of a doubly linked list, newest first.
 *
 * A Map alone keeps insertion order, and `delete` then `set` moves a key to
 * the end, but evicting its first key with `keys().next()` is not constant
 * time in V8: a deleted key leaves a hole until the table is rebuilt, and a
 * fresh iterator walks every hole from the front. Under churn (a gateway
 * seeing a new token on every request, which an agent reading its token
 * file per request causes, and an attacker with one token can cause at will
 * by attenuating it offline) that was ~19 us a request with 10,000 entries
 * (docs/benchmarks.md). Keeping one iterator across evictions avoids the
 * walk but leaks: an idle live iterator keeps every rebuilt table reachable.
 */
interface Node<K, V> {
  readonly key: K;
  value: V;
  newer: Node<K, V> | undefined;
  older: Node<K, V> | undefined;
}

export class LruMap<K, V> {
  readonly #nodes = new Map<K, Node<K, V>>();
  readonly #capacity: number;
  #newest: Node<K, V> | undefined;
  #oldest: Node<K, V> | undefined;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`an LRU map holds at least 1 entry, not ${capacity}`);
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#nodes.size;
  }

  /** The value, which becomes the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const node = this.#nodes.get(key);
    if (node === undefined) return undefined;
    this.#unlink(node);
    this.#linkNewest(node);
    return node.value;
  }

  /** Stores the value as the most recently used, forgetting the least recently used past capacity. */
  set(key: K, value: V): void {
    const node = this.#nodes.get(key);
    if (node !== undefined) {
      node.value = value;
      this.#unlink(node);
      this.#linkNewest(node);
      return;
    }
    const added: Node<K, V> = { key, value, newer: undefined, older: undefined };
    this.#nodes.set(key, added);
    this.#linkNewest(added);
    if (this.#nodes.size > this.#capacity && this.#oldest !== undefined)
      this.delete(this.#oldest.key);
  }

  delete(key: K): boolean {
    const node = this.#nodes.get(key);
    if (node === undefined) return false;
    this.#nodes.delete(key);
    this.#unlink(node);
    return true;
  }

  clear(): void {
    this.#nodes.clear();
    this.#newest = undefined;
    this.#oldest = undefined;
  }

  /** Keys from the least to the most recently used (tests). */
  *keys(): IterableIterator<K> {
    for (let node = this.#oldest; node !== undefined; node = node.newer) yield node.key;
  }

  #unlink(node: Node<K, V>): void {
    if (node.newer === undefined) this.#newest = node.older;
    else node.newer.older = node.older;
    if (node.older === undefined) this.#oldest = node.newer;
    else node.older.newer = node.newer;
    node.newer = undefined;
    node.older = undefined;
  }

  #linkNewest(node: Node<K, V>): void {
    node.older = this.#newest;
    if (this.#newest === undefined) this.#oldest = node;
    else this.#newest.newer = node;
    this.#newest = node;
  }
}
