import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  coalesceAfter,
  CoalescedWrites,
  LARGE_ENOUGH_BYTES,
  MAX_COALESCED_BYTES,
} from '../../src/gateway/coalesce-writes.js';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

function collect(stream: CoalescedWrites): { chunks: Buffer[]; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  return { chunks, ended };
}

describe('coalesced request-body writes', () => {
  it('passes every byte in order, however the writes are cut and spread over turns (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            bytes: fc.uint8Array({ minLength: 1, maxLength: 100_000 }),
            // Whether the event loop turns before this write.
            turn: fc.boolean(),
          }),
          { maxLength: 30 },
        ),
        async (writes) => {
          const stream = new CoalescedWrites();
          const { chunks, ended } = collect(stream);
          for (const write of writes) {
            if (write.turn) await nextTurn();
            stream.write(Buffer.from(write.bytes));
          }
          stream.end();
          await ended;
          assert.deepEqual(
            Buffer.concat(chunks),
            Buffer.concat(writes.map((w) => Buffer.from(w.bytes))),
          );
          for (const chunk of chunks) assert.ok(chunk.length < MAX_COALESCED_BYTES + 100_000);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('what arrives in one turn leaves as one write', async () => {
    const stream = new CoalescedWrites();
    const { chunks } = collect(stream);
    for (let i = 0; i < 8; i++) stream.write(Buffer.alloc(16 * 1024, i));
    await nextTurn();
    await nextTurn();
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0]?.length, 8 * 16 * 1024);
  });

  it('passes a chunk that is already large on as it is, not copied', async () => {
    const stream = new CoalescedWrites();
    const { chunks } = collect(stream);
    const large = Buffer.alloc(LARGE_ENOUGH_BYTES, 7);
    stream.write(large);
    await nextTurn();
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0], large);
  });

  it('holds nothing past the turn it arrived in: a body that pauses mid-way is forwarded up to the pause', async () => {
    const stream = new CoalescedWrites();
    const { chunks } = collect(stream);
    stream.write(Buffer.from('part one'));
    await nextTurn();
    await nextTurn();
    // Not ended: the bytes went out anyway.
    assert.equal(Buffer.concat(chunks).toString(), 'part one');
  });

  it('accepts no more while the consumer has not taken what was released (bounded memory)', async () => {
    const stream = new CoalescedWrites();
    // Nobody reads. Write until the stream says stop, turning the loop as a socket would.
    let written = 0;
    let stopped = false;
    for (let i = 0; i < 1000 && !stopped; i++) {
      stopped = !stream.write(Buffer.alloc(16 * 1024));
      written += 16 * 1024;
      await nextTurn();
    }
    assert.ok(stopped, 'the stream never pushed back');
    assert.ok(written < 4 * MAX_COALESCED_BYTES, `accepted ${written} bytes without a reader`);
    // Once read, it takes the rest.
    const { chunks, ended } = collect(stream);
    stream.end();
    await ended;
    assert.equal(Buffer.concat(chunks).length, written);
  });

  it('a refusal after the request has gone (nobody reading the body) ends that body, never the process', async () => {
    const checked = new PassThrough();
    // The check's own listener, as proxy.ts gives every check (it fails the request).
    const seen: Error[] = [];
    checked.on('error', (err) => seen.push(err));
    const body = coalesceAfter(checked);
    checked.write(Buffer.from('a=1&'));
    await nextTurn();
    // No consumer: undici's request failed or waits in its pool. An uncaught
    // 'error' here would fail this test (and end a gateway).
    checked.destroy(new Error('body field _method is refused'));
    await new Promise((resolve) => body.once('close', resolve));
    assert.equal(body.destroyed, true);
    assert.equal(seen.length, 1);
  });
});
