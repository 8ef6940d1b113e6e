/**
 * One request through the gateway: route, find the token, verify it against
 * the request as the upstream will see it, swap the token for the real
 * credential, stream both ways, redact any echo of the credential, and log
 * one audit line. A refused request never reaches the upstream.
 */
import type {
  Agent as HttpAgent,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform, type TransformCallback } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { MintfsErrorCode } from '../errors.js';
import type { Keyring } from '../keys/keyring.js';
import type { Logger } from '../log/logger.js';
import type { RevocationList } from '../revocation/revocations.js';
import { authorizeRequest, checkRevocation } from '../token/verify.js';
import type { Limits } from './config.js';
import type { CredentialStore } from './credentials.js';
import type { Deadlines } from './deadlines.js';
import { sendError } from './http-errors.js';
import { RedactStream, maskSecrets, redactText } from './redact.js';
import { routeRequest, type Route } from './route.js';
import { extractToken } from './token-extract.js';
import type { VerificationCache } from './verify-cache.js';
import type { GatewayConfig } from './config.js';

// Hop-by-hop headers (RFC 9110 7.6.1) never cross the gateway.
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];
const DROPPED_RESPONSE_HEADERS = new Set(HOP_BY_HOP);
// Nor do the agent's own authorization, its Host, and its encoding wishes (see upstreamHeaders).
const DROPPED_REQUEST_HEADERS = new Set([
  ...HOP_BY_HOP,
  'authorization',
  'proxy-authorization',
  'host',
  'accept-encoding',
]);

/** Responses up to this size with a Content-Length are redacted in one piece. */
const SMALL_BODY_BYTES = 64 * 1024;

export interface ProxyDeps {
  readonly config: GatewayConfig;
  readonly credentials: CredentialStore;
  readonly keyring: () => Keyring;
  /** Reloads the keyring if a key with this id has appeared on disk since the last load. */
  readonly reloadKeyringFor: (keyId: string | undefined) => boolean;
  readonly revocations: () => RevocationList;
  readonly cache: VerificationCache;
  readonly agents: ReadonlyMap<string, HttpAgent>;
  readonly deadlines: Deadlines;
  readonly logger: Logger;
  readonly clock: () => Date;
}

interface Audit {
  mode?: Route['mode'] | undefined;
  service?: string;
  agent?: string | undefined;
  tokenId?: string | undefined;
  path?: string;
  code?: MintfsErrorCode;
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
      deps.logger.info(
        {
          event: 'request',
          mode: audit.mode,
          agent: audit.agent,
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

    const route = routeRequest(req.url ?? '', deps.config.upstreams);
    if (!route.ok) return refuse(route.code, route.message);
    audit.mode = route.mode;
    audit.service = route.service;
    audit.path = route.upstreamPath;

    const found = extractToken(req.headers);
    if (!found)
      return refuse(
        'ERR_TOKEN_MISSING',
        'send a mintfs token as Authorization: Bearer <token> (or Basic password)',
      );
    const now = deps.clock();
    let authenticated = deps.cache.authenticate(found.token, deps.keyring(), now);
    // Signed by a key rotated in since our last poll: pick it up now rather than refuse.
    if (
      'allowed' in authenticated &&
      authenticated.code === 'ERR_KEY_UNKNOWN' &&
      deps.reloadKeyringFor(authenticated.keyId)
    )
      authenticated = deps.cache.authenticate(found.token, deps.keyring(), now);
    if ('allowed' in authenticated) {
      audit.tokenId = authenticated.tokenId;
      audit.agent = authenticated.agent;
      return refuse(authenticated.code, authenticated.reason);
    }
    audit.tokenId = authenticated.tokenId;
    audit.agent = authenticated.agent;
    const revoked = checkRevocation(authenticated, deps.revocations(), now);
    if (revoked) return refuse(revoked.code, revoked.reason);
    const verdict = authorizeRequest(
      authenticated,
      {
        service: route.service,
        host: route.upstream.url.hostname,
        method: req.method ?? '',
        rawPath: route.upstreamPath,
      },
      now,
    );
    if (!verdict.allowed) {
      const caveat = verdict.caveat === undefined ? '' : ` (caveat "${verdict.caveat}")`;
      return refuse(verdict.code, `${verdict.reason}${caveat}`);
    }

    const limits = deps.config.limits;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limits.maxBodyBytes)
      return refuse('ERR_BODY_TOO_LARGE', `request body is over ${limits.maxBodyBytes} bytes`);

    forward(req, res, route, deps, audit, limits);
  };
}

function forward(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  deps: ProxyDeps,
  audit: Audit,
  limits: Limits,
): void {
  const upstreamUrl = route.upstream.url;
  const credential = deps.credentials.current(route.service);
  const headers = upstreamHeaders(req, route, credential.value);
  // Captured with the credential injected, so a rotation mid-response still masks it.
  const secrets = deps.credentials.secretsFor(route.service);
  const secretBytes = deps.credentials.secretBytesFor(route.service);
  const send = upstreamUrl.protocol === 'https:' ? httpsRequest : httpRequest;
  const upstreamReq = send({
    protocol: upstreamUrl.protocol,
    hostname: upstreamUrl.hostname.replace(/^\[|\]$/g, ''),
    port: upstreamUrl.port || (upstreamUrl.protocol === 'https:' ? 443 : 80),
    method: req.method,
    path: `${route.upstreamPath}${route.query}`,
    headers,
    agent: deps.agents.get(route.service),
    servername: upstreamUrl.hostname,
  });

  let failed = false;
  const fail = (code: MintfsErrorCode, message: string) => {
    if (failed) return;
    failed = true;
    audit.code = code;
    upstreamReq.destroy();
    sendError(res, code, message);
  };

  const untrack = deps.deadlines.track(() =>
    fail(
      'ERR_UPSTREAM_TIMEOUT',
      `upstream ${route.service} did not answer in ${limits.upstreamTimeout} ms`,
    ),
  );
  upstreamReq.once('response', untrack);
  upstreamReq.once('close', untrack);
  upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
    fail(
      'ERR_UPSTREAM_UNREACHABLE',
      `upstream ${route.service} failed: ${err.code ?? err.message}`,
    );
  });
  // The client went away: stop the upstream work too.
  res.once('close', () => {
    if (!res.writableFinished) upstreamReq.destroy();
  });

  upstreamReq.on('response', (upstreamRes) => {
    upstreamRes.on('error', () => res.destroy());
    const decoder = decoderFor(upstreamRes.headers['content-encoding']);
    res.writeHead(
      upstreamRes.statusCode ?? 502,
      responseHeaders(upstreamRes, secrets, decoder !== undefined),
    );
    const length = Number(upstreamRes.headers['content-length'] ?? NaN);
    if (!decoder && length <= SMALL_BODY_BYTES) {
      // Small bodies of known length (most API answers): collect, mask, send in one write.
      const chunks: Buffer[] = [];
      upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
      upstreamRes.on('end', () => {
        const body = Buffer.concat(chunks);
        maskSecrets(body, secretBytes);
        audit.bytesOut += body.length;
        res.end(body);
      });
      return;
    }
    // .pipe() rather than pipeline(): pipeline's abort signals cost more than
    // the rest of a small request. Every stage's error cuts the response.
    const redact = new RedactStream(secrets, (n) => (audit.bytesOut += n));
    const source = decoder ? upstreamRes.pipe(decoder) : upstreamRes;
    decoder?.on('error', () => res.destroy());
    redact.on('error', () => res.destroy());
    source.pipe(redact).pipe(res);
  });

  if (!hasBody(req)) {
    // Nothing to stream: send the request now, without a body pipeline.
    req.resume();
    upstreamReq.end();
    return;
  }
  const limiter = limited(limits.maxBodyBytes, (n) => (audit.bytesIn += n));
  limiter.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_BODY_TOO_LARGE_MINTFS')
      fail('ERR_BODY_TOO_LARGE', `request body is over ${limits.maxBodyBytes} bytes`);
    else fail('ERR_REQUEST_INVALID', 'the request body could not be read');
  });
  req.on('error', () => fail('ERR_REQUEST_INVALID', 'the request body was cut short'));
  req.pipe(limiter).pipe(upstreamReq);
}

/** A request without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3). */
function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

function upstreamHeaders(
  req: IncomingMessage,
  route: Route,
  credential: string,
): OutgoingHttpHeaders {
  const raw = req.rawHeaders;
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
    if (DROPPED_REQUEST_HEADERS.has(name) || connectionListed.has(name) || name === inject.header)
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
  headers[inject.header] = inject.template.replace('{credential}', credential);
  if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
  return headers;
}

function responseHeaders(
  res: IncomingMessage,
  secrets: readonly string[],
  decoded: boolean,
): OutgoingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (DROPPED_RESPONSE_HEADERS.has(name)) continue;
    if (decoded && (name === 'content-encoding' || name === 'content-length')) continue;
    const value = redactText(raw[i + 1] as string, secrets);
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else headers[name] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return headers;
}

/**
 * An upstream may compress despite `accept-encoding: identity`; decode it so
 * the redaction sees the real bytes (fail closed: never pass through an
 * encoding we could not search).
 */
function decoderFor(encoding: string | string[] | undefined): Transform | undefined {
  const value = String(encoding ?? '')
    .trim()
    .toLowerCase();
  if (value === '' || value === 'identity') return undefined;
  if (value === 'gzip' || value === 'x-gzip') return createGunzip();
  if (value === 'deflate') return createInflate();
  if (value === 'br') return createBrotliDecompress();
  return new Transform({
    transform(_chunk, _enc, done) {
      done(new Error(`unsupported content-encoding ${value}`));
    },
  });
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
