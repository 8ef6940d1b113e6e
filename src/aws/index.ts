/**
 * AWS through the gateway (docs/aws.md): the one entry point the gateway
 * pipeline calls for upstreams with `sign: sigv4`. The agent signs with
 * placeholder keys and sends its token as the session token; the gateway
 * judges the request, drops the agent's signature, and signs it again with
 * the real keys for the service and region of the host.
 */
export {
  AwsCredentialSchema,
  isAwsCredential,
  openAwsCredential,
  openAwsKeys,
  resolveAwsPaths,
  type AwsCredentialConfig,
} from './credential-config.js';
export { SignSchema, type SignConfig, scopeFor } from './sign-config.js';
export { planAwsRequest, type AwsRequestPlan, type PayloadMode } from './agent-request.js';
export { signingScopeOf, type SigningScope } from './endpoint.js';
export { sdkEndpointEnv } from './sdk-endpoints.js';
export { s3Path, encodeS3Segment, type S3Path } from './s3-path.js';
export { awsErrorRenderer, type ErrorRenderer } from './error-shape.js';
export { signUpstream, AWS_DROPPED_HEADERS } from './upstream-request.js';
export { ChunkResigner, ChunkSignatureError } from './chunk-signer.js';
