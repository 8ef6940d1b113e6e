/**
 * node dist/scripts/bench-lru.js: the gateway verification cache's probation
 * set under fresh tokens (every token new: look it up, remember it, forget
 * the oldest), on src/util/lru-map.ts against the Map/Set way it replaced
 * (evicting with keys().next(), which walks the holes deleted keys leave at
 * the table's front). 10,000 entries, 300-byte tokens, rounds alternating.
 */
import { median } from './bench-common.js';
import { LruMap } from '../src/util/lru-map.js';

const CAPACITY = 10_000;
const STEPS = 200_000;
const token = (i: number) => `AgEGbWludGZz${String(i).padStart(12, '0')}${'x'.repeat(288)}`;

function plainSet(): number {
  const seen = new Set<string>();
  const started = performance.now();
  for (let i = 0; i < STEPS; i++) {
    const t = token(i);
    if (seen.delete(t)) continue;
    seen.add(t);
    if (seen.size > CAPACITY) {
      const oldest = seen.keys().next();
      if (oldest.done !== true) seen.delete(oldest.value);
    }
  }
  return ((performance.now() - started) / STEPS) * 1000;
}

function lruMap(): number {
  const seen = new LruMap<string, true>(CAPACITY);
  const started = performance.now();
  for (let i = 0; i < STEPS; i++) {
    const t = token(i);
    if (!seen.delete(t)) seen.set(t, true);
  }
  return ((performance.now() - started) / STEPS) * 1000;
}

const plain: number[] = [];
const lru: number[] = [];
for (let round = 0; round < 5; round++) {
  plain.push(plainSet());
  lru.push(lruMap());
}
const [p, l] = [median(plain), median(lru)];
console.log(`fresh tokens through a ${CAPACITY}-entry probation set, median of 5 rounds:`);
console.log(`  Set + keys().next(): ${p.toFixed(2)} us a token`);
console.log(`  LruMap:              ${l.toFixed(2)} us a token (${(p / l).toFixed(1)}x faster)`);
