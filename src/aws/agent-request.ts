/**
 * What an agent's AWS request asks of the gateway, read from its headers and
 * query before anything is signed: the token (X-Amz-Security-Token, where
 * AWS SDKs put the credential_process SessionToken), how its body is hashed
 * (x-amz-content-sha256), and the other resources it names that caveats must
 * judge too (x-amz-copy-source). Pure: no I/O, no clock.
 *
 * The gateway signs every header it forwards, so any header the upstream acts
 * on is one the agent chose: what such a header makes the upstream touch
 * besides the request's own path is judged here, or the request is refused.
 */
import { s3Path } from './s3-path.js';

export type PayloadMode =
  /** A hex SHA-256 of the body, as the client sent it: the upstream checks it. */
  | 'hash'
  | 'unsigned'
  /** aws-chunked with unsigned chunks and checksum trailers: the framing passes through. */
  | 'streaming-unsigned-trailer'
  /** aws-chunked with a signature per chunk: each is signed again (chunk-signer.ts). */
  | 'streaming-signed'
  /** No hash header: the gateway hashes the (bounded) body itself. */
  | 'compute';

export interface ExtraCheck {
  readonly method: string;
  readonly rawPath: string;
  readonly pathSegments: readonly string[];
  /** What asked for it, for the refusal: `x-amz-copy-source`. */
  readonly why: string;
}

export interface AwsRequestPlan {
  readonly ok: true;
  readonly token: string;
  readonly payload: PayloadMode;
  /** The x-amz-content-sha256 value sent upstream (absent for `compute`). */
  readonly contentSha256?: string;
  readonly extraChecks: readonly ExtraCheck[];
}

export interface AwsRequestProblem {
  readonly ok: false;
  /** ERR_TOKEN_MISSING or ERR_REQUEST_INVALID. */
  readonly code: 'ERR_TOKEN_MISSING' | 'ERR_REQUEST_INVALID';
  readonly message: string;
}

/** Query parameters of a presigned URL: the signature (and token) ride in the URL. */
const PRESIGN_PARAMS = new Set([
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-signature',
  'x-amz-security-token',
  'x-amz-signedheaders',
  'x-amz-date',
  'x-amz-expires',
]);

/**
 * The query keys an S3 request that changes something may carry: object
 * data, multipart uploads, versions. Any other (`?acl`, `?policy`,
 * `?retention`, `?tagging`, `?restore`, `?website`...) changes how a bucket
 * or object is shared, locked or billed, which no path or method caveat
 * judges: refused, fail closed. Reads may ask for any.
 */
const S3_WRITE_QUERY_KEYS = new Set([
  'uploads',
  'uploadId',
  'partNumber',
  'versionId',
  'x-id',
  'select',
  'select-type',
]);

/**
 * Headers that would share an object beyond the caveats (public ACLs,
 * grants) or lock it against deletion for years: refused. A canned ACL that
 * keeps the object private is allowed.
 */
const S3_REFUSED_HEADERS = /^x-amz-(grant-|object-lock-|bypass-governance-retention$)/;
const S3_PRIVATE_ACLS = new Set(['private', 'bucket-owner-full-control', 'bucket-owner-read']);

const PAYLOAD_MODES: Readonly<Record<string, PayloadMode>> = {
  'UNSIGNED-PAYLOAD': 'unsigned',
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER': 'streaming-unsigned-trailer',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD': 'streaming-signed',
};

/**
 * Headers that make S3 read or change another object than the request's
 * path, with the method that other object's access amounts to. Any other
 * x-amz-*-source header is refused: it is a resource no caveat judged.
 */
const SOURCE_HEADERS: Readonly<Record<string, readonly string[]>> = {
  'x-amz-copy-source': ['GET'],
  // RenameObject (S3 Express) moves the source: it is read and deleted.
  'x-amz-rename-source': ['GET', 'DELETE'],
};

export function planAwsRequest(
  method: string,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  query: string,
  service: string,
): AwsRequestPlan | AwsRequestProblem {
  const invalid = (message: string): AwsRequestProblem => ({
    ok: false,
    code: 'ERR_REQUEST_INVALID',
    message,
  });
  for (const pair of query.slice(1).split('&')) {
    const key = safeDecode(pair.split('=', 1)[0] ?? '');
    // DeleteObjects names its keys in the body, which no path caveat sees.
    if (service === 's3' && method === 'POST' && key.toLowerCase() === 'delete')
      return invalid(
        'multi-object delete (POST ?delete) names its keys in the body, which the gateway does not judge: delete objects one at a time (DELETE /bucket/key)',
      );
    if (
      service === 's3' &&
      method !== 'GET' &&
      method !== 'HEAD' &&
      key !== '' &&
      !S3_WRITE_QUERY_KEYS.has(key)
    )
      return invalid(
        `S3 ?${key.slice(0, 40)} on a ${method} changes how a bucket or object is shared, locked or billed, which the caveats do not judge: refused (docs/aws.md)`,
      );
    if (PRESIGN_PARAMS.has(key.toLowerCase()))
      return invalid(
        `presigned URLs (${key} in the query) cannot pass the gateway: their placeholder keys sign nothing it can re-sign; send the request itself with the SDK (docs/aws.md)`,
      );
  }
  const token = headers['x-amz-security-token'];
  if (token === undefined || (typeof token === 'string' && token.trim() === ''))
    return {
      ok: false,
      code: 'ERR_TOKEN_MISSING',
      message:
        'send a mintfs token as the AWS session token (X-Amz-Security-Token): credential_process = cat /secrets/... (docs/aws.md)',
    };
  if (typeof token !== 'string') return invalid('X-Amz-Security-Token is sent more than once');

  const sha = headers['x-amz-content-sha256'];
  if (Array.isArray(sha)) return invalid('x-amz-content-sha256 is sent more than once');
  let payload: PayloadMode;
  if (sha === undefined) payload = 'compute';
  else if (/^[0-9a-f]{64}$/.test(sha)) payload = 'hash';
  else if (PAYLOAD_MODES[sha] !== undefined) payload = PAYLOAD_MODES[sha];
  else if (sha.startsWith('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'))
    return invalid(
      'x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (signed chunks with a signed trailer) is not re-signed by the gateway: send the request over HTTPS, or let the SDK use its default STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    );
  else
    return invalid(
      `x-amz-content-sha256 ${sha.slice(0, 64)} is not a hex SHA-256, UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD`,
    );

  const extraChecks: ExtraCheck[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-amz-') || value === undefined) continue;
    if (service === 's3' && S3_REFUSED_HEADERS.test(name))
      return invalid(
        `header ${name.slice(0, 64)} would share or lock objects beyond what the caveats judge: refused`,
      );
    if (service === 's3' && name === 'x-amz-acl' && !S3_PRIVATE_ACLS.has(String(value)))
      return invalid(
        `x-amz-acl ${String(value).slice(0, 40)} would share the object beyond what the caveats judge: only private ACLs pass`,
      );
    const methods = SOURCE_HEADERS[name];
    if (methods === undefined) {
      if (name.endsWith('-source'))
        return invalid(
          `header ${name.slice(0, 64)} names another resource, which the gateway cannot judge: refused`,
        );
      continue;
    }
    if (service !== 's3') return invalid(`header ${name} is only judged for S3`);
    if (Array.isArray(value)) return invalid(`header ${name} is sent more than once`);
    const source = sourcePath(value);
    if (typeof source === 'string') return invalid(`header ${name}: ${source}`);
    for (const method of methods) extraChecks.push({ method, ...source, why: name });
  }
  return {
    ok: true,
    token: token.trim(),
    payload,
    ...(sha === undefined ? {} : { contentSha256: sha }),
    extraChecks,
  };
}

/**
 * `bucket/key` or `/bucket/key`, URL-encoded, with an optional `?versionId=`:
 * the path it names as a path-style request would carry it. Access point and
 * Outposts ARNs name resources by another scheme: refused.
 */
function sourcePath(value: string): { rawPath: string; pathSegments: string[] } | string {
  const path = value.trim().replace(/\?versionId=[^&]*$/, '');
  if (/^\/?arn(:|%3A)/i.test(path))
    return 'an ARN as the source is not judged by the gateway: name the bucket and key';
  const rawPath = path.startsWith('/') ? path : `/${path}`;
  // An S3 key, judged exactly as a request's path is (s3-path.ts).
  const keyed = s3Path(rawPath);
  if (!keyed.ok) return `the source is refused: ${keyed.reason}`;
  if (keyed.segments.length < 2) return 'the source must name a bucket and a key';
  return { rawPath, pathSegments: [...keyed.segments] };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
