/**
 * Redaction searches the bytes a client will read, so every coding an
 * upstream applied (content codings, and transfer codings other than the
 * chunked framing undici already removes) is decoded first. An upstream may
 * compress despite `accept-encoding: identity`, or send `Transfer-Encoding:
 * gzip, chunked`; a coding the gateway cannot decode refuses the response
 * (502) rather than pass bytes it could not search.
 */
import type { Transform } from 'node:stream';
// The module object: zstd is read as a property, present on Node 22.15+ and 24, absent before.
import zlib from 'node:zlib';

// Node 22.15+ and 24 decode zstd; older types do not know it.
const createZstdDecompress = (zlib as unknown as Record<string, (() => Transform) | undefined>)
  .createZstdDecompress;

export interface ResponseDecoding {
  /** Where the upstream's body goes in... */
  readonly input: Transform;
  /** ...and where the decoded bytes come out (the same stream for one coding). */
  readonly output: Transform;
  readonly stages: readonly Transform[];
}

const DECODERS: Readonly<Record<string, (() => Transform) | undefined>> = {
  gzip: zlib.createGunzip,
  'x-gzip': zlib.createGunzip,
  deflate: zlib.createInflate,
  br: zlib.createBrotliDecompress,
  ...(createZstdDecompress === undefined ? {} : { zstd: createZstdDecompress }),
};

/** More layers than this is not a real server's response. */
const MAX_CODINGS = 3;

/** The decoders for a response, undefined for plain bytes, or an Error naming what cannot be decoded. */
export function responseDecoding(
  headers: Record<string, string | string[] | undefined>,
): ResponseDecoding | undefined | Error {
  const transfer = codings(headers['transfer-encoding']);
  // chunked is the framing the HTTP client already removed; it must come last (RFC 9112 6.1).
  if (transfer.at(-1) === 'chunked') transfer.pop();
  if (transfer.includes('chunked'))
    return new Error('transfer-encoding lists chunked before another coding');
  // Applied content codings first, then transfer codings: undo them in reverse.
  const applied = [...codings(headers['content-encoding']), ...transfer];
  if (applied.length === 0) return undefined;
  if (applied.length > MAX_CODINGS) return new Error(`${applied.length} codings`);
  const stages: Transform[] = [];
  for (const coding of applied.reverse()) {
    const make = DECODERS[coding];
    if (make === undefined) return new Error(`unsupported coding ${coding}`);
    stages.push(make());
  }
  for (let i = 0; i + 1 < stages.length; i++)
    (stages[i] as Transform).pipe(stages[i + 1] as Transform);
  return { input: stages[0] as Transform, output: stages.at(-1) as Transform, stages };
}

function codings(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
}
