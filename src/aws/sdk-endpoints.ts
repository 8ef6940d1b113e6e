/**
 * The AWS SDKs' per-service endpoint variables (`AWS_ENDPOINT_URL_S3`, ...)
 * pointed at the gateway's routes, for `mintfs run` to set in the sandbox.
 * The JS SDK v3 ignores proxy variables, so a route is its only way to the
 * gateway; aws-cli, boto3 and the Go SDK read the same variables and take
 * the route too (one path for every SDK in the sandbox).
 *
 * A variable's suffix is the SDK's service id, not the signing name: they
 * agree for the services below; where they do not (Bedrock Runtime signs as
 * `bedrock`) or two upstreams sign for one service, nothing is set rather
 * than a guess that sends a client to the wrong upstream. The generic
 * AWS_ENDPOINT_URL is never set: it would send every other service there too.
 * Pure.
 */
import { scopeFor, type SignConfig } from './sign-config.js';

/** Signing name → the variable its SDK service id gives. */
const ENDPOINT_VARIABLES: Readonly<Record<string, string>> = {
  s3: 'AWS_ENDPOINT_URL_S3',
  sts: 'AWS_ENDPOINT_URL_STS',
  lambda: 'AWS_ENDPOINT_URL_LAMBDA',
  dynamodb: 'AWS_ENDPOINT_URL_DYNAMODB',
  sqs: 'AWS_ENDPOINT_URL_SQS',
  sns: 'AWS_ENDPOINT_URL_SNS',
  kms: 'AWS_ENDPOINT_URL_KMS',
};

export interface SignedUpstream {
  readonly url: URL;
  readonly hosts: readonly string[];
  readonly sign?: SignConfig | undefined;
}

/** `{ AWS_ENDPOINT_URL_S3: GATEWAY/NAME, ... }` for each service one upstream signs for. */
export function sdkEndpointEnv(
  gateway: string,
  upstreams: Readonly<Record<string, SignedUpstream>>,
): Record<string, string> {
  const routes = new Map<string, string[]>();
  for (const [name, upstream] of Object.entries(upstreams)) {
    if (upstream.sign === undefined) continue;
    const scope =
      scopeFor(upstream.sign, upstream.url.hostname) ??
      upstream.hosts.map((host) => scopeFor(upstream.sign as SignConfig, host)).find(Boolean);
    const variable = scope === undefined ? undefined : ENDPOINT_VARIABLES[scope.service];
    if (variable === undefined) continue;
    routes.set(variable, [...(routes.get(variable) ?? []), name]);
  }
  const env: Record<string, string> = {};
  for (const [variable, names] of routes)
    if (names.length === 1) env[variable] = `${gateway}/${names[0] as string}`;
  return env;
}
