/**
 * The WebSocket pieces without sockets: the frame reader against the
 * encoder (property tests: any framing, any chunking), the rules it enforces,
 * the handshake checks, and the close payload.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CLOSE,
  FrameError,
  FrameReader,
  OPCODE,
  applyMask,
  closePayload,
  encodeFrame,
  maskKeyOf,
  type FrameHead,
} from '../../src/websocket/frames.js';
import { acceptFor, upstreamAcceptProblem } from '../../src/websocket/handshake.js';

interface Read {
  heads: FrameHead[];
  payloads: Buffer[];
}

function reader(masked: boolean, maxMessageBytes = 1 << 20): { read: Read; reader: FrameReader } {
  const read: Read = { heads: [], payloads: [] };
  let current: Buffer[] = [];
  const r = new FrameReader(
    { masked, maxMessageBytes },
    {
      head: (head) => {
        read.heads.push(head);
        current = [];
      },
      payload: (chunk) => current.push(Buffer.from(chunk)),
      frameEnd: (head) => {
        const payload = Buffer.concat(current);
        if (head.masked) applyMask(payload, maskKeyOf(head), 0);
        read.payloads.push(payload);
      },
    },
  );
  return { read, reader: r };
}

/** Feeds `data` in pieces cut at `cuts` (positions, any order). */
function feed(r: FrameReader, data: Buffer, cuts: number[]): void {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  let at = 0;
  for (const point of [...points, data.length]) {
    r.push(data.subarray(at, point));
    at = point;
  }
}

const message = fc.record({
  opcode: fc.constantFrom(OPCODE.text, OPCODE.binary, OPCODE.ping, OPCODE.pong),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 125 }),
    fc.uint8Array({ minLength: 126, maxLength: 70_000 }),
  ),
});

describe('websocket frames', () => {
  it('what the encoder writes, the reader reads back, however it is cut (property)', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 20 }),
        (messages, masked, cuts) => {
          const frames = messages.map(({ opcode, payload }) =>
            encodeFrame(opcode, Buffer.from(opcode >= 8 ? payload.slice(0, 125) : payload), masked),
          );
          const { read, reader: r } = reader(masked);
          feed(r, Buffer.concat(frames), cuts);
          assert.equal(read.heads.length, messages.length);
          messages.forEach(({ opcode, payload }, i) => {
            assert.equal(read.heads[i]?.opcode, opcode);
            assert.equal(read.heads[i]?.fin, true);
            assert.deepEqual(
              read.payloads[i],
              Buffer.from(opcode >= 8 ? payload.slice(0, 125) : payload),
            );
          });
          assert.equal(r.midFrame, false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('any bytes at all either parse or end in a FrameError, never another error (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const { reader: r } = reader(true, 1 << 30);
        try {
          for (const byte of bytes) r.push(Buffer.from([byte]));
        } catch (err) {
          assert.ok(err instanceof FrameError, String(err));
        }
      }),
    );
  });

  const refuses = (masked: boolean, data: Buffer, code: number, max = 1 << 20) => {
    const { reader: r } = reader(masked, max);
    assert.throws(
      () => r.push(data),
      (err: unknown) => err instanceof FrameError && err.closeCode === code,
    );
  };

  it('refuses what a relay must not pass: wrong masking, reserved bits, bad control frames, stray continuations, unknown opcodes', () => {
    refuses(true, encodeFrame(OPCODE.text, Buffer.from('hi')), CLOSE.protocolError);
    refuses(false, encodeFrame(OPCODE.text, Buffer.from('hi'), true), CLOSE.protocolError);
    const rsv = encodeFrame(OPCODE.text, Buffer.from('hi'), true);
    rsv[0] = (rsv[0] as number) | 0x40; // permessage-deflate's bit, never negotiated here
    refuses(true, rsv, CLOSE.protocolError);
    const longPing = encodeFrame(OPCODE.ping, Buffer.alloc(126), true);
    refuses(true, longPing, CLOSE.protocolError);
    const fragmentedPing = encodeFrame(OPCODE.ping, Buffer.alloc(3), true);
    fragmentedPing[0] = OPCODE.ping; // fin 0
    refuses(true, fragmentedPing, CLOSE.protocolError);
    refuses(true, encodeFrame(OPCODE.continuation, Buffer.from('x'), true), CLOSE.protocolError);
    refuses(true, encodeFrame(0x3, Buffer.from('x'), true), CLOSE.protocolError);
    refuses(true, encodeFrame(0xb, Buffer.from('x'), true), CLOSE.protocolError);
    refuses(true, encodeFrame(OPCODE.close, Buffer.from([3]), true), CLOSE.protocolError);
  });

  it('refuses a new message inside a fragmented one, and counts a message across its fragments against the limit', () => {
    const first = encodeFrame(OPCODE.text, Buffer.alloc(60), true);
    first[0] = OPCODE.text; // not final
    refuses(
      true,
      Buffer.concat([first, encodeFrame(OPCODE.text, Buffer.alloc(1), true)]),
      CLOSE.protocolError,
    );
    const more = encodeFrame(OPCODE.continuation, Buffer.alloc(60), true);
    refuses(true, Buffer.concat([first, more]), CLOSE.tooBig, 100);
    // A ping between fragments is allowed (RFC 6455 5.4).
    const { read, reader: r } = reader(true, 200);
    r.push(Buffer.concat([first, encodeFrame(OPCODE.ping, Buffer.alloc(2), true), more]));
    assert.deepEqual(
      read.heads.map((h) => h.opcode),
      [OPCODE.text, OPCODE.ping, OPCODE.continuation],
    );
  });

  it('refuses a 64-bit length with its top bit set before reading any payload', () => {
    const head = Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]);
    refuses(true, head, CLOSE.tooBig);
  });

  it('a close payload keeps the code and cuts a long reason on a character boundary', () => {
    const payload = closePayload(1008, 'é'.repeat(100));
    assert.equal(payload.readUInt16BE(0), 1008);
    assert.ok(payload.length <= 125);
    assert.equal(payload.subarray(2).toString('utf8'), 'é'.repeat(61));
  });
});

describe('websocket handshake', () => {
  it("computes RFC 6455's example Sec-WebSocket-Accept", () => {
    assert.equal(acceptFor('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('accepts only a real acceptance of the key sent, without extensions or an unoffered subprotocol', () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const good = {
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-accept': acceptFor(key),
    };
    assert.equal(upstreamAcceptProblem(good, key, []), undefined);
    assert.match(
      upstreamAcceptProblem(
        { ...good, 'sec-websocket-accept': acceptFor('AAAAAAAAAAAAAAAAAAAAAA==') },
        key,
        [],
      ) ?? '',
      /Accept/,
    );
    assert.match(upstreamAcceptProblem({ ...good, upgrade: 'h2c' }, key, []) ?? '', /Upgrade/);
    assert.match(
      upstreamAcceptProblem({ ...good, connection: 'close' }, key, []) ?? '',
      /Connection/,
    );
    assert.match(
      upstreamAcceptProblem(
        { ...good, 'sec-websocket-extensions': 'permessage-deflate' },
        key,
        [],
      ) ?? '',
      /extension/,
    );
    assert.match(
      upstreamAcceptProblem({ ...good, 'sec-websocket-protocol': 'chat' }, key, ['superchat']) ??
        '',
      /subprotocol/,
    );
    assert.equal(
      upstreamAcceptProblem({ ...good, 'sec-websocket-protocol': 'chat' }, key, ['chat']),
      undefined,
    );
  });
});
