/**
 * One request through the gateway: route, find the token, verify it against
 * the request as the upstream will see it, swap the token for the real
 * credential, stream both ways, redact any echo of the credential, and log
 * one audit line. A refused request never reaches the upstream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as http2Constants, type Http2ServerRequest } from 'node:http2';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import { MintfsError, type MintfsErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { HttpMethod } from '../token/vocabulary.js';
import type { Limits } from './config.js';
import type { Credential, CredentialStore } from './credentials.js';
import type { TokenScope } from '../credentials/source.js';
import { sendError } from './http-errors.js';
import {
  awsErrorRenderer,
  ChunkResigner,
  planAwsRequest,
  s3Path,
  scopeFor,
  signUpstream,
  type AwsRequestPlan,
  type SigningScope,
} from '../aws/index.js';
import { HOP_BY_HOP, UpstreamExchange } from './upstream-exchange.js';
import { overrideProblem } from './request-overrides.js';
import { coalesceAfter } from './coalesce-writes.js';
import { bodyOverrideScanner } from './body-overrides.js';
import { partialRequestProblem } from './partial-responses.js';
import { routeIntercepted, routeRequest, type Route } from './route.js';
import { tunnelHostOf } from './tunnel.js';
import { http2TunnelHost, isHttp2 } from './http2.js';
import { extractToken } from './token-extract.js';
import { announcedGitRequest } from './git-smart-http.js';
import { injectedValue, maskedFor, type Masked } from './inject.js';
import { passApprovalGate, type ApprovalGate } from './approval-gate.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { UseCounter } from '../state/use-counter.js';
import type { Verifier } from '../verifier/verifier.js';
import type { AuthenticatedToken, VerifyRequest } from '../token/verify.js';
import { websocketRequestProblem } from '../websocket/handshake.js';
import { logRequestAudit, type Audit } from './audit-line.js';
export type { Audit } from './audit-line.js';
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
  /** The approval service, when `approval:` is configured. */
  readonly approval?: ApprovalGate | undefined;
}

/** What a request to a `sign: sigv4` upstream carries to its signing. */
interface AwsSigning {
  readonly plan: AwsRequestPlan;
  readonly scope: SigningScope;
}

export function createProxyHandler(
  deps: ProxyDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = process.hrtime.bigint();
    const audit: Audit = { bytesIn: 0, bytesOut: 0 };
    res.once('close', () =>
      logRequestAudit(deps, req, audit, started, {
        status: res.headersSent ? res.statusCode : undefined,
        completed: res.writableFinished,
      }),
    );
    const refuse = (code: MintfsErrorCode, message: string) => {
      audit.code = code;
      // Unread request bodies are drained, not piped anywhere.
      req.resume();
      sendError(res, code, message, audit.render);
    };

    admit(
      deps,
      req,
      audit,
      refuse,
      'request',
      (release) => res.once('close', release),
      (a) =>
        forward(req, res, a.route, a.runtime, audit, a.limits, deps, a.token, a.signing, a.held),
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
  /** A `sign: sigv4` upstream's signing plan. */
  readonly signing?: AwsSigning | undefined;
  /** A body read whole while the request waited for an approver. */
  readonly held?: Buffer | undefined;
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
  const routed =
    tunnelHost === undefined
      ? routeRequest(req.url ?? '', runtime.config.upstreams)
      : routeIntercepted(
          tunnelHost,
          req.url ?? '',
          typeof authority === 'string' ? authority : undefined,
          runtime.config.upstreams,
        );
  if (!routed.ok) return refuse(routed.code, routed.message);
  let route: Route = routed;
  // Pseudo-headers (HTTP/2) are the request line's parts, judged as such, never forwarded.
  const fields = fieldLines(req);
  audit.mode = route.mode;
  audit.service = route.service;
  audit.path = route.upstreamPath;
  const sign = route.upstream.sign;
  // The scope of the endpoint the request goes to, as an SDK signs for its endpoint; else
  // the name the agent used (config load checked that one of them names it).
  const scope =
    sign === undefined
      ? undefined
      : (scopeFor(sign, route.upstream.url.hostname) ?? scopeFor(sign, route.host));
  if (scope !== undefined) audit.render = awsErrorRenderer(scope.service, req.headers);
  if (scope?.service === 's3') {
    // S3 keys are judged exactly: `/bucket/x/` is not `/bucket/x` (s3-path.ts).
    const keyed = s3Path(route.upstreamPath);
    if (!keyed.ok) return refuse('ERR_PATH_AMBIGUOUS', `request refused: ${keyed.reason}`);
    route = { ...route, upstreamSegments: keyed.segments };
  }
  // The token's header and the injected one are never forwarded (upstreamHeaders).
  const override = overrideProblem(
    fields,
    route.query,
    scope === undefined
      ? [route.upstream.inject?.header, route.upstream.tokenHeader]
      : ['x-amz-security-token'],
  );
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
  let signing: AwsSigning | undefined;
  if (scope !== undefined) {
    // AWS clients sign with placeholder keys and carry the token as their session token.
    const plan = planAwsRequest(method, req.headers, route.query, scope.service);
    if (!plan.ok) return refuse(plan.code, plan.message);
    signing = { plan, scope };
  }
  const found =
    signing === undefined
      ? extractToken(req.headers, route.upstream)
      : { token: signing.plan.token };
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
  // A request the token reserves for an approver goes on through every
  // other check, then waits for a decision (approval-gate.ts); a WebSocket
  // handshake cannot wait (its frames would follow unjudged): refused.
  const approvals =
    !verdict.allowed && verdict.code === 'ERR_APPROVAL_REQUIRED' && kind === 'request'
      ? verdict.approvals
      : undefined;
  if (!verdict.allowed && (approvals === undefined || deps.approval === undefined)) {
    const caveat = verdict.caveat === undefined ? '' : ` (caveat "${verdict.caveat}")`;
    const service =
      approvals === undefined ? '' : '; this gateway has no approval service (approval:)';
    return refuse(verdict.code, `${verdict.reason}${caveat}${service}`);
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
    // The POST itself will wait for its approver: the discovery need not.
    if (!then.allowed && then.code !== 'ERR_APPROVAL_REQUIRED') {
      const caveat = then.caveat === undefined ? '' : ` (caveat "${then.caveat}")`;
      const action = announced.service === 'git-receive-pack' ? 'push to' : 'fetch from';
      return refuse(
        then.code,
        `this token cannot ${action} this repository (POST ${announced.rawPath}): ${then.reason}${caveat}`,
      );
    }
  }
  // Other resources the request makes the upstream touch (S3's x-amz-copy-source) are judged too.
  for (const extra of signing?.plan.extraChecks ?? []) {
    const { verdict: also } = deps.verifier.check(
      found.token,
      {
        service: route.service,
        host: route.host,
        method: extra.method,
        rawPath: extra.rawPath,
        pathSegments: extra.pathSegments,
      },
      now,
    );
    if (!also.allowed && also.code !== 'ERR_APPROVAL_REQUIRED') {
      const caveat = also.caveat === undefined ? '' : ` (caveat "${also.caveat}")`;
      return refuse(
        also.code,
        `${extra.why} asks for ${extra.method} ${extra.rawPath.slice(0, 256)}, which this token cannot do: ${also.reason}${caveat}`,
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
    signing,
  };
  const spendAndProceed = (held: Buffer | undefined): void => {
    const ready = held === undefined ? admitted : { ...admitted, held };
    const budget = authenticated?.uses;
    if (budget === undefined || authenticated === undefined) return proceed(ready);
    // The last check, so a request refused for anything else spends nothing.
    void deps.useCounter
      .spend(authenticated.tokenId, budget, authenticated.mintedExpiresAt, deps.clock())
      .then((spent) => {
        deps.metrics?.budget(spent.ok ? 'ok' : spent.reason);
        // The client may have gone while the use was counted: nothing to forward for.
        if (req.socket.destroyed) return;
        if (spent.ok) return proceed(ready);
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
  };
  if (approvals === undefined) return spendAndProceed(undefined);
  const gate = deps.approval;
  // Never forwarded unasked: without a gate or a token there is no one to ask.
  if (gate === undefined || authenticated === undefined)
    return refuse('ERR_APPROVAL_REQUIRED', 'this request needs an approver and none can be asked');
  // The client going away (its response closing unanswered) ends the wait.
  const gone = new AbortController();
  hold(() => gone.abort());
  void passApprovalGate(gate, {
    req,
    hasBody: hasBody(req),
    token: authenticated,
    approvals,
    service: route.service,
    host: route.host,
    path: route.upstreamPath,
    query: route.query,
    bodyIdleTimeoutMs: limits.bodyIdleTimeout,
    maxBodyBytes: limits.maxBodyBytes,
    useCounter: deps.useCounter,
    now: deps.clock,
    signal: gone.signal,
  }).then(
    (outcome) => {
      if (req.socket.destroyed) return;
      if (!outcome.ok) {
        if (outcome.code !== undefined) refuse(outcome.code, outcome.message);
        return;
      }
      // The wait may have outlived the token, or seen it revoked: judged again now,
      // against revocations that are themselves current.
      const later = deps.clock();
      const staleNow = deps.stateProblem(later);
      if (staleNow !== undefined) return refuse('ERR_STATE_UNAVAILABLE', staleNow);
      const { verdict: after } = deps.verifier.check(found.token, judged, later);
      if (!after.allowed && after.code !== 'ERR_APPROVAL_REQUIRED')
        return refuse(after.code, `after approval: ${after.reason}`);
      spendAndProceed(outcome.body);
    },
    () => refuse('ERR_APPROVAL_UNAVAILABLE', 'the approval service failed; retry'),
  );
}

function forward(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  runtime: GatewayRuntime,
  audit: Audit,
  limits: Limits,
  deps: ProxyDeps,
  token: TokenScope | undefined,
  signing: AwsSigning | undefined,
  /** A body already read whole (a request held for approval), sent as it is. */
  held?: Buffer,
): void {
  const metrics = deps.metrics;
  const pool = runtime.pools.get(route.service);
  if (!pool)
    return void sendError(res, 'ERR_SERVICE_UNKNOWN', `no upstream ${route.service}`, audit.render);
  const sendWith = (credential: Credential) =>
    signing === undefined
      ? send(req, res, route, audit, limits, metrics, pool, credential, held)
      : void sendSigned(req, res, route, audit, limits, deps, pool, credential, signing, held);
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
        if (!res.destroyed) sendWith(minted);
      },
      (err: unknown) => refuseWith(req, res, audit, err),
    );
  sendWith(credential);
}

/** A refusal from the credential pipeline: its code when it has one, never its stack. */
function refuseWith(req: IncomingMessage, res: ServerResponse, audit: Audit, err: unknown): void {
  const known = err instanceof MintfsError;
  audit.code = known ? err.code : 'ERR_CREDENTIAL_UNAVAILABLE';
  // The client may have gone while the credential was minted: nobody to answer.
  if (res.destroyed) return;
  req.resume();
  sendError(
    res,
    audit.code,
    known ? err.message : 'the upstream credential is unavailable',
    audit.render,
  );
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
  held?: Buffer,
): void {
  const inject = route.upstream.inject;
  // The config holds `inject` for every upstream that does not sign (config.ts).
  if (inject === undefined)
    return void refuseWith(
      req,
      res,
      audit,
      new MintfsError('ERR_CREDENTIAL_UNAVAILABLE', `upstream ${route.service} has no inject`),
    );
  const headers = forwardedHeaders(req, route, [inject.header]);
  // Replaced, never merged: the client's own header of this name is dropped above.
  headers[inject.header] = injectedValue(inject, credential.value);
  dispatchUpstream(
    req,
    res,
    route,
    audit,
    limits,
    metrics,
    pool,
    headers,
    maskedFor(inject, credential),
    held === undefined ? {} : { buffered: held },
  );
}

/** Bodies of requests to JSON-protocol AWS services without x-amz-content-sha256: hashed whole, so bounded. */
const HASHED_BODY_MAX_BYTES = 16 * 1024 * 1024;

/**
 * A request to a `sign: sigv4` upstream: the agent's signature, date and
 * token dropped, signed with the real keys; a signed-chunk body signed again
 * chunk by chunk as it streams; any other body streamed as it came.
 */
async function sendSigned(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  audit: Audit,
  limits: Limits,
  deps: ProxyDeps,
  pool: Dispatcher,
  credential: Credential,
  signing: AwsSigning,
  held?: Buffer,
): Promise<void> {
  const keys = credential.aws;
  if (keys === undefined)
    return refuseWith(
      req,
      res,
      audit,
      new MintfsError('ERR_CREDENTIAL_UNAVAILABLE', `upstream ${route.service} has no AWS keys`),
    );
  // A request held for approval was read whole already.
  let buffered: Buffer | undefined = held;
  if (held !== undefined) audit.bytesIn += held.length;
  else if (signing.plan.payload === 'compute' && hasBody(req)) {
    const max = Math.min(limits.maxBodyBytes, HASHED_BODY_MAX_BYTES);
    const read = await readBounded(req, max, limits.bodyIdleTimeout);
    if (typeof read === 'string') {
      audit.code =
        read === 'large'
          ? 'ERR_BODY_TOO_LARGE'
          : read === 'idle'
            ? 'ERR_REQUEST_TIMEOUT'
            : 'ERR_REQUEST_INVALID';
      res.shouldKeepAlive = false;
      return void sendError(
        res,
        audit.code,
        read === 'large'
          ? `a body without x-amz-content-sha256 is hashed whole by the gateway, so it may be at most ${max} bytes; send x-amz-content-sha256 (or UNSIGNED-PAYLOAD for S3)`
          : read === 'idle'
            ? `the request body sent nothing for ${limits.bodyIdleTimeout} ms`
            : 'the request body was cut short',
        audit.render,
      );
    }
    buffered = read;
    audit.bytesIn += read.length;
  }
  let signed;
  try {
    signed = await signUpstream({
      plan: signing.plan,
      method: req.method ?? 'GET',
      host: route.upstream.url.host,
      path: route.upstreamPath,
      query: route.query,
      headers: forwardedHeaders(req, route, []),
      body: buffered,
      scope: signing.scope,
      keys,
      now: deps.clock(),
    });
  } catch {
    // Never the error itself: it could quote the keys.
    return refuseWith(
      req,
      res,
      audit,
      new MintfsError(
        'ERR_CREDENTIAL_UNAVAILABLE',
        `the request to upstream ${route.service} could not be signed`,
      ),
    );
  }
  if (res.destroyed) return;
  const chunks = signed.chunks;
  dispatchUpstream(req, res, route, audit, limits, deps.metrics, pool, signed.headers, credential, {
    ...(buffered === undefined ? {} : { buffered }),
    ...(chunks === undefined ? {} : { stage: () => new ChunkResigner(chunks) }),
  });
}

/** The whole body up to `max` bytes, or why not. */
function readBounded(
  req: IncomingMessage,
  max: number,
  idleMs: number,
): Promise<Buffer | 'large' | 'idle' | 'cut'> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let total = 0;
    const finish = (result: Buffer | 'large' | 'idle' | 'cut') => {
      clearTimeout(idle);
      req.removeAllListeners('data');
      if (typeof result === 'string') req.resume();
      resolve(result);
    };
    const idle = setTimeout(() => finish('idle'), idleMs);
    req.on('data', (chunk: Buffer) => {
      idle.refresh();
      total += chunk.length;
      if (total > max) return finish('large');
      parts.push(chunk);
    });
    req.once('end', () => finish(Buffer.concat(parts)));
    req.once('error', () => finish('cut'));
  });
}

interface BodyOptions {
  /** The whole body, already read (and hashed for a signature). */
  readonly buffered?: Buffer;
  /** A stage the streamed body passes through last (re-signing chunks). */
  readonly stage?: () => Transform;
}

function dispatchUpstream(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  audit: Audit,
  limits: Limits,
  metrics: GatewayMetrics | undefined,
  pool: Dispatcher,
  headers: Record<string, string | string[]>,
  masked: Masked,
  options: BodyOptions = {},
): void {
  let failed = false;
  const fail = (code: MintfsErrorCode, message: string) => {
    if (failed) return;
    failed = true;
    audit.code = code;
    exchange.abort(new Error(message));
    sendError(res, code, message, audit.render);
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

  let body: Readable | Buffer | null = null;
  if (options.buffered !== undefined) {
    body = options.buffered;
    // A `_method` field in a body read whole: refused as in a streamed one.
    const scanner = bodyOverrideScanner(req.headers['content-type']);
    if (scanner !== undefined) {
      scanner.on('error', (err) => fail('ERR_REQUEST_INVALID', err.message));
      body = Readable.from([options.buffered]).pipe(scanner);
    }
    // A signed-chunk body held for an approver carries the agent's placeholder chunk
    // signatures: it is signed again on its way out, as a streamed one would be.
    if (options.stage !== undefined) {
      const stage = options.stage();
      stage.on('error', (err) => fail('ERR_REQUEST_INVALID', err.message));
      body = (body instanceof Readable ? body : Readable.from([body])).pipe(stage);
    }
  } else if (hasBody(req)) {
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
    if (options.stage !== undefined) {
      const stage = options.stage();
      stage.on('error', (err) => fail('ERR_REQUEST_INVALID', err.message));
      body = body.pipe(stage);
    }
    // Last, so what reaches undici is what every check above let through.
    body = coalesceAfter(body);
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

/** The agent's headers as they go upstream: hop-by-hop, its credentials and the named ones dropped. */
function forwardedHeaders(
  req: IncomingMessage,
  route: Route,
  dropped: readonly string[],
): Record<string, string | string[]> {
  const raw = fieldLines(req);
  const connectionListed = new Set(
    String(req.headers.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (
      DROPPED_REQUEST_HEADERS.has(name) ||
      connectionListed.has(name) ||
      dropped.includes(name) ||
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
  // A body without Content-Length is sent chunked by the client library.
  return headers;
}

/** Headers for the upstream with the credential injected (WebSocket handshakes; `inject` upstreams). */
export function upstreamHeaders(
  req: IncomingMessage,
  route: Route,
  credential: string,
): Record<string, string | string[]> {
  const inject = route.upstream.inject;
  if (inject === undefined)
    throw new MintfsError('ERR_CREDENTIAL_UNAVAILABLE', `upstream ${route.service} has no inject`);
  const headers = forwardedHeaders(req, route, [inject.header]);
  // Replaced, never merged: the client's own header of this name is dropped.
  headers[inject.header] = injectedValue(inject, credential);
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
