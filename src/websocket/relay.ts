/**
 * One WebSocket, relayed frame by frame between the agent and the upstream
 * once the upstream has really accepted it (handshake.ts):
 *
 * - agent → upstream: every frame is checked (masked, no extensions, control
 *   frames whole, continuations in order, message size) and passed through
 *   unchanged, streamed, so the upstream sees only well-formed frames;
 * - upstream → agent: data messages are held whole (up to maxMessageBytes)
 *   and sent as one frame with every echo of the credential masked, as RFC
 *   6455 5.4 lets an intermediary re-fragment when no extension is in use;
 *   control frames (ping, pong, close reasons) are masked too.
 *
 * The gateway can end it at any time (a dead token, a lifetime): a close
 * frame with a code and reason to the agent, one to the upstream when the
 * agent's direction is between frames, then both connections end.
 */
import type { Duplex } from 'node:stream';
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
} from './frames.js';

/** After the gateway's close frame, how long the peers get to answer before both are cut. */
const CLOSE_GRACE_MS = 2_000;

export interface RelayOptions {
  readonly client: Duplex;
  readonly upstream: Duplex;
  /** Bytes the agent sent after its handshake (frames sent early), read first. */
  readonly clientHead: Buffer;
  /** Masks every echo of the credential in a payload, in place, keeping its length. */
  readonly mask: (payload: Buffer) => void;
  readonly maxMessageBytes: number;
}

export interface RelayEnd {
  readonly code: number | undefined;
  readonly reason: string;
  /** Who closed: a close frame from one side, the gateway's own decision, or a connection lost. */
  readonly by: 'client' | 'upstream' | 'gateway' | 'connection';
}

export interface RelayCounts {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
}

export class WebSocketRelay {
  readonly counts: RelayCounts = { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 };
  readonly #o: RelayOptions;
  readonly #fromClient: FrameReader;
  readonly #fromUpstream: FrameReader;
  /** The upstream's current data message: its opcode and payload so far. */
  #message: { opcode: number; chunks: Buffer[] } | undefined;
  /** The payload of the control frame being read (from either side), else undefined. */
  #control: { from: 'client' | 'upstream'; chunks: Buffer[] } | undefined;
  #end: RelayEnd | undefined;
  #closing = false;
  #clientClosed = false;
  #upstreamClosed = false;
  #cutTimer: NodeJS.Timeout | undefined;
  readonly #done: Promise<RelayEnd>;
  #resolve!: (end: RelayEnd) => void;

  constructor(options: RelayOptions) {
    this.#o = options;
    this.#done = new Promise((resolve) => (this.#resolve = resolve));
    const { client, upstream } = options;
    this.#fromClient = new FrameReader(
      { masked: true, maxMessageBytes: options.maxMessageBytes },
      {
        head: (head) => {
          if (head.opcode === OPCODE.close) this.#control = { from: 'client', chunks: [] };
          this.#toUpstream(head.raw);
        },
        payload: (chunk) => {
          if (this.#control?.from === 'client') this.#control.chunks.push(Buffer.from(chunk));
          this.#toUpstream(chunk);
        },
        frameEnd: (head) => {
          if (head.fin && head.opcode < 0x8) this.counts.messagesIn++;
          if (head.opcode !== OPCODE.close) return;
          const payload = Buffer.concat(this.#control?.chunks ?? []);
          this.#control = undefined;
          applyMask(payload, maskKeyOf(head), 0);
          this.#clientClosed = true;
          this.#end ??= { ...closeOf(payload), by: 'client' };
        },
      },
    );
    this.#fromUpstream = new FrameReader(
      { masked: false, maxMessageBytes: options.maxMessageBytes },
      {
        head: (head) => {
          if (head.opcode >= 0x8) this.#control = { from: 'upstream', chunks: [] };
          else if (head.opcode !== OPCODE.continuation)
            this.#message = { opcode: head.opcode, chunks: [] };
        },
        payload: (chunk) => {
          // Copied: the socket's buffer is not ours to keep.
          const copy = Buffer.from(chunk);
          if (this.#control?.from === 'upstream') this.#control.chunks.push(copy);
          else this.#message?.chunks.push(copy);
        },
        frameEnd: (head) => this.#upstreamFrame(head),
      },
    );
    client.on('error', () => this.#lost('client connection failed'));
    upstream.on('error', () => this.#lost('upstream connection failed'));
    client.on('close', () => this.#lost('client connection closed'));
    upstream.on('close', () => this.#lost('upstream connection closed'));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('data', (chunk: Buffer) => this.#read(this.#fromClient, chunk, 'client'));
    upstream.on('data', (chunk: Buffer) => this.#read(this.#fromUpstream, chunk, 'upstream'));
    if (options.clientHead.length > 0) this.#read(this.#fromClient, options.clientHead, 'client');
    client.resume();
    upstream.resume();
  }

  /** Settles when both connections are gone, with how the WebSocket ended. */
  get done(): Promise<RelayEnd> {
    return this.#done;
  }

  /** The gateway ends the WebSocket: a close frame with this code and reason to both sides. */
  close(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#end ??= { code, reason, by: 'gateway' };
    const { client, upstream } = this.#o;
    // A side whose close frame we already relayed gets none of ours.
    if (!this.#upstreamClosed && client.writable)
      client.write(encodeFrame(OPCODE.close, closePayload(code, reason)));
    // Toward the upstream only between the agent's frames, never inside one.
    if (!this.#clientClosed && !this.#fromClient.midFrame && upstream.writable)
      upstream.write(encodeFrame(OPCODE.close, closePayload(CLOSE.goingAway, reason), true));
    this.#cutSoon();
  }

  #read(reader: FrameReader, chunk: Buffer, from: 'client' | 'upstream'): void {
    // Once the gateway has closed, nothing more is relayed either way.
    if (this.#closing) return;
    if (from === 'client') this.counts.bytesIn += chunk.length;
    // What one read completes leaves in one write: a frame's head and payload
    // were two writes (two syscalls) of their own, and every frame of a read
    // another two; corked, they go out together when the read is done.
    const to = from === 'client' ? this.#o.upstream : this.#o.client;
    to.cork();
    try {
      reader.push(chunk);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.close(
        err.closeCode,
        from === 'client' ? err.message : `upstream sent a bad frame: ${err.message}`,
      );
    } finally {
      to.uncork();
    }
  }

  #toUpstream(data: Buffer): void {
    this.#send(this.#o.upstream, this.#o.client, data);
  }

  #toClient(data: Buffer): void {
    this.counts.bytesOut += data.length;
    this.#send(this.#o.client, this.#o.upstream, data);
  }

  /** Writes, pausing the other side until the slow one drains. */
  #send(to: Duplex, from: Duplex, data: Buffer): void {
    if (to.write(data) || from.isPaused()) return;
    from.pause();
    to.once('drain', () => from.resume());
  }

  #upstreamFrame(head: FrameHead): void {
    const { mask } = this.#o;
    if (head.opcode >= 0x8) {
      const body = Buffer.concat(this.#control?.chunks ?? []);
      this.#control = undefined;
      if (head.opcode === OPCODE.close) {
        this.#upstreamClosed = true;
        this.#end ??= { ...closeOf(body), by: 'upstream' };
      }
      // A close frame's code is not text: only its reason is masked.
      mask(head.opcode === OPCODE.close ? body.subarray(2) : body);
      this.#toClient(encodeFrame(head.opcode, body));
      return;
    }
    if (!head.fin || this.#message === undefined) return;
    const { opcode, chunks } = this.#message;
    this.#message = undefined;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    mask(body);
    this.counts.messagesOut++;
    this.#toClient(encodeFrame(opcode, body));
  }

  #lost(why: string): void {
    const { client, upstream } = this.#o;
    this.#end ??= { code: undefined, reason: why, by: 'connection' };
    if (client.destroyed && upstream.destroyed) {
      clearTimeout(this.#cutTimer);
      this.#resolve(this.#end);
      return;
    }
    // One side is gone: the other gets what was written to it, then is cut.
    this.#cutSoon();
  }

  /** Ends both connections; what does not close within the grace is destroyed. */
  #cutSoon(): void {
    const { client, upstream } = this.#o;
    client.end();
    upstream.end();
    this.#cutTimer ??= setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, CLOSE_GRACE_MS);
  }
}

/** The code and reason in a close frame's (unmasked) payload. */
function closeOf(payload: Buffer): { code: number | undefined; reason: string } {
  if (payload.length < 2) return { code: undefined, reason: '' };
  return {
    code: payload.readUInt16BE(0),
    reason: payload.subarray(2).toString('utf8').slice(0, 123),
  };
}
