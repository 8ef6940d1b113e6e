/**
 * The WebSocket handshake as the gateway judges it (RFC 6455 section 4):
 * what an agent's handshake must look like before the pipeline judges it,
 * what goes upstream in its place, and what the upstream's 101 must prove
 * before a single frame is relayed. A 101 without the right
 * Sec-WebSocket-Accept is an upstream that did not really switch (a
 * misconfigured server, or one that answered 101 to anything): relaying
 * the agent's bytes to it could smuggle a second, unjudged HTTP request.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { MintfsErrorCode } from '../errors.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What the upstream must answer in Sec-WebSocket-Accept for this key. */
export function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}${GUID}`).digest('base64');
}

export interface HandshakeProblem {
  readonly code: MintfsErrorCode;
  readonly message: string;
}

/** Why this upgrade request is not a WebSocket handshake the gateway relays, or undefined. */
export function websocketRequestProblem(
  req: IncomingMessage,
  upstream: { readonly websocket: { readonly enabled: boolean } },
  service: string,
): HandshakeProblem | undefined {
  const bad = (message: string): HandshakeProblem => ({ code: 'ERR_REQUEST_INVALID', message });
  if (!upstream.websocket.enabled)
    return bad(
      `WebSockets to upstream ${service} are off (upstreams.${service}.websocket.enabled)`,
    );
  const upgrade = String(req.headers.upgrade ?? '').trim();
  if (upgrade.toLowerCase() !== 'websocket')
    return bad(
      `protocol upgrades other than websocket (${upgrade.slice(0, 40)}) are not supported through the gateway`,
    );
  if (req.method !== 'GET')
    return { code: 'ERR_METHOD_NOT_ALLOWED', message: 'a WebSocket handshake is a GET' };
  // Bytes after the head would be read as frames by nobody: refused, never relayed.
  if (
    req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] ?? '0') !== '0'
  )
    return bad('a WebSocket handshake carries no body');
  if (req.headers['sec-websocket-version'] !== '13')
    return bad('Sec-WebSocket-Version must be 13 (RFC 6455)');
  if (keyProblem(req.headers['sec-websocket-key']))
    return bad('Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455)');
  const protocols = offeredProtocols(req.headers);
  if (protocols === undefined) return bad('Sec-WebSocket-Protocol must list tokens');
  return undefined;
}

function keyProblem(key: string | undefined): boolean {
  if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key)) return true;
  return Buffer.from(key, 'base64').length !== 16;
}

/** The subprotocols a handshake offers ([] when none), or undefined when the header is malformed. */
export function offeredProtocols(headers: IncomingHttpHeaders): string[] | undefined {
  const raw = headers['sec-websocket-protocol'];
  if (raw === undefined) return [];
  const names = String(raw)
    .split(',')
    .map((name) => name.trim());
  return names.every((name) => TOKEN.test(name)) ? names : undefined;
}

/**
 * Why the upstream's 101 is not an acceptance of this handshake, or
 * undefined. Extensions are never offered upstream (so every frame can be
 * read and redacted), so one in the answer is a failure too.
 */
export function upstreamAcceptProblem(
  headers: Record<string, string | string[] | undefined>,
  key: string,
  offered: readonly string[],
): string | undefined {
  const one = (name: string): string | undefined => {
    const value = headers[name];
    return Array.isArray(value) ? undefined : value;
  };
  if (one('upgrade')?.trim().toLowerCase() !== 'websocket') return 'its Upgrade is not websocket';
  const connection = (one('connection') ?? '')
    .toLowerCase()
    .split(',')
    .map((t) => t.trim());
  if (!connection.includes('upgrade')) return 'its Connection does not list upgrade';
  if (one('sec-websocket-accept')?.trim() !== acceptFor(key))
    return 'its Sec-WebSocket-Accept does not match the key sent';
  if (headers['sec-websocket-extensions'] !== undefined)
    return 'it chose an extension the gateway never offered';
  const protocol = headers['sec-websocket-protocol'];
  if (protocol !== undefined && (Array.isArray(protocol) || !offered.includes(protocol.trim())))
    return 'it chose a subprotocol the agent did not offer';
  return undefined;
}
