/**
 * Signing a request for its upstream with the real keys, by AWS's own SigV4
 * signer (@smithy/signature-v4, what the JS SDK v3 signs with), hashing with
 * node:crypto (as @smithy/hash-node does: the pure-JS hash would cost a core
 * per 100 MB/s of signed chunks).
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsKeys } from '../credentials/credential.js';
import type { SigningScope } from './endpoint.js';

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytesOf(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** SHA-256 and HMAC-SHA256 by node:crypto, in the shape the signer asks for. */
export class NodeSha256 {
  readonly #secret: Buffer | undefined;
  #hash: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? undefined : bytesOf(secret);
    this.#hash = this.#fresh();
  }

  update(data: Uint8Array): void {
    this.#hash.update(data);
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }

  reset(): void {
    this.#hash = this.#fresh();
  }

  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }
}

export interface SignRequest {
  readonly method: string;
  /** The Host the upstream gets (with a port when not the scheme's default). */
  readonly host: string;
  /** The path as sent upstream (percent-encoded as the client sent it). */
  readonly path: string;
  /** The raw query with its `?`, or ''. */
  readonly query: string;
  /** Headers to send, lower-case names, one value each (the signer signs them all but a few). */
  readonly headers: Readonly<Record<string, string>>;
  /** x-amz-content-sha256 as it goes upstream; absent: hash `body`. */
  readonly payloadHash?: string | undefined;
  readonly body?: Buffer | undefined;
  readonly scope: SigningScope;
  readonly keys: AwsKeys;
  readonly now: Date;
}

export interface SignedRequest {
  /** The headers to send: the request's, with authorization, x-amz-date and the session token. */
  readonly headers: Record<string, string>;
  /** The request's signature: the seed of a signed-chunk body's chain. */
  readonly signature: string;
  /** Signs a string with this request's derived key (chunk and trailer signatures). */
  readonly signString: (stringToSign: string) => Promise<string>;
  /** `20261207T041500Z` and `20261207/us-east-1/s3/aws4_request`. */
  readonly longDate: string;
  readonly credentialScope: string;
}

export async function signRequest(request: SignRequest): Promise<SignedRequest> {
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: request.keys.accessKeyId,
      secretAccessKey: request.keys.secretAccessKey,
      ...(request.keys.sessionToken === undefined
        ? {}
        : { sessionToken: request.keys.sessionToken }),
    },
    region: request.scope.region,
    service: request.scope.service,
    sha256: NodeSha256,
    // S3 signs the path as sent; every other service signs it encoded once more.
    uriEscapePath: request.scope.service !== 's3',
    // S3 wants the body hash as a header; other services get no header their client did not send.
    applyChecksum: request.scope.service === 's3',
  });
  const headers: Record<string, string> = { ...request.headers, host: request.host };
  if (request.payloadHash !== undefined) headers['x-amz-content-sha256'] = request.payloadHash;
  const [hostname, port] = splitHost(request.host);
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: 'https:',
      hostname,
      ...(port === undefined ? {} : { port }),
      path: request.path,
      query: parseQuery(request.query),
      headers,
      body: request.body,
    },
    {
      signingDate: request.now,
      signingRegion: request.scope.region,
      signingService: request.scope.service,
    },
  );
  const out = signed.headers as Record<string, string>;
  const authorization = out.authorization ?? '';
  const signature = /Signature=([0-9a-f]{64})$/.exec(authorization)?.[1] ?? '';
  const longDate = out['x-amz-date'] ?? '';
  const credentialScope = `${longDate.slice(0, 8)}/${request.scope.region}/${request.scope.service}/aws4_request`;
  return {
    headers: out,
    signature,
    longDate,
    credentialScope,
    signString: (stringToSign) =>
      signer.sign(stringToSign, {
        signingDate: request.now,
        signingRegion: request.scope.region,
        signingService: request.scope.service,
      }),
  };
}

function splitHost(host: string): [string, number | undefined] {
  const match = /^(.*):(\d+)$/.exec(host);
  if (match === null || host.endsWith(']')) return [host, undefined];
  return [match[1] as string, Number(match[2])];
}

/**
 * The query as the signer wants it: decoded keys and values, a key without
 * `=` as an empty value (S3's `?uploads` is signed as `uploads=`), repeats as
 * a list. The request goes upstream with the raw query; the upstream decodes
 * it the same way before it checks the signature.
 */
export function parseQuery(query: string): Record<string, string | string[]> {
  // No prototype: a `__proto__` key is a key like any other.
  const out = Object.create(null) as Record<string, string | string[]>;
  if (query.length <= 1) return out;
  for (const pair of query.slice(1).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1));
    const existing = out[key];
    if (existing === undefined) out[key] = value;
    else out[key] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return out;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // An undecodable escape is signed as it stands; the upstream refuses what does not match.
    return text;
  }
}
