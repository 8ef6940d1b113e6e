/**
 * One HTTPS POST to a token service (an OAuth2 token endpoint, GitHub's
 * API), with a deadline and a cap on the answer. Failures are refusals that
 * name the status or the connection error, never a body (a token service's
 * error page may echo what it was sent).
 */
import { readFileSync } from 'node:fs';
// rootCertificates through the module object: it is a getter, and a named import is read
// when the bundle's chunk loads (scripts/bundle-cli.mjs, builtinsAsObjects), not when used.
import tls from 'node:tls';
import type { Dispatcher } from 'undici';
import { Agent } from '../util/undici-dispatchers.js';
import { isMintfsError } from '../errors.js';
import type { Refusal } from './value.js';

export const MAX_ANSWER_BYTES = 64 * 1024;

export interface TokenService {
  request(
    url: string,
    init: {
      readonly method: 'POST' | 'DELETE' | 'GET';
      readonly headers: Record<string, string>;
      readonly body?: string;
    },
    fail: Refusal,
  ): Promise<{ status: number; body: string }>;
  close(): void;
}

/** A client for one token service, trusting `ca` (a PEM file) besides the system's CAs. */
export function tokenService(
  timeoutMs: number,
  caFile: string | undefined,
  fail: Refusal,
): TokenService {
  let ca: string[] | undefined;
  if (caFile !== undefined) {
    try {
      ca = [...tls.rootCertificates, readFileSync(caFile, 'utf8')];
    } catch {
      throw fail(`ca ${caFile} cannot be read`);
    }
  }
  const dispatcher: Dispatcher = new Agent({
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    ...(ca === undefined ? {} : { connect: { ca } }),
  });
  return {
    request: async (url, init, refuse) => {
      const signal = AbortSignal.timeout(timeoutMs);
      let response: Dispatcher.ResponseData;
      try {
        response = await dispatcher.request({
          origin: new URL(url).origin,
          path: new URL(url).pathname,
          method: init.method,
          headers: init.headers,
          ...(init.body === undefined ? {} : { body: init.body }),
          signal,
        });
      } catch (err) {
        throw refuse(`could not be reached (${errorName(err)})`);
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      try {
        for await (const chunk of response.body as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          if (bytes > MAX_ANSWER_BYTES) {
            response.body.destroy();
            throw refuse(`answered more than ${MAX_ANSWER_BYTES} bytes`);
          }
          chunks.push(chunk);
        }
      } catch (err) {
        if (isMintfsError(err)) throw err;
        throw refuse(`answer was cut short (${errorName(err)})`);
      }
      return { status: response.statusCode, body: Buffer.concat(chunks).toString('utf8') };
    },
    close: () => void dispatcher.close().catch(() => undefined),
  };
}

function errorName(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  const code = (err as { code?: unknown }).code;
  const name = cause?.code ?? code;
  if (typeof name === 'string') return name;
  if (err instanceof Error && err.name === 'TimeoutError') return 'timeout';
  return 'error';
}
