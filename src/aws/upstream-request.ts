/**
 * The request an AWS upstream gets: the agent's headers without its
 * signature, date and token, the body hash it declared (or the body's own),
 * signed with the real keys.
 */
import type { AwsKeys } from '../credentials/credential.js';
import type { AwsRequestPlan } from './agent-request.js';
import type { ChunkSigning } from './chunk-signer.js';
import type { SigningScope } from './endpoint.js';
import { signRequest } from './sign.js';

/** The agent's signature, date and token never go upstream; the body hash is set from the plan. */
export const AWS_DROPPED_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'x-amz-security-token',
  'x-amz-date',
  'date',
  'x-amz-content-sha256',
]);

export interface UpstreamSigning {
  readonly plan: AwsRequestPlan;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
  /** The headers the gateway forwards (hop-by-hop and the agent's credentials gone). */
  readonly headers: Readonly<Record<string, string | string[]>>;
  /** For `compute`: the whole (bounded) body, hashed for the signature. */
  readonly body?: Buffer | undefined;
  readonly scope: SigningScope;
  readonly keys: AwsKeys;
  readonly now: Date;
}

export interface SignedUpstream {
  readonly headers: Record<string, string>;
  /** For `streaming-signed`: what each chunk's signature chains from. */
  readonly chunks?: ChunkSigning;
}

export async function signUpstream(input: UpstreamSigning): Promise<SignedUpstream> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers)) {
    if (AWS_DROPPED_HEADERS.has(name)) continue;
    // Repeated headers are joined as SigV4 canonicalises them, so what is sent is what is signed.
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const signed = await signRequest({
    method: input.method,
    host: input.host,
    path: input.path,
    query: input.query,
    headers,
    payloadHash: input.plan.contentSha256,
    body: input.body,
    scope: input.scope,
    keys: input.keys,
    now: input.now,
  });
  if (input.plan.payload !== 'streaming-signed') return { headers: signed.headers };
  return {
    headers: signed.headers,
    chunks: {
      seedSignature: signed.signature,
      longDate: signed.longDate,
      credentialScope: signed.credentialScope,
      signString: signed.signString,
    },
  };
}
