import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sdkEndpointEnv, type SignedUpstream } from '../../src/aws/sdk-endpoints.js';

const upstream = (url: string, sign?: SignedUpstream['sign']): SignedUpstream => ({
  url: new URL(url),
  hosts: [new URL(url).hostname],
  sign,
});
const GW = 'http://127.0.0.1:8787';
const SIGV4 = { kind: 'sigv4' } as const;

describe('AWS SDK endpoint variables for mintfs run', () => {
  it("points each service's variable at the route of the one upstream that signs for it", () => {
    assert.deepEqual(
      sdkEndpointEnv(GW, {
        s3: upstream('https://s3.eu-west-1.amazonaws.com', SIGV4),
        roles: upstream('https://sts.amazonaws.com', SIGV4),
        github: upstream('https://api.github.com'),
        // An S3-compatible store names its service in the config.
        fn: upstream('https://minio.internal', {
          ...SIGV4,
          service: 'lambda',
          region: 'us-east-1',
        }),
      }),
      {
        AWS_ENDPOINT_URL_S3: `${GW}/s3`,
        AWS_ENDPOINT_URL_STS: `${GW}/roles`,
        AWS_ENDPOINT_URL_LAMBDA: `${GW}/fn`,
      },
    );
  });

  it('sets nothing it would have to guess: two upstreams for one service, a service id that differs', () => {
    assert.deepEqual(
      sdkEndpointEnv(GW, {
        east: upstream('https://s3.us-east-1.amazonaws.com', SIGV4),
        west: upstream('https://s3.us-west-2.amazonaws.com', SIGV4),
        // Bedrock Runtime signs as `bedrock`: its variable is AWS_ENDPOINT_URL_BEDROCK_RUNTIME.
        model: upstream('https://bedrock-runtime.us-east-1.amazonaws.com', SIGV4),
      }),
      {},
    );
  });
});
