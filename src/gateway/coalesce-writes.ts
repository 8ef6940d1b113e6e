/**
 * A request body on its way upstream, in fewer, larger writes. A body read
 * from an intercepted TLS connection arrives one TLS record (at most 16 KiB)
 * at a time, and each became a write of its own to the upstream's TLS
 * socket: a record, a syscall and its stream bookkeeping each. aws-cli's
 * 256 MiB upload by interception ran at 0.64x its direct speed
 * (docs/benchmarks.md), 43% of the gateway's CPU in those writes.
 *
 * What arrives within one turn of the event loop (the records of one socket
 * read) leaves as one buffer, at most MAX_COALESCED_BYTES: nothing is held
 * past that turn, so a client that pauses mid-body still has every byte it
 * sent forwarded. Backpressure holds: while the upstream side has not taken
 * what was released, no more is accepted.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';

/** The most bytes gathered into one write. */
export const MAX_COALESCED_BYTES = 256 * 1024;
/** A chunk this large goes on alone: gathering it would cost a copy and save little. */
export const LARGE_ENOUGH_BYTES = 64 * 1024;

export class CoalescedWrites extends Transform {
  #held: Buffer[] = [];
  #heldBytes = 0;
  #scheduled = false;
  /** The write that waits for the consumer to take what was released. */
  #waiting: TransformCallback | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    // Already a large write (a plain TCP read is up to 64 KiB): passed on as it is, not copied.
    if (this.#heldBytes === 0 && chunk.length >= LARGE_ENOUGH_BYTES) {
      done(null, chunk);
      return;
    }
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes >= MAX_COALESCED_BYTES) this.#release();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#release());
    }
    if (this.readableLength >= this.readableHighWaterMark) this.#waiting = done;
    else done();
  }

  override _read(size: number): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
    super._read(size);
  }

  override _flush(done: TransformCallback): void {
    this.#release();
    done();
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.#held = [];
    this.#heldBytes = 0;
    this.#waiting = undefined;
    super._destroy(err, done);
  }

  #release(): void {
    this.#scheduled = false;
    if (this.#heldBytes === 0 || this.destroyed) return;
    const out =
      this.#held.length === 1
        ? (this.#held[0] as Buffer)
        : Buffer.concat(this.#held, this.#heldBytes);
    this.#held = [];
    this.#heldBytes = 0;
    this.push(out);
  }
}

/**
 * `checked` (a request body that every check has read) piped through a
 * CoalescedWrites. An error of `checked` destroys what follows it, so undici
 * aborts the upstream request; `checked`'s own listener reports it. The
 * coalescer gets a listener of its own: undici listens on a body only while
 * it writes it, and a body whose request failed or still waits in a pool
 * would otherwise turn a late refusal (a `_method` field, a bad chunk) into
 * an uncaught 'error' that ends the gateway.
 */
export function coalesceAfter(checked: Readable): CoalescedWrites {
  const coalesced = new CoalescedWrites();
  coalesced.on('error', () => {
    // Reported through `checked`'s listener; here only so it is never uncaught.
  });
  checked.on('error', (err) => coalesced.destroy(err));
  return checked.pipe(coalesced);
}
