/**
 * Redaction can only mask a credential it sees whole. A response that is a
 * part of a resource (a byte range) can end or begin inside an echo of the
 * credential, and an agent that fetches an echoing resource in pieces
 * shorter than the credential gets every byte of it with no piece matching.
 * So an upstream returns whole responses only, unless its config declares
 * `partialResponses: allow` (an object store, which never echoes the
 * credential, and whose clients download big objects in ranged parts).
 *
 * Refused, never stripped: a client that asked for bytes 100-199 and got the
 * whole object would store a corrupt file (aws-cli assembles its parts).
 */
import type { UpstreamConfig } from './config.js';

export const PARTIAL_RESPONSE_POLICIES = ['refuse', 'allow'] as const;
export type PartialResponsePolicy = (typeof PARTIAL_RESPONSE_POLICIES)[number];

/**
 * Request headers that ask for part of a response: `range` and every
 * `*-range` (If-Range, Apache's old Request-Range, Azure's x-ms-range, any
 * vendor's x-range), on any method. Not Content-Range: on a request it says
 * which part of an upload the body is, and the answer is not a part.
 */
export function asksForPart(name: string): boolean {
  return name === 'range' || (name.endsWith('-range') && name !== 'content-range');
}

/** Why this request must not be forwarded to its upstream, or undefined. */
export function partialRequestProblem(
  rawHeaders: readonly string[],
  service: string,
  upstream: UpstreamConfig,
): string | undefined {
  if (upstream.partialResponses === 'allow') return undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (asksForPart(name))
      return `header ${name} is refused: upstream ${service} returns whole responses only, so an echo of its credential cannot be split past redaction (upstreams.${service}.partialResponses: allow, for an upstream that never echoes it)`;
  }
  return undefined;
}

/**
 * Why this response head is a part of something (and must not reach the
 * client), or undefined. Checked on every response of an upstream that
 * refuses parts: an upstream may send one unasked (a query parameter such
 * as S3's partNumber, a cache that serves what it has).
 */
export function partialResponseProblem(
  statusCode: number,
  headers: Record<string, string | string[] | undefined>,
): string | undefined {
  if (statusCode === 206) return 'status 206';
  if (headers['content-range'] !== undefined) return 'a content-range header';
  // multipart/x-byteranges: what servers answered Request-Range with.
  const type = /^\s*multipart\/(x-)?byteranges\b/i.exec(String(headers['content-type'] ?? ''));
  if (type) return type[0].trim().toLowerCase();
  return undefined;
}
