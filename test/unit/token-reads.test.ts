/**
 * Which token a read of a handle gets (src/fs/token-reads.ts), the rules
 * both backends follow for a mount serving gVisor: a fresh token per read
 * from offset 0, a short reader's later reads kept on its own token while
 * other readers of the same handle read whole tokens, and one token per
 * handle when the handle does not mint per read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TOKEN_READS_KEPT, TokenReads } from '../../src/fs/token-reads.js';

const LENGTH = 40;

/** Distinct tokens of one length (as a mount's are, for one key), and the list of those minted. */
function minter(): { mint: () => Buffer; minted: Buffer[] } {
  const minted: Buffer[] = [];
  return {
    minted,
    mint: () => {
      const token = Buffer.from(`t${String(minted.length).padStart(LENGTH - 1, '.')}`);
      minted.push(token);
      return token;
    },
  };
}

/** Reads a whole token from 0 in steps of `step`, up to and including the read that returns nothing. */
function readAll(reads: TokenReads, step: number, mint?: () => Buffer): string {
  let out = '';
  for (;;) {
    const chunk = reads.read(step, out.length, mint);
    if (chunk.length === 0) return out;
    out += chunk.toString();
  }
}

describe('token reads of one handle', () => {
  it('without minting per read, every read is a slice of the token minted at open', () => {
    const token = Buffer.from('x'.repeat(LENGTH));
    const reads = new TokenReads(token);
    assert.equal(readAll(reads, 4096), token.toString());
    assert.equal(readAll(reads, 7), token.toString());
    assert.equal(reads.read(10, 35).toString(), 'xxxxx');
    assert.equal(reads.newest, token);
  });

  it('minting per read: the first read from 0 takes the open token, every later one a fresh token', () => {
    const { mint, minted } = minter();
    const reads = new TokenReads(mint());
    const seen = [1, 2, 3].map(() => readAll(reads, 4096, mint));
    assert.deepEqual(
      seen,
      minted.map((t) => t.toString()),
    );
    assert.equal(new Set(seen).size, 3);
  });

  it('a short read from 0 and its continuation get one token while whole readers read between them', () => {
    const { mint, minted } = minter();
    const reads = new TokenReads(mint());
    readAll(reads, 4096, mint); // the open token, read whole
    const head = reads.read(16, 0, mint).toString();
    const whole = [readAll(reads, 4096, mint), readAll(reads, 4096, mint)];
    const tail = readFrom(reads, 16, 16, mint);
    assert.equal(head + tail, minted[1]?.toString());
    assert.deepEqual(whole, [minted[2]?.toString(), minted[3]?.toString()]);
  });

  it('a failed mint fails that read alone', () => {
    const { mint, minted } = minter();
    const reads = new TokenReads(mint());
    const head = reads.read(10, 0, mint).toString(); // the open token, in progress
    assert.throws(
      () =>
        reads.read(4096, 0, () => {
          throw new Error('no key');
        }),
      /no key/,
    );
    assert.equal(head + readFrom(reads, 10, 10, mint), minted[0]?.toString());
  });

  it(`keeps ${TOKEN_READS_KEPT} tokens, giving up those read to their end first, and wipes what it gives up`, () => {
    const { mint, minted } = minter();
    const reads = new TokenReads(mint());
    const head = reads.read(5, 0, mint).toString(); // a short reader on the open token
    for (let i = 0; i < 3 * TOKEN_READS_KEPT; i++) readAll(reads, 4096, mint);
    assert.equal(head + readFrom(reads, 5, 5, mint), minted[0]?.toString());
    // Whole tokens given up were wiped (all but the newest kept ones).
    const wiped = minted.filter((t) => t.every((b) => b === 0)).length;
    assert.ok(wiped >= 3 * TOKEN_READS_KEPT - TOKEN_READS_KEPT, `${wiped} wiped`);
    reads.wipe();
    assert.ok(minted.every((t) => t.every((b) => b === 0)));
  });

  it('property: one short reader and any number of whole readers, interleaved, each get one whole distinct token', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: LENGTH - 1 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 60 }),
        (step, schedule) => {
          const { mint } = minter();
          const reads = new TokenReads(mint());
          const got: string[] = [];
          let short = '';
          let shortDone = false;
          // true: the short reader's next read; false: a whole reader's read and its EOF probe.
          for (const shortTurn of schedule) {
            if (shortTurn && !shortDone) {
              const chunk = reads.read(step, short.length, mint);
              if (chunk.length === 0) shortDone = true;
              short += chunk.toString();
            } else {
              got.push(readAll(reads, 4096, mint));
            }
          }
          if (!shortDone) short += readFrom(reads, step, short.length, mint);
          got.push(short);
          for (const token of got) assert.match(token, new RegExp(`^t\\.*\\d+$`));
          for (const token of got) assert.equal(token.length, LENGTH);
          assert.equal(new Set(got).size, got.length);
        },
      ),
    );
  });
});

/** Continues a short reader from `offset` (where its last read ended) to the end of its token. */
function readFrom(reads: TokenReads, step: number, offset: number, mint: () => Buffer): string {
  let out = '';
  for (let at = offset; ;) {
    const chunk = reads.read(step, at, mint);
    if (chunk.length === 0) return out;
    out += chunk.toString();
    at += chunk.length;
  }
}
