/**
 * LruMap against the plain way (a Map: delete and set to touch, evict its
 * first key past capacity) over generated sequences of operations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LruMap } from '../../src/util/lru-map.js';

type Op =
  { readonly kind: 'set' | 'get' | 'delete'; readonly key: number } | { readonly kind: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.nat(20) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('get' as const), key: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
);

/** The reference: what the cache did before, with a Map. */
class PlainLru {
  readonly map = new Map<number, number>();
  constructor(readonly capacity: number) {}
  get(key: number): number | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }
  set(key: number, value: number): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) {
      const first = this.map.keys().next();
      if (first.done !== true) this.map.delete(first.value);
    }
  }
}

describe('LruMap', () => {
  it('keeps, returns and forgets exactly what a Map used as an LRU list does', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(op, { maxLength: 300 }),
        (capacity, ops) => {
          const lru = new LruMap<number, number>(capacity);
          const plain = new PlainLru(capacity);
          ops.forEach((step, i) => {
            switch (step.kind) {
              case 'set':
                lru.set(step.key, i);
                plain.set(step.key, i);
                break;
              case 'get':
                assert.equal(lru.get(step.key), plain.get(step.key));
                break;
              case 'delete':
                assert.equal(lru.delete(step.key), plain.map.delete(step.key));
                break;
              case 'clear':
                lru.clear();
                plain.map.clear();
            }
            assert.deepEqual(
              [...lru.keys()],
              [...plain.map.keys()],
              `after ${JSON.stringify(step)}`,
            );
            assert.equal(lru.size, plain.map.size);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stays at its capacity under churn, keeping the newest', () => {
    const lru = new LruMap<number, true>(100);
    for (let i = 0; i < 50_000; i++) lru.set(i, true);
    assert.equal(lru.size, 100);
    assert.deepEqual([...lru.keys()].slice(0, 2), [49_900, 49_901]);
  });

  it('refuses a capacity below one', () => {
    assert.throws(() => new LruMap(0), RangeError);
    assert.throws(() => new LruMap(1.5), RangeError);
  });
});
