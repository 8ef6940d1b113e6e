/**
 * The one audit line (and the request metric) a request or a WebSocket
 * handshake leaves when it ends: who (agent, reader, token id), what
 * (service, method, path), and how it went. Names of things only: never the
 * token, never the credential.
 */
import type { IncomingMessage } from 'node:http';
import type { MintfsErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { ErrorRenderer } from './http-errors.js';
import type { Route } from './route.js';

/** What the pipeline learnt about one request, filled in as it goes. */
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
  /** Refusals in the upstream's own error shape (AWS's), when its clients parse one. */
  render?: ErrorRenderer | undefined;
}

/** How it ended: a request's status and whether its response was sent whole; a handshake's status. */
export type AuditOutcome =
  | { readonly websocket?: false; readonly status: number | undefined; readonly completed: boolean }
  | { readonly websocket: true; readonly status: number | undefined };

export interface AuditSink {
  readonly logger: Logger;
  readonly metrics?: Pick<GatewayMetrics, 'request'> | undefined;
}

/**
 * Writes the line for a request that started at `started`
 * (process.hrtime.bigint()). pino leaves out fields that are undefined, so
 * a line has `reader` and `error` only when there is one. A WebSocket
 * handshake's line says `websocket: true` and has no byte counts (its
 * frames are counted by the relay).
 */
export function logRequestAudit(
  sink: AuditSink,
  req: IncomingMessage,
  audit: Audit,
  started: bigint,
  outcome: AuditOutcome,
): void {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  sink.metrics?.request(audit.code, audit.forwarded === true, seconds);
  sink.logger.info(
    outcome.websocket === true
      ? {
          event: 'request',
          mode: audit.mode,
          agent: audit.agent,
          reader: audit.reader,
          tokenId: audit.tokenId,
          service: audit.service,
          method: req.method,
          path: audit.path,
          websocket: true,
          status: outcome.status,
          error: audit.code,
          durationMs: seconds * 1e3,
        }
      : {
          event: 'request',
          mode: audit.mode,
          agent: audit.agent,
          reader: audit.reader,
          tokenId: audit.tokenId,
          service: audit.service,
          method: req.method,
          path: audit.path,
          status: outcome.status,
          error: audit.code,
          completed: outcome.completed,
          bytesIn: audit.bytesIn,
          bytesOut: audit.bytesOut,
          durationMs: seconds * 1e3,
        },
    'gateway request',
  );
}
