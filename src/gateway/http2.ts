/**
 * HTTP/2 inside intercepted tunnels: a tunnel whose client chose `h2` by
 * ALPN is handed to this server, and every stream is a request for the
 * gateway's one handler (proxy.ts), judged like any HTTP/1.1 request. The
 * tunnel's host is the only authority (route.ts: :authority, and Host if
 * sent, must be it). RFC 9113's message rules (pseudo-headers,
 * connection-specific fields, TE) are nghttp2's, which resets a stream that
 * breaks them.
 *
 * The known HTTP/2 attacks, and what stops each here:
 * - rapid reset (CVE-2023-44487): streams the client cancels are counted
 *   per connection (a bucket of RESET_BURST, refilled RESET_RATE a second);
 *   past it, GOAWAY ENHANCE_YOUR_CALM. Each cancelled stream was admitted by
 *   the pipeline first, so its upstream work counts in the agent's
 *   concurrency anyway;
 * - CONTINUATION floods (CVE-2024-27316): nghttp2 (>= 1.61) ends a session
 *   whose header block runs past 8 CONTINUATION frames, and the block's size
 *   is bounded by maxHeaderListSize;
 * - HPACK bombs: a decoded header list over limits.maxHeaderBytes, or over
 *   MAX_HEADER_PAIRS fields, is refused (431 / RST_STREAM), however small its
 *   encoding;
 * - SETTINGS and PING floods: received PING and SETTINGS frames share a
 *   bucket (CONTROL_BURST, refilled CONTROL_RATE a second); past it, GOAWAY
 *   ENHANCE_YOUR_CALM;
 * - too many streams: SETTINGS_MAX_CONCURRENT_STREAMS per connection
 *   (limits.http2Streams), and each stream is a request in flight for its
 *   agent's limits.agentConcurrency.
 */
import {
  constants,
  createServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../log/logger.js';
import type { Limits } from './config.js';

const RESET_BURST = 100;
const RESET_RATE = 10;
const CONTROL_BURST = 100;
const CONTROL_RATE = 10;
const MAX_HEADER_PAIRS = 128;
/** How long a connection ended for abuse stays open after its GOAWAY (see calm()). */
const CALM_LINGER_MS = 1000;

/** A token bucket: `take()` is false once more than `burst` came faster than `rate` a second. */
class Bucket {
  #tokens: number;
  #at = Date.now();
  constructor(
    readonly burst: number,
    readonly rate: number,
  ) {
    this.#tokens = burst;
  }
  take(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export interface TunnelHttp2 {
  /** Serves HTTP/2 on a tunnel's TLS socket (its client chose h2). */
  accept(tls: TLSSocket, host: string): void;
  /** Asks every session to finish (GOAWAY), then closes. */
  close(): void;
}

export function createTunnelHttp2(
  limits: Limits,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  logger: Logger,
): TunnelHttp2 {
  const server: Http2Server = createServer({
    maxHeaderListPairs: MAX_HEADER_PAIRS,
    maxSessionMemory: 16,
    settings: {
      enablePush: false,
      maxConcurrentStreams: limits.http2Streams,
      maxHeaderListSize: limits.maxHeaderBytes,
    },
  });
  const sessions = new Set<ServerHttp2Session>();
  let accepting: string | undefined;
  server.on('session', (session: ServerHttp2Session) => {
    if (accepting === undefined) return void session.destroy();
    sessionHosts.set(session, accepting);
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', () => session.destroy());
    let calmed = false;
    const calm = (why: string) => {
      if (calmed) return;
      calmed = true;
      logger.warn({ event: 'http2-abuse', reason: why }, 'HTTP/2 connection ended');
      // GOAWAY now (no new streams), the connection closed a moment later:
      // closed at once while the client is still sending, the socket would
      // answer with a TCP reset, and the reset discards the GOAWAY unread
      // from the client's receive buffer: it would never learn why.
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      const linger = setTimeout(
        () => session.destroy(new Error(why), constants.NGHTTP2_ENHANCE_YOUR_CALM),
        CALM_LINGER_MS,
      );
      linger.unref();
      session.once('close', () => clearTimeout(linger));
    };
    const resets = new Bucket(RESET_BURST, RESET_RATE);
    const control = new Bucket(CONTROL_BURST, CONTROL_RATE);
    session.on('ping', () => {
      if (!control.take()) calm('PING flood');
    });
    session.on('remoteSettings', () => {
      if (!control.take()) calm('SETTINGS flood');
    });
    session.on('stream', (stream) => {
      stream.on('error', () => stream.destroy());
      // Any stream that ends in a reset (the client's CANCEL above all) spends from the bucket.
      stream.once('close', () => {
        if (stream.rstCode !== constants.NGHTTP2_NO_ERROR && !resets.take()) calm('rapid reset');
      });
    });
    // A connection that sends nothing is closed like an idle keep-alive one.
    session.setTimeout(limits.idleTimeout, () => {
      session.close();
    });
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) =>
    // The compatibility API's request and response stand in for node:http's.
    handler(req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  return {
    accept: (tls, host) => {
      // The server makes the session and emits 'session' within this call.
      accepting = host;
      // The session reads the TLS socket's native handle directly (no
      // JavaScript stream between them: a wrapper cost every frame a write
      // of its own, half the throughput). node:http2 waits for
      // 'secureConnect' while `secureConnecting` is set, and a server-side
      // TLSSocket made by hand (not by a tls.Server) never clears it nor
      // emits that event: its handshake is done ('secure'), so clear it.
      // Bytes TLS already decrypted (the client's preface, sent with its
      // last handshake flight) are read by the session from the socket's
      // buffer when it starts.
      (tls as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
      try {
        server.emit('connection', tls);
      } finally {
        accepting = undefined;
      }
    },
    close: () => {
      for (const session of sessions) session.close();
      server.close();
    },
  };
}

const sessionHosts = new WeakMap<ServerHttp2Session, string>();

/** The CONNECT host of the tunnel an HTTP/2 request's stream belongs to (undefined: none, refused). */
export function http2TunnelHost(req: IncomingMessage): string | undefined {
  const session = (req as unknown as Http2ServerRequest).stream.session;
  return session === undefined ? undefined : sessionHosts.get(session as ServerHttp2Session);
}

/** Whether this request came on an HTTP/2 stream. */
export function isHttp2(req: IncomingMessage): boolean {
  return (req as { httpVersionMajor?: number }).httpVersionMajor === 2;
}
