/**
 * One request through the gateway: route, find the token, verify it against
 * the request as the upstream will see it, swap the token for the real
 * credential, stream both ways, redact any echo of the credential, and log
 * one audit line. A refused request never reaches the upstream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as http2Constants, type Http2ServerRequest } from 'node:http2';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import { MintfsError, type MintfsErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { HttpMethod } from '../token/vocabulary.js';
import type { Limits } from './config.js';
import type { Credential, CredentialStore } from './credentials.js';
import type { TokenScope } from '../credentials/source.js';
import { sendError } from './http-errors.js';
import { HOP_BY_HOP, UpstreamExchange } from './upstream-exchange.js';
import { overrideProblem } from './request-overrides.js';
import { bodyOverrideScanner } from './body-overrides.js';
import { partialRequestProblem } from './partial-responses.js';
import { routeIntercepted, routeRequest, type Route } from './route.js';
import { tunnelHostOf } from './tunnel.js';
import { http2TunnelHost, isHttp2 } from './http2.js';
import { extractToken } from './token-extract.js';
import { announcedGitRequest } from './git-smart-http.js';
import { injectedValue, maskedFor } from './inject.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { UseCounter } from '../state/use-counter.js';
import type { Verifier } from '../verifier/verifier.js';
import type { AuthenticatedToken, VerifyRequest } from '../token/verify.js';
import { websocketRequestProblem } from '../websocket/handshake.js';
import type { GatewayConfig } from './config.js';

// Nor do the agent's own authorization, its Host, and its encoding wishes (see upstreamHeaders).
const DROPPED_REQUEST_HEADERS = new Set([
  ...HOP_BY_HOP,
  'authorization',
  'proxy-authorization',
  'host',
  'accept-encoding',
  // gRPC's own compression: never asked for, so every message can be redacted.
  'grpc-accept-encoding',
  // Node's server already answered `Expect: 100-continue`; the upstream gets the body at once.
  'expect',
]);

/**
 * What the config file decides, swapped whole on a reload (SIGHUP or an
 * edit): a request uses the runtime it started with from first to last.
 */
export interface GatewayRuntime {
  readonly config: GatewayConfig;
  readonly credentials: CredentialStore;
  /** One connection pool per upstream (undici: about a third cheaper per request than node:http). */
  readonly pools: ReadonlyMap<string, Dispatcher>;
}

export interface ProxyDeps {
  readonly runtime: () => GatewayRuntime;
  /** The verification pipeline (with the gateway's cache and the watched keyring and revocations). */
  readonly verifier: Verifier;
  readonly logger: Logger;
  readonly clock: () => Date;
  /** Requests in flight per agent (or per token without an agent caveat). */
  readonly inFlight: Map<string, number>;
  /** Counts the uses of tokens with a use budget (`uses` caveat). */
  readonly useCounter: UseCounter;
  /** Why no token can be judged now (shared revocations unknown or stale), or undefined. */
  readonly stateProblem: (now: Date) => string | undefined;
  readonly metrics?: GatewayMetrics | undefined;
}

export interface Audit {
  mode?: Route['mode'] | undefined;
  service?: string;
  agent?: string | undefined;
  reader?: string | undefined;
  tokenId?: string | undefined;
  path?: string;
  code?: MintfsErrorCode;
  /** Whether the request was sent upstream (a failure after that is not a refusal). */
  forwarded?: boolean;
  /** When it was sent upstream (process.hrtime.bigint()). */
  sentAt?: bigint;
  bytesIn: number;
  bytesOut: number;
}

export function createProxyHandler(
  deps: ProxyDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = process.hrtime.bigint();
    const audit: Audit = { bytesIn: 0, bytesOut: 0 };
    res.once('close', () => {
      deps.metrics?.request(
        audit.code,
        audit.forwarded === true,
        Number(process.hrtime.bigint() - started) / 1e9,
      );
      deps.logger.info(
        {
          event: 'request',
          mode: audit.mode,
          agent: audit.agent,
          ...(audit.reader === undefined ? {} : { reader: audit.reader }),
          tokenId: audit.tokenId,
          service: audit.service,
          method: req.method,
          path: audit.path,
          status: res.headersSent ? res.statusCode : undefined,
          ...(audit.code === undefined ? {} : { error: audit.code }),
          completed: res.writableFinished,
          bytesIn: audit.bytesIn,
          bytesOut: audit.bytesOut,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'gateway request',
      );
    });
    const refuse = (code: MintfsErrorCode, message: string) => {
      audit.code = code;
      // Unread request bodies are drained, not piped anywhere.
      req.resume();
      sendError(res, code, message);
    };

    admit(
      deps,
      req,
      audit,
      refuse,
      'request',
      (release) => res.once('close', release),
      (a) => forward(req, res, a.route, a.runtime, audit, a.limits, deps.metrics, a.token),
    );
  };
}

/** What the pipeline decided about a request it let through. */
export interface Admitted {
  readonly route: Route;
  readonly runtime: GatewayRuntime;
  readonly limits: Limits;
  /** The token's text, as verified (its prefix stripped): live sockets judge it again. */
  readonly tokenText: string;
  /** What was judged: a live socket asks the verifier the same question again later. */
  readonly judged: VerifyRequest;
  readonly token: AuthenticatedToken | undefined;
  readonly owner: string;
}

/**
 * The pipeline every request and every WebSocket handshake goes through:
 * route, overrides, token, state, caveats (and git's announced request),
 * size, the agent's concurrency (held until \`hold\`'s release is called)
 * and its use budget. `refuse` is called at most once, `proceed` only when
 * nothing refused.
 */
export function admit(
  deps: ProxyDeps,
  req: IncomingMessage,
  audit: Audit,
  refuse: (code: MintfsErrorCode, message: string) => void,
  kind: 'request' | 'websocket',
  hold: (release: () => void) => void,
  proceed: (admitted: Admitted) => void,
): void {
  const runtime = deps.runtime();
  const h2 = isHttp2(req);
  const tunnelHost = h2 ? http2TunnelHost(req) : tunnelHostOf(req.socket);
  // HTTP/2 is only spoken inside tunnels: a stream without one is refused, never reverse-routed.
  if (h2 && tunnelHost === undefined)
    return refuse('ERR_REQUEST_INVALID', 'HTTP/2 is only served inside intercepted tunnels');
  // HTTP/2 names the host in :authority; a Host field beside it must agree (RFC 9113 8.3.1).
  const authority = h2 ? req.headers[':authority'] : req.headers.host;
  if (h2 && req.headers.host !== undefined && req.headers.host !== authority)
    return refuse('ERR_HOST_MISMATCH', 'Host and :authority name different hosts');
  const route =
    tunnelHost === undefined
      ? routeRequest(req.url ?? '', runtime.config.upstreams)
      : routeIntercepted(
          tunnelHost,
          req.url ?? '',
          typeof authority === 'string' ? authority : undefined,
          runtime.config.upstreams,
        );
  if (!route.ok) return refuse(route.code, route.message);
  // Pseudo-headers (HTTP/2) are the request line's parts, judged as such, never forwarded.
  const fields = fieldLines(req);
  audit.mode = route.mode;
  audit.service = route.service;
  audit.path = route.upstreamPath;
  // The token's header and the injected one are never forwarded (upstreamHeaders).
  const override = overrideProblem(fields, route.query, [
    route.upstream.inject.header,
    route.upstream.tokenHeader,
  ]);
  if (override !== undefined) return refuse('ERR_REQUEST_INVALID', override);
  const part = partialRequestProblem(fields, route.service, route.upstream);
  if (part !== undefined) return refuse('ERR_REQUEST_INVALID', part);
  const method = req.method ?? '';
  if (kind === 'websocket') {
    const problem = websocketRequestProblem(req, route.upstream, route.service);
    if (problem !== undefined) return refuse(problem.code, problem.message);
  } else {
    if (hasBody(req) && !route.upstream.bodyMethods.includes(method as HttpMethod))
      return refuse(
        'ERR_REQUEST_INVALID',
        `a ${method} request may not carry a body here (upstreams.${route.service}.bodyMethods)`,
      );
    // A protocol switch other than a WebSocket handshake (which Node hands to
    // the upgrade handler) would carry bytes no caveat judged: refused.
    if (req.headers.upgrade !== undefined)
      return refuse(
        'ERR_REQUEST_INVALID',
        `protocol upgrades (${String(req.headers.upgrade).slice(0, 40)}) are not supported through the gateway; a WebSocket handshake needs Connection: Upgrade`,
      );
  }
  const found = extractToken(req.headers, route.upstream);
  if (!found)
    return refuse(
      'ERR_TOKEN_MISSING',
      `send a mintfs token as Authorization: Bearer <token> (or Basic password)${route.upstream.tokenHeader === undefined ? '' : ` or in ${route.upstream.tokenHeader}`}`,
    );
  const now = deps.clock();
  const stale = deps.stateProblem(now);
  if (stale !== undefined) return refuse('ERR_STATE_UNAVAILABLE', stale);
  const judged: VerifyRequest = {
    service: route.service,
    host: route.host,
    method,
    rawPath: route.upstreamPath,
    pathSegments: route.upstreamSegments,
  };
  const { verdict, token: authenticated } = deps.verifier.check(found.token, judged, now);
  audit.tokenId = verdict.tokenId;
  audit.agent = verdict.agent;
  audit.reader = authenticated?.reader;
  if (!verdict.allowed) {
    const caveat = verdict.caveat === undefined ? '' : ` (caveat "${verdict.caveat}")`;
    return refuse(verdict.code, `${verdict.reason}${caveat}`);
  }
  const announced = announcedGitRequest(
    method,
    route.upstreamPath,
    route.upstreamSegments,
    route.query,
  );
  if (announced !== undefined) {
    const { verdict: then } = deps.verifier.check(
      found.token,
      {
        service: route.service,
        host: route.host,
        method: announced.method,
        rawPath: announced.rawPath,
        pathSegments: announced.pathSegments,
      },
      now,
    );
    if (!then.allowed) {
      const caveat = then.caveat === undefined ? '' : ` (caveat "${then.caveat}")`;
      const action = announced.service === 'git-receive-pack' ? 'push to' : 'fetch from';
      return refuse(
        then.code,
        `this token cannot ${action} this repository (POST ${announced.rawPath}): ${then.reason}${caveat}`,
      );
    }
  }

  const limits = runtime.config.limits;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limits.maxBodyBytes)
    return refuse('ERR_BODY_TOO_LARGE', `request body is over ${limits.maxBodyBytes} bytes`);

  // One agent's requests in flight (and open WebSockets) are capped, so it
  // cannot hold every upstream connection (a trickled body holds one for minutes).
  const owner = verdict.agent ?? `token:${verdict.tokenId ?? ''}`;
  const inFlight = deps.inFlight.get(owner) ?? 0;
  if (inFlight >= limits.agentConcurrency)
    return refuse(
      'ERR_TOO_MANY_REQUESTS',
      `agent ${owner} already has ${inFlight} requests in flight or WebSockets open (limits.agentConcurrency)`,
    );
  deps.inFlight.set(owner, inFlight + 1);
  let released = false;
  hold(() => {
    if (released) return;
    released = true;
    const left = (deps.inFlight.get(owner) ?? 1) - 1;
    if (left <= 0) deps.inFlight.delete(owner);
    else deps.inFlight.set(owner, left);
  });

  const admitted: Admitted = {
    route,
    runtime,
    limits,
    tokenText: found.token,
    judged,
    token: authenticated,
    owner,
  };
  const budget = authenticated?.uses;
  if (budget === undefined || authenticated === undefined) return proceed(admitted);
  // The last check, so a request refused for anything else spends nothing.
  void deps.useCounter
    .spend(authenticated.tokenId, budget, authenticated.mintedExpiresAt, now)
    .then((spent) => {
      deps.metrics?.budget(spent.ok ? 'ok' : spent.reason);
      // The client may have gone while the use was counted: nothing to forward for.
      if (req.socket.destroyed) return;
      if (spent.ok) return proceed(admitted);
      if (spent.reason === 'spent')
        return refuse(
          'ERR_TOKEN_USES_SPENT',
          `token ${authenticated.tokenId} has made its ${budget} ${budget === 1 ? 'request' : 'requests'} (caveat "uses ${budget}")`,
        );
      return refuse(
        'ERR_STATE_UNAVAILABLE',
        `the use budget of token ${authenticated.tokenId} cannot be counted (${spent.detail}); refused rather than risk spending it twice`,
      );
    });
}

function forward(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  runtime: GatewayRuntime,
  audit: Audit,
  limits: Limits,
  metrics: GatewayMetrics | undefined,
  token: TokenScope | undefined,
): void {
  const pool = runtime.pools.get(route.service);
  if (!pool) return void sendError(res, 'ERR_SERVICE_UNKNOWN', `no upstream ${route.service}`);
  let credential: Credential | Promise<Credential>;
  try {
    credential = runtime.credentials.obtain(route.service, audit.agent, token);
  } catch (err) {
    return void refuseWith(req, res, audit, err);
  }
  // A minted credential not cached yet: the request waits for its mint (the body stays unread).
  if (credential instanceof Promise)
    return void credential.then(
      (minted) => {
        if (!res.destroyed) send(req, res, route, audit, limits, metrics, pool, minted);
      },
      (err: unknown) => refuseWith(req, res, audit, err),
    );
  send(req, res, route, audit, limits, metrics, pool, credential);
}

/** A refusal from the credential pipeline: its code when it has one, never its stack. */
function refuseWith(req: IncomingMessage, res: ServerResponse, audit: Audit, err: unknown): void {
  const known = err instanceof MintfsError;
  audit.code = known ? err.code : 'ERR_CREDENTIAL_UNAVAILABLE';
  // The client may have gone while the credential was minted: nobody to answer.
  if (res.destroyed) return;
  req.resume();
  sendError(res, audit.code, known ? err.message : 'the upstream credential is unavailable');
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  audit: Audit,
  limits: Limits,
  metrics: GatewayMetrics | undefined,
  pool: Dispatcher,
  credential: Credential,
): void {
  const headers = upstreamHeaders(req, route, credential.value);
  const masked = maskedFor(route.upstream.inject, credential);

  let failed = false;
  const fail = (code: MintfsErrorCode, message: string) => {
    if (failed) return;
    failed = true;
    audit.code = code;
    exchange.abort(new Error(message));
    sendError(res, code, message);
  };
  const exchange = new UpstreamExchange({
    res,
    // Captured with the credential injected, so a rotation mid-response still masks it.
    secrets: masked.secrets,
    secretBytes: masked.secretBytes,
    wholeResponsesOnly: route.upstream.partialResponses === 'refuse',
    countOut: (n) => (audit.bytesOut += n),
    // A client that stops reading is held to the same bound as an upstream that stops sending.
    stallTimeoutMs: limits.upstreamTimeout,
    responded: () => {
      if (audit.sentAt !== undefined)
        metrics?.upstream(route.service, Number(process.hrtime.bigint() - audit.sentAt) / 1e9);
    },
    failed: (err) => {
      const code = (err as { code?: string }).code;
      if (code === 'MINTFS_UNDECODABLE')
        fail('ERR_UPSTREAM_UNREACHABLE', `upstream ${route.service} sent an ${err.message}`);
      else if (code === 'UND_ERR_HEADERS_TIMEOUT')
        fail(
          'ERR_UPSTREAM_TIMEOUT',
          `upstream ${route.service} did not answer in ${limits.upstreamTimeout} ms`,
        );
      else
        fail(
          'ERR_UPSTREAM_UNREACHABLE',
          `upstream ${route.service} failed: ${upstreamErrorName(err)}`,
        );
    },
  });

  let body: Readable | null = null;
  if (hasBody(req)) {
    // A body that goes quiet is cut, and the connection with it (its framing is lost).
    const idle = setTimeout(() => {
      fail('ERR_REQUEST_TIMEOUT', `the request body sent nothing for ${limits.bodyIdleTimeout} ms`);
      res.shouldKeepAlive = false;
      if (res.writableFinished) cutClient(req);
      else res.once('finish', () => cutClient(req));
    }, limits.bodyIdleTimeout);
    req.once('end', () => clearTimeout(idle));
    res.once('close', () => clearTimeout(idle));
    const limiter = limited(limits.maxBodyBytes, (n) => {
      audit.bytesIn += n;
      idle.refresh();
    });
    limiter.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_BODY_TOO_LARGE_MINTFS')
        fail('ERR_BODY_TOO_LARGE', `request body is over ${limits.maxBodyBytes} bytes`);
      else fail('ERR_REQUEST_INVALID', 'the request body could not be read');
    });
    req.on('error', () => fail('ERR_REQUEST_INVALID', 'the request body was cut short'));
    body = req.pipe(limiter);
    // A `_method` field in a form or JSON body: refused before the upstream has the whole body.
    const scanner = bodyOverrideScanner(req.headers['content-type']);
    if (scanner !== undefined) {
      scanner.on('error', (err) => fail('ERR_REQUEST_INVALID', err.message));
      body = body.pipe(scanner);
    }
  } else {
    // Nothing to stream: drain the (empty) request and send at once.
    req.resume();
  }

  audit.forwarded = true;
  audit.sentAt = process.hrtime.bigint();
  pool.dispatch(
    {
      path: `${route.upstreamPath}${route.query}`,
      method: req.method ?? 'GET',
      headers,
      body,
      // Time to the response head, and between body chunks: a stalled upstream is cut.
      headersTimeout: limits.upstreamTimeout,
      bodyTimeout: limits.upstreamTimeout,
    },
    exchange,
  );
}

/** The errno-style name of a connection failure (ECONNREFUSED), never a stack. */
export function upstreamErrorName(err: unknown): string {
  const cause = (err as { cause?: { code?: string } }).cause;
  const code = (err as { code?: string }).code;
  return cause?.code ?? code ?? (err instanceof Error ? err.message : String(err));
}

/**
 * A request without Content-Length or Transfer-Encoding has no body (RFC
 * 9112 6.3); an HTTP/2 one has none when its HEADERS ended the stream.
 */
function hasBody(req: IncomingMessage): boolean {
  if (isHttp2(req)) return !(req as unknown as Http2ServerRequest).stream.endAfterHeaders;
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

export function upstreamHeaders(
  req: IncomingMessage,
  route: Route,
  credential: string,
): Record<string, string | string[]> {
  const raw = fieldLines(req);
  const connectionListed = new Set(
    String(req.headers.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const inject = route.upstream.inject;
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (
      DROPPED_REQUEST_HEADERS.has(name) ||
      connectionListed.has(name) ||
      name === inject.header ||
      name === route.upstream.tokenHeader
    )
      continue;
    const value = raw[i + 1] as string;
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else headers[name] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  headers.host = route.upstream.url.host;
  // Identity encoding keeps the response body readable for credential redaction.
  headers['accept-encoding'] = 'identity';
  // Replaced, never merged: the client's own header of this name is dropped above.
  headers[inject.header] = injectedValue(inject, credential);
  // A body without Content-Length is sent chunked by the client library.
  return headers;
}

/** The request's header fields as name, value pairs, without HTTP/2's pseudo-headers. */
function fieldLines(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  if (!isHttp2(req)) return raw;
  const fields: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2)
    if (!(raw[i] as string).startsWith(':')) fields.push(raw[i] as string, raw[i + 1] as string);
  return fields;
}

/** Ends the client's connection (HTTP/1.1: its framing is lost) or, on HTTP/2, just its stream. */
function cutClient(req: IncomingMessage): void {
  if (isHttp2(req))
    (req as unknown as Http2ServerRequest).stream.close(http2Constants.NGHTTP2_CANCEL);
  else req.socket.destroy();
}

function limited(max: number, add: (n: number) => void): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      total += chunk.length;
      add(chunk.length);
      if (total > max) {
        const err: NodeJS.ErrnoException = new Error('request body too large');
        err.code = 'ERR_BODY_TOO_LARGE_MINTFS';
        done(err);
        return;
      }
      done(null, chunk);
    },
  });
}
