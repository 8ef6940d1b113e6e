/**
 * The path of an S3 request as S3 reads it: `/BUCKET/KEY`, where the key is
 * everything after the bucket, percent-decoded, byte for byte. S3 keys are
 * not file paths: `a/b/` and `a/b` are two objects, and so are `a//b`,
 * `a/./b` and `a/../b`. The gateway's generic normalisation (request-path.ts)
 * reads a trailing slash as the same resource, which would let a token for
 * `/bucket/x` reach the object `x/`; here the trailing slash is kept, as an
 * empty last segment, so path caveats see the exact key (`/bucket/x/**` and
 * `/bucket/x/*` match it, `/bucket/x` does not).
 *
 * What the generic rules refuse (`//`, dot segments, encoded slashes, `%25`,
 * encoded unreserved characters, `;`, `\`) stays refused: a refusal merges
 * nothing. And a key must be spelled in the one canonical way SDKs spell it
 * (botocore, the JS and Go SDKs): RFC 3986's unreserved characters as they
 * are, every other byte of its UTF-8 as %XX in upper case. Any other spelling
 * (a raw `+`, `!` or `=`, lower-case hex, raw non-ASCII) is refused, never
 * rewritten: S3 decodes a raw `+` in its own way, and a request that names
 * one key in two spellings could be judged as one and signed as the other.
 * So the key S3 decodes is the one the caveats judged, and the path signed is
 * the path sent. Pure.
 */
import { normaliseRequestPath } from '../token/request-path.js';

export type S3Path =
  | {
      readonly ok: true;
      /** What path caveats judge: bucket, then key segments (a last '' for a trailing slash). */
      readonly segments: readonly string[];
    }
  | { readonly ok: false; readonly reason: string };

export function s3Path(rawPath: string): S3Path {
  const normalised = normaliseRequestPath(rawPath);
  if (!normalised.ok) return normalised;
  const segments = [...normalised.segments];
  const trailing = rawPath.length > 1 && rawPath.endsWith('/');
  // A bucket's own path names the bucket with or without the slash; a key's does not.
  if (trailing && segments.length >= 2) segments.push('');
  const canonical =
    segments.length === 0
      ? '/'
      : `/${segments.map(encodeS3Segment).join('/')}${trailing && segments.length === 1 ? '/' : ''}`;
  if (canonical !== rawPath)
    return {
      ok: false,
      reason:
        'an S3 key must be percent-encoded as SDKs send it: letters, digits and - . _ ~ as they are, every other byte as %XX in upper case',
    };
  return { ok: true, segments };
}

/** RFC 3986 unreserved characters pass; every other byte of the UTF-8 is %XX (upper-case hex). */
export function encodeS3Segment(segment: string): string {
  // encodeURIComponent leaves !'()* unencoded too: those are encoded here, as SDKs do.
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
