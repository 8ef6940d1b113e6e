/**
 * The AWS signing parts, pure: the scope a host is signed for, what an
 * agent's request asks (token, payload mode, other resources it names), the
 * signer against AWS's published SigV4 examples, and signed chunks re-signed
 * as they stream, against AWS's own chunked-upload example and against a
 * reference chain for any framing and any way the body is cut.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { planAwsRequest } from '../../src/aws/agent-request.js';
import { ChunkResigner } from '../../src/aws/chunk-signer.js';
import { signingScopeOf } from '../../src/aws/endpoint.js';
import { parseQuery, signRequest } from '../../src/aws/sign.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { MintfsError } from '../../src/errors.js';
import { sessionNameFor } from '../../src/aws/assume-role.js';
import { CredentialStore } from '../../src/gateway/credentials.js';
import { createLogger } from '../../src/log/logger.js';
import { awsPoliciesOf, parseCaveat } from '../../src/token/caveats.js';

describe('the scope a host is signed for', () => {
  const cases: Array<[string, string, string] | [string]> = [
    ['s3.us-east-1.amazonaws.com', 's3', 'us-east-1'],
    ['s3.amazonaws.com', 's3', 'us-east-1'],
    ['bucket.s3.eu-west-1.amazonaws.com', 's3', 'eu-west-1'],
    ['s3-us-west-2.amazonaws.com', 's3', 'us-west-2'],
    ['s3.dualstack.ap-south-1.amazonaws.com', 's3', 'ap-south-1'],
    ['sts.amazonaws.com', 'sts', 'us-east-1'],
    ['sts.eu-central-1.amazonaws.com', 'sts', 'eu-central-1'],
    ['bedrock-runtime.us-west-2.amazonaws.com', 'bedrock', 'us-west-2'],
    ['runtime.sagemaker.us-east-1.amazonaws.com', 'sagemaker', 'us-east-1'],
    ['lambda.us-gov-west-1.amazonaws.com', 'lambda', 'us-gov-west-1'],
    ['dynamodb.cn-north-1.amazonaws.com.cn', 'dynamodb', 'cn-north-1'],
    ['iam.amazonaws.com', 'iam', 'us-east-1'],
    // Not a name SDKs derive a scope from: the config must say.
    ['lambda.amazonaws.com'],
    ['example.com'],
    ['amazonaws.com.example.com'],
  ];
  for (const [host, service, region] of cases)
    it(`${host} -> ${service ?? 'none'}`, () => {
      assert.deepEqual(
        signingScopeOf(host),
        service === undefined ? undefined : { service, region },
      );
    });
});

describe("what an agent's AWS request asks", () => {
  const headers = (extra: Record<string, string | string[]> = {}) => ({
    'x-amz-security-token': 'TOKEN',
    'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    ...extra,
  });
  const problem = (result: ReturnType<typeof planAwsRequest>) =>
    result.ok ? 'allowed' : result.message;

  it('takes the token from X-Amz-Security-Token, and only one', () => {
    const plan = planAwsRequest('GET', headers(), '', 's3');
    assert.ok(plan.ok);
    assert.equal(plan.token, 'TOKEN');
    assert.equal(plan.payload, 'unsigned');
    const missing = planAwsRequest('GET', {}, '', 's3');
    assert.equal(missing.ok ? '' : missing.code, 'ERR_TOKEN_MISSING');
    assert.match(
      problem(planAwsRequest('GET', headers({ 'x-amz-security-token': ['A', 'B'] }), '', 's3')),
      /more than once/,
    );
  });

  it('keeps each payload mode as sent, and refuses others', () => {
    const mode = (sha: string) => {
      const plan = planAwsRequest('PUT', headers({ 'x-amz-content-sha256': sha }), '', 's3');
      return plan.ok ? plan.payload : plan.message;
    };
    assert.equal(mode('a'.repeat(64)), 'hash');
    assert.equal(mode('STREAMING-UNSIGNED-PAYLOAD-TRAILER'), 'streaming-unsigned-trailer');
    assert.equal(mode('STREAMING-AWS4-HMAC-SHA256-PAYLOAD'), 'streaming-signed');
    assert.match(mode('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'), /not re-signed/);
    assert.match(mode('STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD'), /is not a hex SHA-256/);
    assert.match(mode('A'.repeat(64)), /is not a hex SHA-256/);
    const none = planAwsRequest('POST', { 'x-amz-security-token': 'T' }, '', 'lambda');
    assert.equal(none.ok ? none.payload : '', 'compute');
  });

  it('judges the source of a copy or rename as a request of its own', () => {
    const copy = planAwsRequest(
      'PUT',
      headers({ 'x-amz-copy-source': 'bucket/private/a%20b?versionId=3' }),
      '',
      's3',
    );
    assert.ok(copy.ok);
    assert.deepEqual(
      copy.extraChecks.map((c) => [c.method, c.rawPath, c.pathSegments]),
      [['GET', '/bucket/private/a%20b', ['bucket', 'private', 'a b']]],
    );
    const rename = planAwsRequest('PUT', headers({ 'x-amz-rename-source': '/bucket/x' }), '', 's3');
    assert.deepEqual(rename.ok ? rename.extraChecks.map((c) => c.method) : [], ['GET', 'DELETE']);
    for (const source of [
      'arn:aws:s3:us-east-1:1:accesspoint/ap/object/k',
      'bucket/../other/k',
      'bucket',
      'bucket/k?x=1',
    ])
      assert.notEqual(
        problem(planAwsRequest('PUT', headers({ 'x-amz-copy-source': source }), '', 's3')),
        'allowed',
        source,
      );
    assert.match(
      problem(planAwsRequest('PUT', headers({ 'x-amz-other-source': 'b/k' }), '', 's3')),
      /names another resource/,
    );
  });

  it('refuses presigned URLs and multi-object delete', () => {
    for (const query of ['?X-Amz-Signature=0', '?x-amz-credential=a', '?X-Amz-Security-Token=t'])
      assert.match(problem(planAwsRequest('GET', headers(), query, 's3')), /presigned/);
    assert.match(problem(planAwsRequest('POST', headers(), '?delete', 's3')), /one at a time/);
    assert.equal(problem(planAwsRequest('POST', headers(), '?uploads', 's3')), 'allowed');
  });
});

describe('S3 requests that would share, lock or bill beyond the caveats', () => {
  const headers = (extra: Record<string, string> = {}) => ({
    'x-amz-security-token': 'TOKEN',
    'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    ...extra,
  });
  const allowed = (method: string, query: string, extra?: Record<string, string>) =>
    planAwsRequest(method, headers(extra), query, 's3').ok;

  it('refuses configuration subresources on writes, allows them on reads', () => {
    for (const query of ['?acl', '?policy', '?retention', '?tagging', '?restore', '?website'])
      for (const method of ['PUT', 'POST', 'DELETE']) assert.equal(allowed(method, query), false);
    assert.equal(allowed('GET', '?acl'), true);
    assert.equal(allowed('PUT', '?partNumber=1&uploadId=x'), true);
    assert.equal(allowed('PUT', '?x-id=PutObject'), true);
    assert.equal(allowed('DELETE', '?uploadId=x'), true);
  });

  it('refuses public ACLs, grants and object locks; a private ACL passes', () => {
    assert.equal(allowed('PUT', '', { 'x-amz-acl': 'public-read' }), false);
    assert.equal(allowed('PUT', '', { 'x-amz-grant-read': 'uri=x' }), false);
    assert.equal(allowed('PUT', '', { 'x-amz-object-lock-mode': 'COMPLIANCE' }), false);
    assert.equal(allowed('DELETE', '', { 'x-amz-bypass-governance-retention': 'true' }), false);
    assert.equal(allowed('PUT', '', { 'x-amz-acl': 'bucket-owner-full-control' }), true);
  });
});

describe('the query as signed', () => {
  it('is the decoded pairs, a bare key as an empty value, __proto__ a key like any other', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ minLength: 1 }), fc.string()), { maxLength: 8 }),
        (pairs) => {
          const query = `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`;
          const parsed = parseQuery(query);
          const expected = new Map<string, string[]>();
          for (const [k, v] of pairs) expected.set(k, [...(expected.get(k) ?? []), v]);
          for (const [k, values] of expected)
            assert.deepEqual(
              Object.getOwnPropertyDescriptor(parsed, k)?.value,
              values.length === 1 ? values[0] : values,
            );
          assert.equal(Object.keys(parsed).length, expected.size);
        },
      ),
    );
    assert.deepEqual({ ...parseQuery('?uploads') }, { uploads: '' });
    assert.equal(Object.getPrototypeOf(parseQuery('?__proto__=x')), null);
  });
});

// AWS's published examples (the SigV4 test suite's get-vanilla; S3's signing examples).
const SUITE_KEYS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const S3_KEYS = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
};

describe('the signer against AWS examples', () => {
  it('get-vanilla (SigV4 test suite)', async () => {
    const signed = await signRequest({
      method: 'GET',
      host: 'example.amazonaws.com',
      path: '/',
      query: '',
      headers: {},
      scope: { service: 'service', region: 'us-east-1' },
      keys: SUITE_KEYS,
      now: new Date('2015-08-30T12:36:00Z'),
    });
    assert.equal(
      signed.signature,
      '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });

  it("S3's GET Object example", async () => {
    const signed = await signRequest({
      method: 'GET',
      host: 'examplebucket.s3.amazonaws.com',
      path: '/test.txt',
      query: '',
      headers: { range: 'bytes=0-9' },
      payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      scope: { service: 's3', region: 'us-east-1' },
      keys: S3_KEYS,
      now: new Date('2013-05-24T00:00:00Z'),
    });
    assert.equal(
      signed.signature,
      'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });
});

/** A reference chunk chain: SigV4's key derivation and chunk string-to-sign, by hand. */
function referenceChunkSignatures(
  secret: string,
  date: string,
  scope: string,
  seed: string,
  chunks: readonly Buffer[],
): string[] {
  const hmac = (key: Buffer | string, text: string) =>
    createHmac('sha256', key).update(text).digest();
  const [day, region, service] = scope.split('/') as [string, string, string];
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
  const empty = createHash('sha256').digest('hex');
  let previous = seed;
  return chunks.map((chunk) => {
    const hash = createHash('sha256').update(chunk).digest('hex');
    previous = hmac(
      key,
      ['AWS4-HMAC-SHA256-PAYLOAD', date, scope, previous, empty, hash].join('\n'),
    ).toString('hex');
    return previous;
  });
}

function frame(chunks: readonly Buffer[], signatures: readonly string[]): Buffer {
  return Buffer.concat(
    chunks.flatMap((chunk, i) => [
      Buffer.from(`${chunk.length.toString(16)};chunk-signature=${signatures[i]}\r\n`),
      chunk,
      Buffer.from('\r\n'),
    ]),
  );
}

async function resign(
  input: Buffer,
  pieces: readonly number[],
  signing: {
    seed: string;
    date: string;
    scope: string;
    signString: (s: string) => Promise<string>;
  },
): Promise<Buffer> {
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of pieces) {
    if (at >= input.length) break;
    parts.push(input.subarray(at, at + size));
    at += size;
  }
  if (at < input.length) parts.push(input.subarray(at));
  const out: Buffer[] = [];
  const stage = Readable.from(parts).pipe(
    new ChunkResigner({
      seedSignature: signing.seed,
      longDate: signing.date,
      credentialScope: signing.scope,
      signString: signing.signString,
    }),
  );
  for await (const chunk of stage) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

describe('signed chunks signed again as they stream', () => {
  it("S3's chunked upload example", async () => {
    const signed = await signRequest({
      method: 'PUT',
      host: 's3.amazonaws.com',
      path: '/examplebucket/chunkObject.txt',
      query: '',
      headers: {
        'content-encoding': 'aws-chunked',
        'content-length': '66824',
        'x-amz-decoded-content-length': '66560',
        'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      },
      payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      scope: { service: 's3', region: 'us-east-1' },
      keys: S3_KEYS,
      now: new Date('2013-05-24T00:00:00Z'),
    });
    assert.equal(
      signed.signature,
      '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
    );
    const chunks = [Buffer.alloc(65536, 'a'), Buffer.alloc(1024, 'a'), Buffer.alloc(0)];
    const agent = frame(
      chunks,
      chunks.map(() => '0'.repeat(64)),
    );
    assert.equal(agent.length, 66824);
    const out = await resign(agent, [1000, 70000], {
      seed: signed.signature,
      date: signed.longDate,
      scope: signed.credentialScope,
      signString: signed.signString,
    });
    assert.ok(
      out.equals(
        frame(chunks, [
          'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
          '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
          'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
        ]),
      ),
    );
  });

  it('any framing, cut anywhere, comes out the same length with the reference chain', async () => {
    const signed = await signRequest({
      method: 'PUT',
      host: 's3.us-east-1.amazonaws.com',
      path: '/b/k',
      query: '',
      headers: {},
      payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      scope: { service: 's3', region: 'us-east-1' },
      keys: S3_KEYS,
      now: new Date('2026-12-07T00:00:00Z'),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 40 }),
        async (datas, pieces) => {
          const chunks = [...datas.map((d) => Buffer.from(d)), Buffer.alloc(0)];
          const agent = frame(
            chunks,
            chunks.map(() => 'f'.repeat(64)),
          );
          const out = await resign(agent, pieces, {
            seed: signed.signature,
            date: signed.longDate,
            scope: signed.credentialScope,
            signString: signed.signString,
          });
          const expected = referenceChunkSignatures(
            S3_KEYS.secretAccessKey,
            signed.longDate,
            signed.credentialScope,
            signed.signature,
            chunks,
          );
          assert.ok(out.equals(frame(chunks, expected)));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('refuses a body that is not aws-chunked, ends inside a chunk, or goes on after the last', async () => {
    const signing = {
      seed: '0'.repeat(64),
      date: '20261207T000000Z',
      scope: '20261207/us-east-1/s3/aws4_request',
      signString: () => Promise.resolve('1'.repeat(64)),
    };
    const sig = '0'.repeat(64);
    for (const body of [
      'hello world',
      `5;chunk-signature=${sig}\r\nhel`,
      `0;chunk-signature=${sig}\r\n\r\nmore`,
      `5;chunk-signature=${sig};x=1\r\nhello\r\n0;chunk-signature=${sig}\r\n\r\n`,
      `5;chunk-signature=${sig}\r\nhelloXX0;chunk-signature=${sig}\r\n\r\n`,
      `ffffffff;chunk-signature=${sig}\r\n`,
    ])
      await assert.rejects(resign(Buffer.from(body), [7], signing), body.slice(0, 20));
  });
});

describe('sign: sigv4 in the gateway config', () => {
  const config = (upstream: string) =>
    `listen: [127.0.0.1:0]\nupstreams:\n  s3:\n${upstream
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n')}\n`;
  const keys = 'credential: { aws: { accessKeyId: { env: K }, secretAccessKey: { env: S } } }';
  const problem = (text: string) => {
    try {
      parseGatewayConfig(config(text), '/etc/mintfs/gateway.yaml');
      return 'accepted';
    } catch (err) {
      assert.ok(err instanceof MintfsError);
      return err.message;
    }
  };

  it('accepts AWS keys with sign: sigv4 for a host that names its scope', () => {
    assert.equal(
      problem(`url: https://s3.us-east-1.amazonaws.com\nsign: sigv4\n${keys}`),
      'accepted',
    );
  });
  it('asks for the scope when the host does not name it', () => {
    assert.match(problem(`url: https://minio.local\nsign: sigv4\n${keys}`), /service, region/);
    assert.equal(
      problem(
        `url: https://minio.local\nsign: { sigv4: { service: s3, region: us-east-1 } }\n${keys}`,
      ),
      'accepted',
    );
  });
  it('refuses keys without sign, sign without keys, and inject beside sign', () => {
    assert.match(problem(`url: https://s3.amazonaws.com\n${keys}`), /add sign: sigv4/);
    assert.match(
      problem('url: https://s3.amazonaws.com\nsign: sigv4\ncredential: { env: X }'),
      /signs with AWS keys/,
    );
    assert.match(
      problem(`url: https://s3.amazonaws.com\nsign: sigv4\ninject: "X: {credential}"\n${keys}`),
      /injects nothing/,
    );
    assert.match(
      problem(
        'url: https://s3.amazonaws.com\nsign: sigv4\ncredential: { aws: { accessKeyId: { command: [x] }, secretAccessKey: { env: S } } }',
      ),
      /\{ file: PATH \} or \{ env: NAME \}/,
    );
  });
});

describe('the aws-policy caveat and role sessions', () => {
  it('parses one policy name; reports every distinct name a token carries', () => {
    const ok = parseCaveat('aws-policy read-reports');
    assert.ok(ok.ok);
    for (const bad of ['aws-policy', 'aws-policy a b', 'aws-policy a/b'])
      assert.equal(parseCaveat(bad).ok, false, bad);
    const caveats = ['aws-policy a', 'aws-policy b', 'aws-policy a'].map((text) => {
      const parsed = parseCaveat(text);
      assert.ok(parsed.ok);
      return parsed.caveat;
    });
    assert.deepEqual(awsPoliciesOf(caveats), ['a', 'b']);
    assert.equal(awsPoliciesOf([]), undefined);
  });

  it('names each session for its agent, within STS rules', () => {
    assert.equal(sessionNameFor('demo-agent'), 'mintfs-demo-agent');
    assert.equal(sessionNameFor(''), 'mintfs-token');
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (agent) => {
        assert.match(sessionNameFor(agent), /^[\w+=,.@-]{2,64}$/);
      }),
    );
  });

  it('a session policy on a token sent to static keys is refused', () => {
    const config = parseGatewayConfig(
      'listen: [127.0.0.1:0]\nupstreams:\n  s3:\n    url: https://s3.amazonaws.com\n    sign: sigv4\n    credential: { aws: { accessKeyId: { env: K }, secretAccessKey: { env: S } } }\n',
      '/etc/mintfs/gateway.yaml',
    );
    const store = new CredentialStore(config.upstreams, createLogger({ level: 'silent' }), {
      env: { K: 'AKIAEXAMPLEKEYID0000', S: 'secret' },
    });
    assert.throws(
      () => store.obtain('s3', 'agent', { awsPolicies: ['read'] }),
      (err: MintfsError) => err.code === 'ERR_CAVEAT_UNSATISFIED',
    );
    assert.equal(store.obtain('s3', 'agent', {}) instanceof Promise, false);
    void store.close();
  });
});
