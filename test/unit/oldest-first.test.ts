/**
 * OldestFirst evicts exactly what the plain `keys().next()` would (the first
 * key still there in insertion order), over any mix of inserts, moves to the
 * end, deletes, clears and evictions: checked with generated sequences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { OldestFirst } from '../../src/util/oldest-first.js';

type Op =
  | { readonly kind: 'set' | 'touch' | 'delete'; readonly key: number }
  | { readonly kind: 'evict' | 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.nat(30) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('touch' as const), key: fc.nat(30) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(30) }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'evict' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
);

function apply(map: Map<number, number>, evict: () => void, step: Op, i: number): void {
  switch (step.kind) {
    case 'set':
      map.set(step.key, i);
      return;
    case 'touch': {
      // A hit in an LRU list: moved to the end.
      const value = map.get(step.key);
      if (value === undefined) return;
      map.delete(step.key);
      map.set(step.key, value);
      return;
    }
    case 'delete':
      map.delete(step.key);
      return;
    case 'clear':
      map.clear();
      return;
    case 'evict':
      evict();
  }
}

describe('OldestFirst', () => {
  it('evicts in insertion order, as keys().next() does, whatever happened in between', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const plain = new Map<number, number>();
        const tracked = new Map<number, number>();
        const oldest = new OldestFirst(tracked);
        ops.forEach((step, i) => {
          apply(
            plain,
            () => {
              const first = plain.keys().next();
              if (first.done !== true) plain.delete(first.value);
            },
            step,
            i,
          );
          apply(tracked, () => void oldest.dropOldest(), step, i);
          assert.deepEqual([...tracked], [...plain], `after step ${i}: ${JSON.stringify(step)}`);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('says when there is nothing to evict, and evicts again once refilled (a Set too)', () => {
    const set = new Set<string>();
    const oldest = new OldestFirst(set);
    assert.equal(oldest.dropOldest(), false);
    set.add('a').add('b');
    assert.equal(oldest.dropOldest(), true);
    assert.deepEqual([...set], ['b']);
    assert.equal(oldest.dropOldest(), true);
    assert.equal(oldest.dropOldest(), false);
    set.add('c');
    assert.equal(oldest.dropOldest(), true);
    assert.equal(set.size, 0);
  });

  it('keeps up with churn far past any table size: the set stays bounded and ordered', () => {
    const set = new Set<number>();
    const oldest = new OldestFirst(set);
    for (let i = 0; i < 50_000; i++) {
      set.add(i);
      if (set.size > 100) oldest.dropOldest();
    }
    assert.equal(set.size, 100);
    assert.deepEqual([...set].slice(0, 2), [49_900, 49_901]);
  });
});
