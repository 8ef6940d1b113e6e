/**
 * A WebSocket handshake through the gateway. The handshake is a request like
 * any other and goes through the whole pipeline (proxy.ts's admit: route,
 * token, caveats against its GET, revocation, budgets, the agent's
 * concurrency), is sent upstream with the credential injected, and only when
 * the upstream really accepts it (101 with the right Sec-WebSocket-Accept)
 * are frames relayed (websocket/relay.ts). Until then not a byte of the
 * agent's beyond its handshake reaches the upstream; a refusal is an HTTP
 * answer, as a client library expects. Live sockets are judged again
 * (websocket/live-sockets.ts) and closed with 1008 when their token dies.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { MintfsError, type MintfsErrorCode } from '../errors.js';
import { acceptFor, offeredProtocols, upstreamAcceptProblem } from '../websocket/handshake.js';
import { CLOSE } from '../websocket/frames.js';
import type { LiveSockets } from '../websocket/live-sockets.js';
import { type CloseVerdict } from '../websocket/live-sockets.js';
import { WebSocketRelay, type RelayEnd } from '../websocket/relay.js';
import { sendError } from './http-errors.js';
import type { Credential } from './credentials.js';
import { maskedFor } from './inject.js';
import {
  admit,
  upstreamErrorName,
  upstreamHeaders,
  type Admitted,
  type ProxyDeps,
} from './proxy.js';
import { logRequestAudit, type Audit } from './audit-line.js';
import { maskSecrets, redactText } from './redact.js';
import { UpstreamExchange } from './upstream-exchange.js';

export interface UpgradeDeps extends ProxyDeps {
  readonly live: LiveSockets;
}

export function createUpgradeHandler(
  deps: UpgradeDeps,
): (req: IncomingMessage, socket: Socket, head: Buffer) => void {
  return (req, socket, head) => {
    const started = process.hrtime.bigint();
    const audit: Audit = { bytesIn: 0, bytesOut: 0 };
    // Nothing the agent sends after its handshake is read until the upstream accepts.
    socket.pause();
    // The server's idle timeout is for HTTP keep-alive; a WebSocket lives by its own limits.
    socket.setTimeout(0);
    // Refusals and the upstream's non-101 answers are HTTP responses on this socket.
    const res = new ServerResponse(req);
    res.assignSocket(socket);
    res.shouldKeepAlive = false;
    res.once('finish', () => socket.end());
    let logged = false;
    const logHandshake = () => {
      if (logged) return;
      logged = true;
      logRequestAudit(deps, req, audit, started, {
        websocket: true,
        status: res.headersSent ? res.statusCode : audit.code === undefined ? 101 : undefined,
      });
    };
    res.once('close', logHandshake);
    const refuse = (code: MintfsErrorCode, message: string) => {
      audit.code = code;
      if (res.destroyed || res.headersSent) return void socket.destroy();
      sendError(res, code, message);
    };
    admit(
      deps,
      req,
      audit,
      refuse,
      'websocket',
      (release) => socket.once('close', release),
      (admitted) => {
        let credential: Credential | Promise<Credential>;
        try {
          credential = admitted.runtime.credentials.obtain(
            admitted.route.service,
            audit.agent,
            admitted.token,
          );
        } catch (err) {
          return refuseWith(refuse, err);
        }
        if (credential instanceof Promise)
          return void credential.then(
            (minted) => {
              if (!socket.destroyed)
                handshake(deps, req, res, head, admitted, audit, minted, refuse, logHandshake);
            },
            (err: unknown) => refuseWith(refuse, err),
          );
        handshake(deps, req, res, head, admitted, audit, credential, refuse, logHandshake);
      },
    );
  };
}

function refuseWith(refuse: (code: MintfsErrorCode, message: string) => void, err: unknown): void {
  if (err instanceof MintfsError) refuse(err.code, err.message);
  else refuse('ERR_CREDENTIAL_UNAVAILABLE', 'the upstream credential is unavailable');
}

function handshake(
  deps: UpgradeDeps,
  req: IncomingMessage,
  res: ServerResponse,
  clientHead: Buffer,
  admitted: Admitted,
  audit: Audit,
  credential: Credential,
  refuse: (code: MintfsErrorCode, message: string) => void,
  logHandshake: () => void,
): void {
  const { route, runtime, limits } = admitted;
  const pool = runtime.pools.get(route.service);
  if (!pool) return refuse('ERR_SERVICE_UNKNOWN', `no upstream ${route.service}`);
  const socket = req.socket;
  const inject = route.upstream.inject;
  // A `sign: sigv4` upstream injects nothing: AWS's WebSocket APIs sign their URLs instead.
  if (inject === undefined)
    return refuse(
      'ERR_REQUEST_INVALID',
      `upstream ${route.service} signs its requests; WebSockets are not carried to it`,
    );
  const masked = maskedFor(inject, credential);
  const key = String(req.headers['sec-websocket-key']);
  const offered = offeredProtocols(req.headers) ?? [];
  const headers = upstreamHeaders(req, route, credential.value);
  // Never offered upstream: a compressed frame could not be read for redaction.
  delete headers['sec-websocket-extensions'];

  let failed = false;
  const fail = (code: MintfsErrorCode, message: string) => {
    if (failed) return;
    failed = true;
    refuse(code, message);
  };
  // A non-101 answer is relayed as any response is: redacted, then the connection closes.
  const exchange = new UpstreamExchange({
    res,
    secrets: masked.secrets,
    secretBytes: masked.secretBytes,
    wholeResponsesOnly: route.upstream.partialResponses === 'refuse',
    countOut: (n) => (audit.bytesOut += n),
    stallTimeoutMs: limits.upstreamTimeout,
    failed: (err) => {
      const code = (err as { code?: string }).code;
      if (code === 'UND_ERR_HEADERS_TIMEOUT')
        fail(
          'ERR_UPSTREAM_TIMEOUT',
          `upstream ${route.service} did not answer in ${limits.upstreamTimeout} ms`,
        );
      else if (code === 'MINTFS_UNDECODABLE')
        fail('ERR_UPSTREAM_UNREACHABLE', `upstream ${route.service} sent an ${err.message}`);
      else
        fail(
          'ERR_UPSTREAM_UNREACHABLE',
          `upstream ${route.service} failed: ${upstreamErrorName(err)}`,
        );
    },
  });
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart: (controller) => exchange.onRequestStart(controller),
    onResponseStart: (controller, status, headers) =>
      exchange.onResponseStart(controller, status, headers),
    onResponseData: (controller, chunk) => exchange.onResponseData(controller, chunk),
    onResponseEnd: (controller, trailers) => exchange.onResponseEnd(controller, trailers),
    onResponseError: (controller, err) => exchange.onResponseError(controller, err),
    onRequestUpgrade: (_controller, status, answer, upstream) => {
      upstream.on('error', () => upstream.destroy());
      const problem =
        status === 101 ? upstreamAcceptProblem(answer, key, offered) : `it answered ${status}`;
      if (problem !== undefined || socket.destroyed) {
        upstream.destroy();
        return fail(
          'ERR_UPSTREAM_UNREACHABLE',
          `upstream ${route.service} answered 101 but did not accept the WebSocket: ${problem ?? ''}`,
        );
      }
      accepted(
        deps,
        req,
        res,
        clientHead,
        admitted,
        audit,
        masked.secretBytes,
        answer,
        upstream,
        logHandshake,
      );
    },
  };
  audit.forwarded = true;
  pool.dispatch(
    {
      path: `${route.upstreamPath}${route.query}`,
      method: 'GET',
      headers,
      upgrade: 'websocket',
      headersTimeout: limits.upstreamTimeout,
      bodyTimeout: limits.upstreamTimeout,
    },
    handler,
  );
}

function accepted(
  deps: UpgradeDeps,
  req: IncomingMessage,
  res: ServerResponse,
  clientHead: Buffer,
  admitted: Admitted,
  audit: Audit,
  secretBytes: readonly Buffer[],
  answer: Record<string, string | string[] | undefined>,
  upstream: Duplex,
  logHandshake: () => void,
): void {
  const socket = req.socket;
  const { route } = admitted;
  const protocol = answer['sec-websocket-protocol'];
  const secrets = secretBytes.map((b) => b.toString());
  // Our own 101: only what the handshake needs, and the upstream's other headers redacted.
  const lines = [
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${acceptFor(String(req.headers['sec-websocket-key']))}`,
    ...(typeof protocol === 'string' ? [`Sec-WebSocket-Protocol: ${protocol.trim()}`] : []),
    ...Object.entries(answer).flatMap(([name, value]) =>
      value === undefined || HANDSHAKE_HEADERS.has(name)
        ? []
        : (Array.isArray(value) ? value : [value]).map((v) => `${name}: ${redactText(v, secrets)}`),
    ),
  ];
  // The ServerResponse only served refusals: the socket is the relay's from here.
  res.detachSocket(socket);
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  logHandshake();
  const openedAt = deps.clock().getTime();
  const relay = new WebSocketRelay({
    client: socket,
    upstream,
    clientHead,
    mask: (payload) => maskSecrets(payload, secretBytes),
    maxMessageBytes: route.upstream.websocket.maxMessageBytes,
  });
  const stop = deps.live.add({
    judge: (now) => judgeLive(deps, admitted, openedAt, now),
    close: (verdict: CloseVerdict) => relay.close(verdict.code, verdict.reason),
  });
  void relay.done.then((end: RelayEnd) => {
    stop();
    deps.logger.info(
      {
        event: 'websocket',
        mode: audit.mode,
        agent: audit.agent,
        tokenId: audit.tokenId,
        service: audit.service,
        path: audit.path,
        closedBy: end.by,
        ...(end.code === undefined ? {} : { closeCode: end.code }),
        ...(end.reason === '' ? {} : { closeReason: end.reason }),
        ...relay.counts,
        durationMs: deps.clock().getTime() - openedAt,
      },
      'websocket closed',
    );
  });
}

const HANDSHAKE_HEADERS = new Set([
  'upgrade',
  'connection',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'content-length',
  'transfer-encoding',
  'keep-alive',
]);

/** The handshake's question asked again: what closes a live socket now, if anything. */
function judgeLive(
  deps: UpgradeDeps,
  admitted: Admitted,
  openedAt: number,
  now: Date,
): CloseVerdict | undefined {
  const { route } = admitted;
  const stale = deps.stateProblem(now);
  if (stale !== undefined)
    return { code: CLOSE.tryAgainLater, reason: `ERR_STATE_UNAVAILABLE: ${stale}` };
  const { verdict } = deps.verifier.check(admitted.tokenText, admitted.judged, now);
  if (!verdict.allowed)
    return { code: CLOSE.policyViolation, reason: `${verdict.code}: ${verdict.reason}` };
  if (deps.runtime().config.upstreams[route.service] === undefined)
    return {
      code: CLOSE.policyViolation,
      reason: `upstream ${route.service} is no longer configured`,
    };
  const lifetime = route.upstream.websocket.maxLifetime;
  if (now.getTime() - openedAt >= lifetime)
    return {
      code: CLOSE.policyViolation,
      reason: `the WebSocket reached its maximum lifetime of ${lifetime} ms (upstreams.${route.service}.websocket.maxLifetime)`,
    };
  return undefined;
}
