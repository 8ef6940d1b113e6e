/**
 * HTTP/2 to an upstream (`upstreams.X.http2: true`), with node:http2 rather
 * than undici: undici 7's HTTP/2 client completes a response at the
 * stream's end without its trailers, and gRPC's status is in the trailers.
 * It speaks the part of undici's Dispatcher the gateway uses (dispatch with
 * a DispatchHandler, close, destroy), over one session per upstream,
 * reopened when it ends.
 */
import {
  connect,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

export interface Http2UpstreamOptions {
  readonly ca?: string[] | undefined;
}

type Headers = Record<string, string | string[] | undefined>;

export class Http2Upstream {
  readonly #origin: string;
  readonly #options: Http2UpstreamOptions;
  #session: ClientHttp2Session | undefined;
  #closed = false;

  constructor(origin: string, options: Http2UpstreamOptions) {
    this.#origin = origin;
    this.#options = options;
  }

  #current(): ClientHttp2Session {
    const live = this.#session;
    if (live !== undefined && !live.closed && !live.destroyed) return live;
    const session = connect(
      this.#origin,
      this.#options.ca === undefined ? {} : { ca: this.#options.ca },
    );
    session.on('error', () => session.destroy());
    session.on('goaway', () => {
      if (this.#session === session) this.#session = undefined;
    });
    session.on('close', () => {
      if (this.#session === session) this.#session = undefined;
    });
    // Idle sessions do not hold the gateway open.
    session.unref();
    this.#session = session;
    return session;
  }

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    let stream: ClientHttp2Stream | undefined;
    let settled = false;
    const controller = {
      aborted: false,
      paused: false,
      reason: null as Error | null,
      rawHeaders: undefined,
      rawTrailers: undefined,
      abort: (reason: Error) => fail(reason),
      pause: () => {
        controller.paused = true;
        stream?.pause();
      },
      resume: () => {
        controller.paused = false;
        stream?.resume();
      },
    } as unknown as Dispatcher.DispatchController & { aborted: boolean; paused: boolean };
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      (controller as { aborted: boolean }).aborted = true;
      stream?.close(constants.NGHTTP2_CANCEL);
      handler.onResponseError?.(controller, err);
    };
    handler.onRequestStart?.(controller, {});
    if (settled) return true;
    if (this.#closed || (options.upgrade !== undefined && options.upgrade !== null)) {
      fail(
        new Error(
          this.#closed ? 'upstream closed' : 'upgrades are not carried over HTTP/2 upstreams',
        ),
      );
      return true;
    }
    const given = (options.headers ?? {}) as OutgoingHttpHeaders;
    const headers: OutgoingHttpHeaders = {
      ':method': options.method,
      ':path': options.path,
      ':authority': String(given.host ?? new URL(this.#origin).host),
    };
    for (const [name, value] of Object.entries(given)) if (name !== 'host') headers[name] = value;
    // gRPC servers expect TE: trailers (the one TE HTTP/2 allows), which the gateway drops as hop-by-hop.
    if (String(given['content-type'] ?? '').startsWith('application/grpc')) headers.te = 'trailers';
    const body = options.body as Readable | null | undefined;
    try {
      stream = this.#current().request(headers, { endStream: body === null || body === undefined });
    } catch (err) {
      fail(err instanceof Error ? err : new Error(String(err)));
      return true;
    }
    const timeout = Number(options.headersTimeout ?? 0);
    let responded = false;
    if (timeout > 0)
      stream.setTimeout(timeout, () => {
        const err: NodeJS.ErrnoException = new Error(
          responded ? 'upstream went silent' : 'no response head',
        );
        err.code = responded ? 'UND_ERR_BODY_TIMEOUT' : 'UND_ERR_HEADERS_TIMEOUT';
        fail(err);
      });
    let trailers: Headers = {};
    stream.on('response', (head: IncomingHttpHeaders) => {
      responded = true;
      const status = Number(head[':status']);
      const plain: Headers = {};
      for (const [name, value] of Object.entries(head))
        if (!name.startsWith(':')) plain[name] = value;
      handler.onResponseStart?.(controller, status, plain, '');
    });
    stream.on('data', (chunk: Buffer) => {
      if (!settled) handler.onResponseData?.(controller, chunk);
    });
    stream.on('trailers', (received: IncomingHttpHeaders) => {
      trailers = received;
    });
    stream.on('end', () => {
      if (settled) return;
      settled = true;
      handler.onResponseEnd?.(controller, trailers);
    });
    stream.on('error', (err: Error) => fail(err));
    stream.on('close', () => {
      if (!settled) fail(new Error(`upstream reset the stream (code ${stream?.rstCode ?? 0})`));
    });
    if (body !== null && body !== undefined) {
      body.on('error', (err: Error) => fail(err));
      body.pipe(stream);
    }
    return true;
  }

  close(): Promise<void> {
    this.#closed = true;
    const session = this.#session;
    if (session === undefined || session.closed) return Promise.resolve();
    return new Promise((resolve) => session.close(() => resolve()));
  }

  destroy(): Promise<void> {
    this.#closed = true;
    this.#session?.destroy();
    return Promise.resolve();
  }
}
