/**
 * The credential never comes back to the agent: if an upstream echoes it, in
 * a header or anywhere in the body, it is replaced. Body replacement keeps
 * the length (asterisks), so Content-Length stays true; a match split across
 * chunks is caught by holding back the last (longest secret - 1) bytes.
 */
import { Transform, type TransformCallback } from 'node:stream';

export const HEADER_REPLACEMENT = '[redacted]';

export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets)
    if (secret !== '' && out.includes(secret)) out = out.split(secret).join(HEADER_REPLACEMENT);
  return out;
}

/** Masks every occurrence of each secret in `data`, in place, keeping its length. */
export function maskSecrets(data: Buffer, secrets: readonly Buffer[]): void {
  for (const secret of secrets) {
    let at = data.indexOf(secret);
    while (at >= 0) {
      data.fill(0x2a, at, at + secret.length);
      at = data.indexOf(secret, at + secret.length);
    }
  }
}

export class RedactStream extends Transform {
  readonly #secrets: Buffer[];
  readonly #hold: number;
  #carry: Buffer = Buffer.alloc(0);

  readonly #onBytes: ((n: number) => void) | undefined;

  /** `onBytes` hears how many bytes pass through (for the audit line). */
  constructor(secrets: readonly string[], onBytes?: (n: number) => void) {
    super();
    this.#onBytes = onBytes;
    this.#secrets = secrets.filter((s) => s !== '').map((s) => Buffer.from(s));
    this.#hold = Math.max(0, ...this.#secrets.map((s) => s.length - 1));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#onBytes?.(chunk.length);
    const hold = this.#hold;
    if (chunk.length <= 2 * hold || this.#carry.length === 0) {
      // Small chunks (and the first): joined with what was held back, as they are.
      const data = this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
      maskSecrets(data, this.#secrets);
      const cut = Math.max(0, data.length - hold);
      this.#carry = Buffer.from(data.subarray(cut));
      if (cut > 0) this.push(data.subarray(0, cut));
      return done();
    }
    // A large chunk is not copied whole to be joined with the held-back tail: an echo
    // across the seam lies within the tail and the chunk's first `hold` bytes, which are
    // joined and masked on their own, then every echo inside the chunk.
    const carried = this.#carry.length;
    const seam = Buffer.concat([this.#carry, chunk.subarray(0, hold)]);
    maskSecrets(seam, this.#secrets);
    seam.copy(chunk, 0, carried);
    maskSecrets(chunk, this.#secrets);
    this.push(seam.subarray(0, carried));
    const cut = chunk.length - hold;
    this.#carry = Buffer.from(chunk.subarray(cut));
    this.push(chunk.subarray(0, cut));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.#carry.length > 0) this.push(this.#carry);
    done();
  }
}

/**
 * Redaction for gRPC responses, message by message: each length-prefixed
 * message (a flag byte, four bytes of length) is held whole, masked, and
 * passed on at once. RedactStream's held-back tail would stall a streaming
 * call whose next message waits for this one's answer. A compressed message
 * cannot be read for an echo, so it fails the response (compression is never
 * asked for: grpc-accept-encoding is not forwarded).
 */
export class GrpcRedactStream extends Transform {
  readonly #secrets: Buffer[];
  readonly #maxMessageBytes: number;
  readonly #onBytes: ((n: number) => void) | undefined;
  #pending: Buffer = Buffer.alloc(0);

  constructor(secrets: readonly string[], maxMessageBytes: number, onBytes?: (n: number) => void) {
    super();
    this.#secrets = secrets.filter((s) => s !== '').map((s) => Buffer.from(s));
    this.#maxMessageBytes = maxMessageBytes;
    this.#onBytes = onBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#onBytes?.(chunk.length);
    let data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (data.length >= 5) {
      if (data[0] !== 0) return done(new Error('a compressed gRPC message cannot be redacted'));
      const length = data.readUInt32BE(1);
      if (length > this.#maxMessageBytes)
        return done(new Error(`a gRPC message over ${this.#maxMessageBytes} bytes`));
      if (data.length < 5 + length) break;
      const message = Buffer.from(data.subarray(0, 5 + length));
      maskSecrets(message.subarray(5), this.#secrets);
      this.push(message);
      data = data.subarray(5 + length);
    }
    this.#pending = Buffer.from(data);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.#pending.length > 0) return done(new Error('a gRPC response ended inside a message'));
    done();
  }
}
