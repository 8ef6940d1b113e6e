/**
 * WebSocket frames (RFC 6455 section 5), read as a stream: each frame's
 * head is parsed once it is whole, its payload handed on as it arrives (so
 * a large frame is never held here), and the rules a relay must enforce
 * (masking by direction, no extensions, control frames short and whole,
 * continuations only inside a message, a bound on message size) checked
 * before a byte of the frame moves on.
 */
import { randomBytes } from 'node:crypto';

export const OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
} as const;

export interface FrameHead {
  readonly fin: boolean;
  readonly opcode: number;
  readonly masked: boolean;
  readonly length: number;
  /** The head's bytes exactly as received (relayed unchanged when the frame is passed through). */
  readonly raw: Buffer;
}

export interface FrameSink {
  /** A frame's head passed the rules; its payload follows. */
  head(head: FrameHead): void;
  /** Payload bytes of the current frame, as received (still masked, if it was). */
  payload(chunk: Buffer): void;
  /** The current frame's payload is complete. */
  frameEnd(head: FrameHead): void;
}

/** A frame that breaks the protocol: the close code and reason to end the connection with. */
export class FrameError extends Error {
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface FrameRules {
  /** Frames from a client are masked, frames from a server are not (RFC 6455 5.1). */
  readonly masked: boolean;
  readonly maxMessageBytes: number;
}

export class FrameReader {
  readonly #sink: FrameSink;
  readonly #rules: FrameRules;
  #head: Buffer = Buffer.alloc(0);
  #current: FrameHead | undefined;
  #left = 0;
  /** Inside a fragmented data message: its size so far; undefined between messages. */
  #message: number | undefined;

  constructor(rules: FrameRules, sink: FrameSink) {
    this.#rules = rules;
    this.#sink = sink;
  }

  /** Whether a frame has started and not ended (nothing else may be written on this direction then). */
  get midFrame(): boolean {
    return this.#current !== undefined || this.#head.length > 0;
  }

  /** Reads a chunk; throws FrameError on the first frame that breaks the rules. */
  push(chunk: Buffer): void {
    let data = chunk;
    while (data.length > 0) {
      if (this.#current === undefined) {
        const before = this.#head.length;
        const joined = before === 0 ? data : Buffer.concat([this.#head, data]);
        const parsed = parseHead(joined);
        if (parsed === undefined) {
          // At most 13 bytes wait here: a whole head is never longer than 14.
          this.#head = Buffer.from(joined);
          return;
        }
        this.#head = Buffer.alloc(0);
        const head: FrameHead = { ...parsed, raw: Buffer.from(joined.subarray(0, parsed.size)) };
        this.#check(head);
        this.#current = head;
        this.#left = head.length;
        this.#sink.head(head);
        data = joined.subarray(parsed.size);
      } else {
        const take = Math.min(this.#left, data.length);
        if (take > 0) this.#sink.payload(data.subarray(0, take));
        this.#left -= take;
        data = data.subarray(take);
      }
      if (this.#current !== undefined && this.#left === 0) {
        const done = this.#current;
        this.#current = undefined;
        this.#sink.frameEnd(done);
      }
    }
  }

  #check(head: FrameHead): void {
    const fail = (code: number, message: string) => {
      throw new FrameError(code, message);
    };
    const raw0 = head.raw[0] as number;
    // No extension is ever negotiated through the gateway: RSV bits are always 0.
    if ((raw0 & 0x70) !== 0) fail(CLOSE.protocolError, 'reserved bits set');
    if (head.masked !== this.#rules.masked)
      fail(
        CLOSE.protocolError,
        this.#rules.masked ? 'unmasked client frame' : 'masked server frame',
      );
    const control = head.opcode >= 0x8;
    if (control) {
      if (![OPCODE.close, OPCODE.ping, OPCODE.pong].includes(head.opcode as 8))
        fail(CLOSE.protocolError, `unknown opcode ${head.opcode}`);
      if (!head.fin || head.length > 125)
        fail(CLOSE.protocolError, 'control frames are whole and at most 125 bytes');
      if (head.opcode === OPCODE.close && head.length === 1)
        fail(CLOSE.protocolError, 'a close frame with a one-byte body');
      return;
    }
    if (head.opcode === OPCODE.continuation) {
      if (this.#message === undefined) fail(CLOSE.protocolError, 'continuation outside a message');
    } else if (head.opcode === OPCODE.text || head.opcode === OPCODE.binary) {
      if (this.#message !== undefined) fail(CLOSE.protocolError, 'new message inside a message');
    } else fail(CLOSE.protocolError, `unknown opcode ${head.opcode}`);
    const size = (this.#message ?? 0) + head.length;
    if (size > this.#rules.maxMessageBytes)
      fail(CLOSE.tooBig, `message over ${this.#rules.maxMessageBytes} bytes`);
    this.#message = head.fin ? undefined : size;
  }
}

interface ParsedHead {
  readonly fin: boolean;
  readonly opcode: number;
  readonly masked: boolean;
  readonly length: number;
  /** Bytes of the head, mask key included. */
  readonly size: number;
}

/** The head at the start of `data`, or undefined when more bytes are needed (or it is malformed past 14 bytes). */
export function parseHead(data: Buffer): ParsedHead | undefined {
  if (data.length < 2) return undefined;
  const b0 = data[0] as number;
  const b1 = data[1] as number;
  const masked = (b1 & 0x80) !== 0;
  let length = b1 & 0x7f;
  let size = 2;
  if (length === 126) {
    if (data.length < 4) return undefined;
    length = data.readUInt16BE(2);
    size = 4;
  } else if (length === 127) {
    if (data.length < 10) return undefined;
    const high = data.readUInt32BE(2);
    // The most significant bit must be 0; beyond 2^53 no message fits anyway.
    if (high > 0x1fffff) throw new FrameError(CLOSE.tooBig, 'frame length out of range');
    length = high * 2 ** 32 + data.readUInt32BE(6);
    size = 10;
  }
  if (masked) size += 4;
  if (data.length < size) return undefined;
  return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked, length, size };
}

/** One whole frame; masked with a fresh key when `mask` (frames toward a server). */
export function encodeFrame(opcode: number, payload: Buffer, mask = false): Buffer {
  const length = payload.length;
  const extra = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const head = Buffer.alloc(2 + extra + (mask ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (mask ? 0x80 : 0) | (extra === 0 ? length : extra === 2 ? 126 : 127);
  if (extra === 2) head.writeUInt16BE(length, 2);
  else if (extra === 8) {
    head.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    head.writeUInt32BE(length >>> 0, 6);
  }
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + extra);
  const body = Buffer.from(payload);
  applyMask(body, key, 0);
  return Buffer.concat([head, body]);
}

/** XORs `data` in place with the mask key, starting `offset` bytes into the payload. */
export function applyMask(data: Buffer, key: Buffer, offset: number): void {
  for (let i = 0; i < data.length; i++)
    data[i] = (data[i] as number) ^ (key[(offset + i) & 3] as number);
}

/** The mask key of a masked head (its last four bytes). */
export function maskKeyOf(head: FrameHead): Buffer {
  return head.raw.subarray(head.raw.length - 4);
}

/** A close frame's payload: the code and a reason cut to fit 125 bytes on a character boundary. */
export function closePayload(code: number, reason: string): Buffer {
  let text = Buffer.from(reason);
  if (text.length > 123) {
    let cut = 123;
    // Never end inside a UTF-8 sequence: back up over continuation bytes.
    while (cut > 0 && ((text[cut] as number) & 0xc0) === 0x80) cut--;
    text = text.subarray(0, cut);
  }
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return payload;
}
