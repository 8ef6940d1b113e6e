/**
 * The upstream half of one proxied request, as an undici dispatch handler:
 * the response head and body go straight to the client's response, with the
 * credential masked. Lower level than `pool.request()` on purpose: no
 * AbortSignal, no intermediate body stream, which was a tenth of a request.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { partialResponseProblem } from './partial-responses.js';
import { GrpcRedactStream, RedactStream, maskSecrets, redactText } from './redact.js';
import { responseDecoding } from './response-decoding.js';

// Hop-by-hop headers (RFC 9110 7.6.1) never cross the gateway.
export const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];
const DROPPED_RESPONSE_HEADERS = new Set(HOP_BY_HOP);

/** Responses up to this size with a Content-Length are redacted in one piece. */
const SMALL_BODY_BYTES = 64 * 1024;

export interface ExchangeOptions {
  readonly res: ServerResponse;
  readonly secrets: readonly string[];
  readonly secretBytes: readonly Buffer[];
  /** Bytes sent to the client, for the audit line. */
  readonly countOut: (n: number) => void;
  /** The upstream failed before its response head: answer the client with an error. */
  readonly failed: (err: Error) => void;
  /** The upstream's response head arrived (for its latency). */
  readonly responded?: () => void;
  /** A partial response is refused and ranges are not advertised (partial-responses.ts). */
  readonly wholeResponsesOnly?: boolean;
  /**
   * How long the client may leave the response unread (the upstream paused
   * for it) before both are cut. undici's bodyTimeout does not run while
   * paused, so without this a client that stops reading holds an upstream
   * connection, and its own, for good.
   */
  readonly stallTimeoutMs: number;
}

export class UpstreamExchange implements Dispatcher.DispatchHandler {
  readonly #o: ExchangeOptions;
  #controller: Dispatcher.DispatchController | undefined;
  #clientGone = false;
  /** Small-body mode: chunks collected until the end. */
  #chunks: Buffer[] | undefined;
  /** Streaming mode: where chunks go (decoder or redaction). */
  #sink: Writable | undefined;
  /** Runs while the upstream is paused for the client: cuts the response when it fires. */
  #stall: NodeJS.Timeout | undefined;

  constructor(options: ExchangeOptions) {
    this.#o = options;
    // The client went away: stop the upstream work too.
    options.res.once('close', () => {
      clearTimeout(this.#stall);
      if (options.res.writableFinished) return;
      this.#clientGone = true;
      this.#controller?.abort(new Error('client closed the connection'));
    });
  }

  /** Stops the exchange (a request body that broke a limit). */
  abort(reason: Error): void {
    this.#controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#clientGone) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return; // 1xx: informational, the real head follows
    this.#o.responded?.();
    const { res, secrets } = this.#o;
    const whole = this.#o.wholeResponsesOnly === true;
    const part = whole ? partialResponseProblem(statusCode, headers) : undefined;
    const decoding = responseDecoding(headers);
    // Nothing of either response reaches the client: it could hide the credential.
    if (part !== undefined || decoding instanceof Error) {
      const err: NodeJS.ErrnoException = new Error(
        part === undefined
          ? `undecodable response (${(decoding as Error).message})`
          : `unasked partial response (${part}; partialResponses: refuse), refused as it could split an echo of the credential`,
      );
      err.code = 'MINTFS_UNDECODABLE';
      controller.abort(err);
      this.#o.failed(err);
      return;
    }
    const decoder = decoding?.input;
    const head = responseHeaders(headers, secrets, decoding !== undefined, whole);
    // A trailers-only gRPC answer (its status in the head): relayed with the
    // status as trailers, which is what gRPC clients read after the head.
    if (
      isGrpc(headers['content-type']) &&
      isHttp2Response(res) &&
      head['grpc-status'] !== undefined
    ) {
      const moved: Record<string, string> = {};
      for (const name of ['grpc-status', 'grpc-message', 'grpc-status-details-bin'])
        if (head[name] !== undefined) {
          moved[name] = String(head[name]);
          delete head[name];
        }
      res.addTrailers(moved);
    }
    res.writeHead(statusCode, head);
    const length = Number(headers['content-length'] ?? NaN);
    if (!decoder && length <= SMALL_BODY_BYTES && !isGrpc(headers['content-type'])) {
      this.#chunks = [];
      return;
    }
    // .pipe() rather than pipeline(): pipeline's abort signals cost more than
    // the rest of a small request. Every stage's error cuts the response.
    // gRPC: redacted message by message, so a streaming call is never held back.
    const grpc = decoder === undefined && isGrpc(headers['content-type']);
    const redact = grpc
      ? new GrpcRedactStream(secrets, GRPC_MAX_MESSAGE_BYTES, this.#o.countOut)
      : new RedactStream(secrets, this.#o.countOut);
    redact.on('error', () => res.destroy());
    redact.pipe(res);
    if (decoding) {
      for (const stage of decoding.stages)
        stage.on('error', () => {
          res.destroy();
          controller.abort(new Error('undecodable upstream body'));
        });
      decoding.output.pipe(redact);
    }
    this.#sink = decoder ?? redact;
    // Backpressure: a slow client pauses the upstream.
    res.on('drain', () => this.#resume(controller));
  }

  #pause(controller: Dispatcher.DispatchController): void {
    controller.pause();
    this.#stall ??= setTimeout(() => this.#o.res.destroy(), this.#o.stallTimeoutMs).unref();
  }

  #resume(controller: Dispatcher.DispatchController): void {
    clearTimeout(this.#stall);
    this.#stall = undefined;
    controller.resume();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#chunks) {
      this.#chunks.push(chunk);
      return;
    }
    if (this.#sink && !this.#sink.write(chunk)) {
      this.#pause(controller);
      this.#sink.once('drain', () => this.#resume(controller));
    }
  }

  onResponseEnd(
    _controller?: Dispatcher.DispatchController,
    trailers?: Record<string, string | string[] | undefined>,
  ): void {
    const { res } = this.#o;
    // Trailers (gRPC's status and message) reach an HTTP/2 client, masked like headers.
    if (trailers !== undefined && Object.keys(trailers).length > 0 && isHttp2Response(res))
      res.addTrailers(responseHeaders(trailers, this.#o.secrets, false, false));
    if (this.#chunks) {
      const chunks = this.#chunks;
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      maskSecrets(body, this.#o.secretBytes);
      this.#o.countOut(body.length);
      res.end(body);
      return;
    }
    this.#sink?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const { res } = this.#o;
    if (this.#clientGone) return;
    // Before the head: an error answer. After it: a cut response, never a silently short one.
    if (!res.headersSent) this.#o.failed(err);
    else res.destroy();
  }
}

/** A gRPC response (its messages are length-prefixed: GrpcRedactStream). */
function isGrpc(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && contentType.startsWith('application/grpc');
}

/** Largest gRPC message relayed (gRPC's own default limit is 4 MiB). */
const GRPC_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** An HTTP/2 client's response (the compatibility API's), which can carry trailers. */
function isHttp2Response(res: ServerResponse): boolean {
  return 'stream' in res;
}

function responseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  secrets: readonly string[],
  decoded: boolean,
  wholeOnly: boolean,
): OutgoingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (const name of Object.keys(upstream)) {
    const value = upstream[name];
    if (value === undefined || DROPPED_RESPONSE_HEADERS.has(name)) continue;
    if (decoded && (name === 'content-encoding' || name === 'content-length')) continue;
    // True through the gateway (RFC 9110 14.3): clients that resume or
    // fetch in parts learn it here rather than from a refusal.
    if (wholeOnly && name === 'accept-ranges') {
      headers[name] = 'none';
      continue;
    }
    headers[name] = Array.isArray(value)
      ? value.map((v) => redactText(v, secrets))
      : redactText(value, secrets);
  }
  return headers;
}
