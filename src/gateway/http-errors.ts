/** The one place error codes become HTTP statuses, and the JSON error body. */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { MintfsErrorCode } from '../errors.js';

const STATUS: Partial<Record<MintfsErrorCode, number>> = {
  ERR_REQUEST_INVALID: 400,
  ERR_PATH_AMBIGUOUS: 400,
  ERR_TOKEN_MISSING: 401,
  ERR_TOKEN_MALFORMED: 401,
  ERR_TOKEN_SIGNATURE: 401,
  ERR_TOKEN_EXPIRED: 401,
  ERR_TOKEN_REVOKED: 401,
  ERR_TOKEN_USES_SPENT: 401,
  ERR_TOKEN_USES_UNCOUNTED: 401,
  ERR_KEY_UNKNOWN: 401,
  ERR_KEY_RETIRED: 401,
  ERR_CAVEAT_UNKNOWN: 401,
  ERR_CAVEAT_MALFORMED: 401,
  ERR_CAVEAT_UNSATISFIED: 403,
  ERR_APPROVAL_REQUIRED: 403,
  ERR_APPROVAL_DENIED: 403,
  ERR_APPROVAL_TIMEOUT: 403,
  ERR_APPROVAL_UNAVAILABLE: 503,
  ERR_SERVICE_UNKNOWN: 404,
  ERR_TUNNEL_REFUSED: 403,
  ERR_HOST_MISMATCH: 421,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_REQUEST_TIMEOUT: 408,
  ERR_BODY_TOO_LARGE: 413,
  ERR_TOO_MANY_REQUESTS: 429,
  ERR_TOO_MANY_CONNECTIONS: 429,
  ERR_UPSTREAM_UNREACHABLE: 502,
  // The gateway could not get the upstream credential (a source failed): the upstream's fault, not the agent's.
  ERR_CREDENTIAL_UNAVAILABLE: 502,
  ERR_UPSTREAM_TIMEOUT: 504,
  // Shared state the answer depends on is out of reach: fail closed, retry later.
  ERR_STATE_UNAVAILABLE: 503,
};

export function statusFor(code: MintfsErrorCode): number {
  return STATUS[code] ?? 500;
}

/** The status a gateway answers this code with, when it has one of its own (docs). */
export function gatewayStatusOf(code: MintfsErrorCode): number | undefined {
  return STATUS[code];
}

export function errorBody(code: MintfsErrorCode, message: string): string {
  return `${JSON.stringify({ error: code, message })}\n`;
}

/** An error body in another shape than mintfs's JSON (an AWS SDK's, src/aws/error-shape.ts). */
export type ErrorRenderer = (
  code: MintfsErrorCode,
  message: string,
  status: number,
) => { contentType: string; body: string; headers?: Readonly<Record<string, string>> };

/** Sends a JSON error, unless the response has started (then the connection is cut). */
export function sendError(
  res: ServerResponse,
  code: MintfsErrorCode,
  message: string,
  render?: ErrorRenderer,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = statusFor(code);
  if (isGrpcRequest(res.req)) return sendGrpcError(res, status, code, message);
  if (render !== undefined) {
    const shaped = render(code, message, status);
    res.writeHead(status, {
      ...shaped.headers,
      'content-type': shaped.contentType,
      'content-length': Buffer.byteLength(shaped.body),
      'cache-control': 'no-store',
    });
    res.end(shaped.body);
    return;
  }
  // git shows a text/plain error body to its user as `remote:` lines (and a
  // JSON one not at all): tell git's user which caveat refused the request.
  const plain = String(res.req.headers['user-agent'] ?? '').startsWith('git/');
  const body = plain ? `mintfs: ${code}: ${message}\n` : errorBody(code, message);
  const headers: Record<string, string | number> = {
    'content-type': plain ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  // git (and browsers) only ask their credential helper after a Basic challenge.
  if (status === 401) headers['www-authenticate'] = 'Basic realm="mintfs"';
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * A whole JSON error response for a raw socket, then close: for answers
 * before (or instead of) an HTTP exchange (a malformed head, a refused CONNECT).
 */
export function rawErrorResponse(status: number, code: MintfsErrorCode, message: string): string {
  const body = errorBody(code, message);
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/**
 * gRPC's own status for a gateway refusal (status codes from
 * grpc/doc/statuscodes.md), so a gRPC client library shows the code and why.
 */
const GRPC_STATUS: Partial<Record<number, number>> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  404: 12, // UNIMPLEMENTED
  405: 12,
  408: 4, // DEADLINE_EXCEEDED
  413: 8, // RESOURCE_EXHAUSTED
  421: 7,
  429: 8,
  431: 8,
  502: 14, // UNAVAILABLE
  503: 14,
  504: 4,
};

/** A gRPC call (HTTP/2 with a gRPC content type): refused as gRPC, not with a JSON body. */
function isGrpcRequest(req: ServerResponse['req']): boolean {
  return (
    req.httpVersionMajor === 2 &&
    String(req.headers['content-type'] ?? '').startsWith('application/grpc')
  );
}

/** A trailers-only gRPC response: HTTP 200, grpc-status and grpc-message, no messages. */
function sendGrpcError(
  res: ServerResponse,
  status: number,
  code: MintfsErrorCode,
  message: string,
): void {
  // As trailers: Node's compatibility API ends the stream with a DATA frame,
  // and a gRPC client reads a status in the first HEADERS only when that
  // frame ends the stream (trailers-only).
  res.writeHead(200, { 'content-type': 'application/grpc' });
  res.addTrailers({
    'grpc-status': String(GRPC_STATUS[status] ?? 13),
    'grpc-message': grpcPercentEncode(`${code}: ${message}`),
  });
  res.end();
}

/** grpc-message's encoding: bytes outside printable ASCII, and %, as %XX (gRPC over HTTP/2). */
function grpcPercentEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text))
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}
