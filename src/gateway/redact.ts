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
    const data = this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
    maskSecrets(data, this.#secrets);
    const cut = Math.max(0, data.length - this.#hold);
    this.#carry = Buffer.from(data.subarray(cut));
    if (cut > 0) this.push(data.subarray(0, cut));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.#carry.length > 0) this.push(this.#carry);
    done();
  }
}
