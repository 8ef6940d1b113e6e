/**
 * STREAMING-AWS4-HMAC-SHA256-PAYLOAD bodies (aws-chunked, a signature per
 * chunk) signed again as they stream: each chunk's signature chains from the
 * one before, seeded by the request's, so the agent's (made with placeholder
 * keys) are replaced one by one with the real key's. A chunk is held until
 * its last byte (its signature, which comes first, covers its hash), so
 * memory is bounded by the largest chunk, never the body.
 *
 * The framing is kept byte for byte but for the signatures (64 hex digits
 * each way), so Content-Length and x-amz-decoded-content-length stay true.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** SHA-256 of the empty string: the chunk "headers" hash of S3's chunk string-to-sign. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Larger chunks are refused: each is held whole until signed (SDKs send 64 KiB to 8 MiB). */
export const MAX_SIGNED_CHUNK_BYTES = 16 * 1024 * 1024;
const MAX_CHUNK_HEADER_BYTES = 128;
const CHUNK_HEADER = /^([0-9a-fA-F]{1,8});chunk-signature=[0-9a-f]{64}$/;

export interface ChunkSigning {
  readonly seedSignature: string;
  readonly longDate: string;
  readonly credentialScope: string;
  readonly signString: (stringToSign: string) => Promise<string>;
}

export class ChunkSignatureError extends Error {
  readonly code = 'MINTFS_AWS_CHUNK';
}

type State = 'header' | 'data' | 'crlf' | 'end';

export class ChunkResigner extends Transform {
  readonly #signing: ChunkSigning;
  #previous: string;
  #state: State = 'header';
  #head = Buffer.alloc(0);
  #sizeHex = '';
  #left = 0;
  #parts: Buffer[] = [];
  #hash = createHash('sha256');
  #crlf = Buffer.alloc(0);

  constructor(signing: ChunkSigning) {
    super();
    this.#signing = signing;
    this.#previous = signing.seedSignature;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#consume(chunk).then(
      () => done(),
      (err: unknown) => done(err as Error),
    );
  }

  override _flush(done: TransformCallback): void {
    if (this.#state !== 'end')
      return done(new ChunkSignatureError('the aws-chunked body ended inside a chunk'));
    done();
  }

  async #consume(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.#state === 'end')
        throw new ChunkSignatureError('the aws-chunked body goes on after its final chunk');
      if (this.#state === 'header') {
        const room = MAX_CHUNK_HEADER_BYTES + 2 - this.#head.length;
        const take = chunk.subarray(at, at + room);
        const joined = Buffer.concat([this.#head, take]);
        const end = joined.indexOf('\r\n');
        if (end < 0) {
          if (joined.length > MAX_CHUNK_HEADER_BYTES)
            throw new ChunkSignatureError('an aws-chunked chunk header is too long');
          this.#head = joined;
          at += take.length;
          continue;
        }
        at += end + 2 - this.#head.length;
        this.#startChunk(joined.subarray(0, end).toString('latin1'));
        this.#head = Buffer.alloc(0);
        continue;
      }
      if (this.#state === 'data') {
        const take = chunk.subarray(at, at + this.#left);
        this.#parts.push(take);
        this.#hash.update(take);
        this.#left -= take.length;
        at += take.length;
        if (this.#left === 0) this.#state = 'crlf';
        continue;
      }
      // 'crlf': the two bytes that close a chunk's data.
      const take = chunk.subarray(at, at + 2 - this.#crlf.length);
      this.#crlf = Buffer.concat([this.#crlf, take]);
      at += take.length;
      if (this.#crlf.length < 2) continue;
      if (this.#crlf.toString('latin1') !== '\r\n')
        throw new ChunkSignatureError('an aws-chunked chunk is not followed by CRLF');
      await this.#endChunk();
    }
  }

  #startChunk(line: string): void {
    const match = CHUNK_HEADER.exec(line);
    if (match === null)
      throw new ChunkSignatureError(
        'an aws-chunked chunk header is not SIZE;chunk-signature=SIGNATURE',
      );
    this.#sizeHex = match[1] as string;
    this.#left = parseInt(this.#sizeHex, 16);
    if (this.#left > MAX_SIGNED_CHUNK_BYTES)
      throw new ChunkSignatureError(
        `an aws-chunked chunk is over ${MAX_SIGNED_CHUNK_BYTES} bytes (each is held until it is signed)`,
      );
    this.#parts = [];
    this.#hash = createHash('sha256');
    this.#crlf = Buffer.alloc(0);
    this.#state = this.#left === 0 ? 'crlf' : 'data';
  }

  async #endChunk(): Promise<void> {
    const final = this.#parts.length === 0;
    const stringToSign = [
      'AWS4-HMAC-SHA256-PAYLOAD',
      this.#signing.longDate,
      this.#signing.credentialScope,
      this.#previous,
      EMPTY_SHA256,
      this.#hash.digest('hex'),
    ].join('\n');
    const signature = await this.#signing.signString(stringToSign);
    this.#previous = signature;
    this.push(`${this.#sizeHex};chunk-signature=${signature}\r\n`, 'latin1');
    for (const part of this.#parts) this.push(part);
    this.push('\r\n', 'latin1');
    this.#parts = [];
    this.#state = final ? 'end' : 'header';
  }
}
