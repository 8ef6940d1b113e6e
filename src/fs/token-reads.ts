/**
 * The tokens one open handle serves, and which of them a read continues.
 *
 * Normally a handle serves the one token minted at open: every read of it,
 * at any offset, is a slice of that token. A handle that mints per read
 * (a mount serving gVisor, whose sentry reads one host handle for every
 * process of the sandbox that opened the file at about the same time, so
 * the mount cannot tell those processes apart) gets a fresh token for every
 * read from offset 0, and must still keep each of those processes' own
 * later reads on the token its read from 0 got (a short buffer, `dd bs=16`,
 * a shell's `read` taking a byte at a time). A read from offset N > 0
 * continues the newest token whose last read ended at N: a process's reads
 * follow each other, and another's whole-token reads end at the token's
 * length, never inside it. Left ambiguous: two processes reading in short
 * steps of the same size, interleaved, can swap tokens half way (each gets a
 * token that fails verification, never a credential).
 *
 * At most TOKEN_READS_KEPT tokens are kept per handle, the oldest read to
 * their end given up first; each is wiped when given up or when the handle
 * is released. The native backend (native/addon/session.c) does exactly the
 * same; test/unit/token-reads.test.ts holds both to it.
 */

/** Tokens kept per handle for continuing reads; more concurrent short readers can swap tokens. */
export const TOKEN_READS_KEPT = 8;

interface TokenRead {
  readonly bytes: Buffer;
  /** Where the last read of it ended (its next read, when a process continues). */
  next: number;
}

export class TokenReads {
  /** Oldest first. The first is the token minted at open, until a read claims it. */
  readonly #reads: TokenRead[];
  #openTokenClaimed = false;

  constructor(openToken: Buffer) {
    this.#reads = [{ bytes: openToken, next: 0 }];
  }

  /** The newest token: what fstat reports the size of. */
  get newest(): Buffer {
    return (this.#reads.at(-1) as TokenRead).bytes;
  }

  /**
   * The bytes of a read of `length` at `offset`. With `mint` (this handle
   * mints per read), a read from 0 gets a fresh token from it (the first such
   * read takes the token minted at open); if `mint` throws, that read fails
   * and the other tokens are untouched.
   */
  read(length: number, offset: number, mint?: () => Buffer): Buffer {
    let read: TokenRead;
    if (mint !== undefined && offset === 0 && this.#openTokenClaimed) {
      read = { bytes: mint(), next: 0 };
      this.#keep(read);
    } else {
      read = this.#continuing(offset);
    }
    this.#openTokenClaimed = true;
    const { bytes } = read;
    const end = Math.min(bytes.length, offset + length);
    if (offset >= end) {
      read.next = offset;
      return Buffer.alloc(0);
    }
    read.next = end;
    return bytes.subarray(offset, end);
  }

  /** Wipes every token (release). */
  wipe(): void {
    for (const read of this.#reads) read.bytes.fill(0);
    this.#reads.length = 0;
  }

  #continuing(offset: number): TokenRead {
    for (let i = this.#reads.length - 1; i >= 0; i--) {
      const read = this.#reads[i] as TokenRead;
      if (read.next === offset) return read;
    }
    // A seek, or a continuation whose token was given up: the newest token.
    return this.#reads.at(-1) as TokenRead;
  }

  #keep(read: TokenRead): void {
    if (this.#reads.length >= TOKEN_READS_KEPT) {
      const done = this.#reads.findIndex((r) => r.next >= r.bytes.length);
      const [given] = this.#reads.splice(done === -1 ? 0 : done, 1);
      given?.bytes.fill(0);
    }
    this.#reads.push(read);
  }
}
