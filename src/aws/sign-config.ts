/**
 * `sign:` on an upstream: `sigv4` signs for the service and region found
 * from the host the agent named (endpoint.ts); `{ sigv4: { service, region } }`
 * names them, for an endpoint whose name does not say (an S3-compatible
 * store, a VPC endpoint, a test stand-in).
 */
import * as z from 'zod';
import { textOf } from '../config/yaml-config.js';
import { signingScopeOf, type SigningScope } from './endpoint.js';

const SIGNING_PART = /^[a-z0-9-]{1,64}$/;

export const SignSchema = z
  .union([
    z.literal('sigv4'),
    z.strictObject({
      sigv4: z
        .strictObject({
          service: z
            .string(textOf('a signing name such as s3'))
            .regex(SIGNING_PART, 'must be a signing name such as s3')
            .optional()
            .describe("The service's signing name (default: from the host)"),
          region: z
            .string(textOf('a region such as us-east-1'))
            .regex(SIGNING_PART, 'must be a region such as us-east-1')
            .optional()
            .describe('The region (default: from the host)'),
        })
        .describe('SigV4 with the service or region named'),
    }),
  ])
  .transform((sign): SignConfig =>
    sign === 'sigv4' ? { kind: 'sigv4' } : { kind: 'sigv4', ...sign.sigv4 },
  )
  .describe(
    'Re-sign each request with AWS Signature V4 and the `credential: { aws }` keys instead of injecting a header (docs/aws.md): `sigv4`, or { sigv4: { service, region } } where the host does not name them',
  );

export interface SignConfig {
  readonly kind: 'sigv4';
  readonly service?: string | undefined;
  readonly region?: string | undefined;
}

/** The scope a request to `host` is signed for, or undefined when neither the config nor the host says. */
export function scopeFor(sign: SignConfig, host: string): SigningScope | undefined {
  const found = signingScopeOf(host);
  const service = sign.service ?? found?.service;
  const region = sign.region ?? found?.region;
  return service === undefined || region === undefined ? undefined : { service, region };
}
