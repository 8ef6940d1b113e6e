/**
 * The override rule as a matcher, from the attacker's side: every header
 * built from a family's words, in any case and position, is refused; any name
 * a server could fold into another (anything but letters, digits, dashes) is
 * refused; and the headers real clients send (curl, git, gh, aws-cli, SDKs,
 * browsers) pass.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  OVERRIDE_FAMILIES,
  OVERRIDE_HEADERS,
  overrideEffect,
  overrideProblem,
} from '../../src/gateway/request-overrides.js';

const FAMILY_WORDS = OVERRIDE_FAMILIES.flatMap((family) => family.words);
const PREFIXES = OVERRIDE_FAMILIES.flatMap((family) => family.prefixes ?? []);
const plainWord = fc.stringMatching(/^[a-z0-9]{1,8}$/);
/** Random header names that start with neither exempt namespace. */
const notExempt = (name: string) => !/^x-(amz-meta|goog-meta|stainless)-/.test(name);
const anyCase = (name: string) =>
  fc
    .array(fc.boolean(), { minLength: name.length, maxLength: name.length })
    .map((upper) => [...name].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(''));

/** Headers real clients send; refusing any would break them. */
const EVERYDAY = [
  'accept accept-encoding accept-language user-agent content-type content-length authorization',
  'x-github-api-version git-protocol graphql-features time-zone',
  'x-amz-content-sha256 x-amz-date x-amz-security-token x-amz-server-side-encryption',
  'x-amz-copy-source x-amz-copy-source-range x-amz-meta-source-path x-amz-meta-client-ip',
  'x-amz-checksum-crc32 x-amz-decoded-content-length x-amz-trailer amz-sdk-invocation-id',
  'amz-sdk-request x-amz-user-agent x-amz-expected-bucket-owner x-amz-target x-amzn-trace-id',
  'x-goog-api-client x-goog-user-project x-goog-upload-protocol x-ms-client-request-id',
  'x-ms-version x-stainless-os x-stainless-timeout anthropic-version anthropic-beta',
  'openai-organization mcp-protocol-version mcp-session-id traceparent tracestate baggage',
  'x-request-id idempotency-key if-none-match if-match if-modified-since cache-control',
  'origin referer cookie sec-fetch-mode sec-ch-ua-platform upgrade-insecure-requests',
  'x-requested-with access-control-request-method access-control-request-headers',
  'content-encoding content-disposition docker-distribution-api-version x-api-key',
  'x-client-data proxy-connection proxy-authorization',
  'x-stainless-helper-method x-stainless-poll-helper x-stainless-custom-poll-interval',
]
  .join(' ')
  .split(' ');

describe('override headers: the rule as a matcher', () => {
  it('refuses the names that broke it, and their families', () => {
    for (const name of [
      'CF-Connecting-IP',
      'Fastly-Client-IP',
      'X-ProxyUser-Ip',
      'X-Original-Forwarded-For',
      'X-Method',
      'X-Envoy-External-Address',
      'CloudFront-Viewer-Address',
      'X-Azure-ClientIP',
      'X-Appengine-User-IP',
      'X-Forward-For',
      'X-Originating-IP',
      'WL-Proxy-Client-IP',
      'X-Sucuri-ClientIP',
      'CF-Visitor',
      'X-ARR-SSL',
      'X-Forwarded-Client-Cert',
      'X-SSL-Client-Cert',
      'X-Backend-Host',
      'X-Waws-Unencoded-Url',
      'Fly-Client-IP',
      // Identity an authenticating proxy asserts, and Kubernetes impersonation.
      'X-Consumer-Username',
      'X-Auth-Request-Email',
      'X-Goog-Authenticated-User-Email',
      'X-Amzn-Oidc-Identity',
      'X-MS-Client-Principal-Name',
      'X-WEBAUTH-USER',
      'Impersonate-User',
      'Impersonate-Group',
      'X-Apigw-Api-Id',
      'X-Script-Name',
    ])
      assert.ok(overrideProblem([name, 'x'], ''), name);
  });

  it('refuses any name holding a family word, in any case and position', () => {
    fc.assert(
      fc.property(
        fc.array(plainWord, { maxLength: 3 }),
        fc.constantFrom(...FAMILY_WORDS),
        fc.array(plainWord, { maxLength: 3 }),
        (before, word, after) => {
          const name = [...before, word, ...after].join('-');
          fc.pre(notExempt(name) && !name.startsWith('access-control-request-') && name !== 'host');
          fc.assert(
            fc.property(anyCase(name), (spelled) => {
              assert.ok(overrideProblem([spelled, 'v'], ''), spelled);
            }),
            { numRuns: 5 },
          );
        },
      ),
    );
  });

  it('refuses every name in an intermediary namespace', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PREFIXES), plainWord, (prefix, rest) => {
        assert.ok(overrideEffect(`${prefix}${rest}`), `${prefix}${rest}`);
      }),
    );
  });

  it('refuses any name with a character but letters, digits and dashes', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9-]{0,10}$/),
        fc.constantFrom(..."_.!#$%&'*+^`|~"),
        fc.stringMatching(/^[a-z0-9-]{0,10}$/),
        (before, odd, after) => {
          assert.match(
            overrideProblem([`${before}${odd}${after}`, 'v'], '') ?? '',
            /characters other than letters, digits and dashes/,
          );
        },
      ),
    );
  });

  it('refuses query keys PHP registers as _method', () => {
    for (const query of ['?.method=DELETE', '?%2Emethod=PUT', '?[method=DELETE', '?+.method=x'])
      assert.match(overrideProblem([], query) ?? '', /changes the method/, query);
  });

  it('every name in the table is refused', () => {
    for (const name of OVERRIDE_HEADERS.keys()) assert.ok(overrideProblem([name, 'v'], ''), name);
  });

  it('lets the headers real clients send through', () => {
    for (const name of EVERYDAY) assert.equal(overrideEffect(name), undefined, name);
    assert.equal(
      overrideProblem(
        EVERYDAY.flatMap((name) => [name, 'v']),
        '?page=2&method=x',
      ),
      undefined,
    );
  });
});
