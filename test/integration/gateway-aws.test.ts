/**
 * AWS through the gateway, end to end with real clients: aws-cli, boto3 and
 * the JS SDK v3 read their credentials with `credential_process = cat` from a
 * real mount, sign with its placeholder keys, and reach a TLS S3 stand-in
 * that checks every signature (and every chunk signature and checksum
 * trailer) with botocore's signer and the real secret. Through a gateway
 * route (AWS_ENDPOINT_URL) and through interception (HTTPS_PROXY).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { writeFileAtomic } from '../../src/keys/atomic-write.js';
import {
  AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY,
  startAwsStandin,
  type AwsStandin,
} from '../helpers/aws-standin.js';
import { startGatewayFixture, type GatewayFixture } from '../helpers/gateway-fixture.js';
import { startMountFixture, type MountFixture } from '../helpers/mount-fixture.js';
import { runAsync } from '../helpers/spawn.js';
import { runCli } from '../helpers/cli.js';
import { pollUntil } from '../helpers/poll.js';
import { suiteTeardown, teardownOf, tempDir } from '../helpers/temp.js';
import { CLI } from '../helpers/paths.js';
import { makeTestPki } from '../helpers/tls.js';

const S3_HOSTS = ['s3.us-east-1.amazonaws.com', 's3.amazonaws.com'];

const PROFILE = `agent: aws-agent
ttl: 5m
files:
  aws/credentials:
    service: s3
    hosts: [${S3_HOSTS.join(', ')}]
    methods: [GET, HEAD, PUT, POST]
    paths: ["/bucket", "/bucket/allowed/**"]
    format: aws-credential-process
`;

/** The environment without the machine's own AWS settings. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('AWS_') && !/^(https?|no)_proxy$/i.test(name),
    ),
  );
}

/**
 * A PUT with a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body as SDKs send it over
 * plain HTTP: 128 KiB chunks, each "signed" with the placeholder key (zeros
 * here: the gateway must replace every one, or the stand-in refuses it).
 */
function putSignedChunks(
  url: string,
  token: string,
  data: Buffer,
): Promise<{ status: number; text: string }> {
  const placeholder = '0'.repeat(64);
  const sizes: number[] = [];
  for (let left = data.length; left > 0; left -= 131_072) sizes.push(Math.min(left, 131_072));
  sizes.push(0);
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${placeholder}\r\n`));
    parts.push(data.subarray(at, at + size), Buffer.from('\r\n'));
    at += size;
  }
  const body = Buffer.concat(parts);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'PUT',
        headers: {
          authorization: `AWS4-HMAC-SHA256 Credential=MINTFSPLACEHOLDER/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${placeholder}`,
          'x-amz-security-token': token,
          'x-amz-date': '20260101T000000Z',
          'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': String(data.length),
          'content-length': String(body.length),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('AWS through the gateway', { concurrency: false }, () => {
  const teardown = suiteTeardown();
  let dir: string;
  let gw: GatewayFixture;
  let standin: AwsStandin;
  let mount: MountFixture;
  let viaRoute: NodeJS.ProcessEnv;
  let viaProxy: NodeJS.ProcessEnv;
  let direct: NodeJS.ProcessEnv;

  before(async () => {
    dir = tempDir(teardown);
    const pki = makeTestPki(dir);
    standin = await startAwsStandin(pki, dir, teardown);
    writeFileAtomic(join(dir, 'aws-key-id'), `${AWS_ACCESS_KEY_ID}\n`, { mode: 0o600 });
    writeFileAtomic(join(dir, 'aws-secret'), `${AWS_SECRET_ACCESS_KEY}\n`, { mode: 0o600 });
    gw = await startGatewayFixture(teardown, {
      intercept: {
        hosts: ['api.github.com'],
        otherHosts: [...S3_HOSTS, 'lambda.us-east-1.amazonaws.com'],
      },
      topLevel: ['approval:', '  socket: ./approvals.sock', '  timeout: 60s'].join('\n'),
      extraUpstreams: [
        '  s3:',
        `    url: ${standin.url}`,
        `    hosts: [${S3_HOSTS.join(', ')}]`,
        '    sign: sigv4',
        `    credential: { aws: { accessKeyId: { file: ${join(dir, 'aws-key-id')} }, secretAccessKey: { file: ${join(dir, 'aws-secret')} } } }`,
        `    ca: ${pki.caFile}`,
        '    partialResponses: allow',
        '  lambda:',
        `    url: ${standin.url}`,
        '    hosts: [lambda.us-east-1.amazonaws.com]',
        '    sign: sigv4',
        `    credential: { aws: { accessKeyId: { file: ${join(dir, 'aws-key-id')} }, secretAccessKey: { file: ${join(dir, 'aws-secret')} } } }`,
        `    ca: ${pki.caFile}`,
      ].join('\n'),
    });
    mount = await startMountFixture(teardown, PROFILE, { keysDir: gw.keysDir });
    const config = join(dir, 'aws-config');
    writeFileSync(
      config,
      [
        '[default]',
        'region = us-east-1',
        `credential_process = cat ${join(mount.mountpoint, 'aws/credentials')}`,
        's3 =',
        '    addressing_style = path',
        '',
      ].join('\n'),
    );
    const base = {
      ...cleanEnv(),
      AWS_CONFIG_FILE: config,
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    viaRoute = { ...base, AWS_ENDPOINT_URL: `${gw.base}/s3` };
    viaProxy = { ...base, HTTPS_PROXY: gw.base, AWS_CA_BUNDLE: gw.interceptCa };
    // The test's own admin access, straight to the stand-in with the real key.
    direct = {
      ...cleanEnv(),
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: standin.url,
      AWS_CA_BUNDLE: pki.caFile,
    };
  });

  const aws = (env: NodeJS.ProcessEnv, ...args: string[]) => {
    // Progress lines would fill stderr; only the transfer commands take the flag.
    const quiet = ['cp', 'rm', 'mv'].includes(args[1] ?? '') ? ['--only-show-errors'] : [];
    return runAsync('aws', [...args, ...quiet], undefined, env, dir, 120_000);
  };
  const awsOk = async (env: NodeJS.ProcessEnv, ...args: string[]) => {
    const done = await aws(env, ...args);
    assert.equal(done.code, 0, `aws ${args.join(' ')}: ${done.stderr}`);
    return done.stdout;
  };
  const file = (name: string, bytes: number): string => {
    const path = join(dir, name);
    writeFileSync(path, randomBytes(bytes));
    return path;
  };
  const sameBytes = (a: string, b: string) =>
    assert.ok(readFileSync(a).equals(readFileSync(b)), `${a} and ${b} differ`);
  const entriesFor = (target: string) => standin.entries().filter((e) => e.target === target);

  it('aws s3 cp up and down and ls through a gateway route (AWS_ENDPOINT_URL), signed with the real key', async () => {
    const up = file('small', 200_000);
    await awsOk(viaRoute, 's3', 'cp', up, 's3://bucket/allowed/small');
    const down = join(dir, 'small.down');
    await awsOk(viaRoute, 's3', 'cp', 's3://bucket/allowed/small', down);
    sameBytes(up, down);
    const listed = await awsOk(viaRoute, 's3', 'ls', 's3://bucket/allowed/');
    assert.match(listed, /\b200000 small\b/);
    const put = entriesFor('/bucket/allowed/small').find((e) => e.method === 'PUT');
    assert.equal(put?.refused, undefined, put?.reason);
    assert.equal(put?.accessKeyId, AWS_ACCESS_KEY_ID);
    // Neither the key nor the secret is in the gateway's log.
    assert.ok(!gw.stderr().includes(AWS_SECRET_ACCESS_KEY));
    assert.ok(!gw.stderr().includes(AWS_ACCESS_KEY_ID));
  });

  it('through interception (HTTPS_PROXY): aws-chunked uploads with CRC trailers pass intact, multipart too', async () => {
    const medium = file('medium', 5_000_000);
    await awsOk(viaProxy, 's3', 'cp', medium, 's3://bucket/allowed/medium');
    const put = entriesFor('/bucket/allowed/medium').find((e) => e.method === 'PUT');
    assert.equal(put?.refused, undefined, put?.reason);
    assert.equal(put?.payload, 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    assert.deepEqual(put?.trailers, ['x-amz-checksum-crc32']);
    const big = file('big', 20_000_000);
    await awsOk(viaProxy, 's3', 'cp', big, 's3://bucket/allowed/big');
    assert.ok(entriesFor('/bucket/allowed/big?uploads').length === 1, 'a multipart upload');
    for (const [name, path] of [
      ['medium', medium],
      ['big', big],
    ] as const) {
      const down = join(dir, `${name}.down`);
      await awsOk(viaProxy, 's3', 'cp', `s3://bucket/allowed/${name}`, down);
      sameBytes(path, down);
    }
  });

  it('a path outside the caveats is refused before the stand-in, in S3 error shape', async () => {
    const up = file('private', 1000);
    const done = await aws(viaRoute, 's3', 'cp', up, 's3://bucket/private/x');
    assert.notEqual(done.code, 0);
    assert.match(done.stderr, /AccessDenied/);
    assert.match(done.stderr, /ERR_CAVEAT_UNSATISFIED/);
    assert.deepEqual(entriesFor('/bucket/private/x'), []);
  });

  it('a method outside the caveats is refused before the stand-in', async () => {
    await awsOk(viaRoute, 's3', 'cp', file('keep', 1000), 's3://bucket/allowed/keep');
    const done = await aws(viaProxy, 's3', 'rm', 's3://bucket/allowed/keep');
    assert.notEqual(done.code, 0);
    assert.match(done.stderr, /ERR_CAVEAT_UNSATISFIED/);
    assert.deepEqual(
      entriesFor('/bucket/allowed/keep').filter((e) => e.method === 'DELETE'),
      [],
    );
  });

  it('a copy whose source the caveats do not allow is refused; one they allow goes through', async () => {
    const secret = file('secret', 1000);
    await awsOk(direct, 's3', 'cp', secret, 's3://bucket/private/secret');
    // s3api, not s3 cp: cp would first HEAD the source, refused by its path alone.
    const done = await aws(
      viaRoute,
      's3api',
      'copy-object',
      '--copy-source',
      'bucket/private/secret',
      '--bucket',
      'bucket',
      '--key',
      'allowed/stolen',
    );
    assert.notEqual(done.code, 0);
    assert.match(done.stderr, /x-amz-copy-source/);
    assert.deepEqual(entriesFor('/bucket/allowed/stolen'), []);
    await awsOk(viaRoute, 's3', 'cp', 's3://bucket/allowed/small', 's3://bucket/allowed/copy');
    const down = join(dir, 'copy.down');
    await awsOk(direct, 's3', 'cp', 's3://bucket/allowed/copy', down);
    sameBytes(join(dir, 'small'), down);
  });

  it('boto3 through interception puts and gets an object', async () => {
    const script = `
import boto3, botocore.config, sys
s3 = boto3.client('s3', config=botocore.config.Config(s3={'addressing_style': 'path'}))
body = bytes(range(256)) * 4000
s3.put_object(Bucket='bucket', Key='allowed/boto3', Body=body)
got = s3.get_object(Bucket='bucket', Key='allowed/boto3')['Body'].read()
sys.exit(0 if got == body else 3)
`;
    const done = await runAsync('python3', ['-c', script], undefined, viaProxy, dir, 60_000);
    assert.equal(done.code, 0, done.stderr);
    assert.equal(entriesFor('/bucket/allowed/boto3').filter((e) => e.refused).length, 0);
  });

  it('the JS SDK v3 through AWS_ENDPOINT_URL puts (buffer and stream) and gets objects', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: viaRoute.AWS_ENDPOINT_URL,
      AWS_CONFIG_FILE: viaRoute.AWS_CONFIG_FILE,
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_REGION: 'us-east-1',
    });
    const client = new S3Client({ forcePathStyle: true });
    try {
      const small = randomBytes(50_000);
      await client.send(
        new PutObjectCommand({ Bucket: 'bucket', Key: 'allowed/js-small', Body: small }),
      );
      const large = randomBytes(3_000_000);
      await client.send(
        new PutObjectCommand({
          Bucket: 'bucket',
          Key: 'allowed/js-stream',
          Body: Readable.from([large.subarray(0, 1_000_000), large.subarray(1_000_000)]),
          ContentLength: large.length,
        }),
      );
      for (const [key, bytes] of [
        ['allowed/js-small', small],
        ['allowed/js-stream', large],
      ] as const) {
        const got = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: key }));
        const body = Buffer.from(
          await (
            got.Body as { transformToByteArray(): Promise<Uint8Array> }
          ).transformToByteArray(),
        );
        assert.ok(body.equals(bytes), `${key} differs`);
      }
      const refused = await client
        .send(new PutObjectCommand({ Bucket: 'bucket', Key: 'private/js', Body: small }))
        .then(
          () => undefined,
          (err: Error & { name: string }) => err,
        );
      assert.equal(refused?.name, 'AccessDenied');
      assert.match(refused?.message ?? '', /ERR_CAVEAT_UNSATISFIED/);
    } finally {
      client.destroy();
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });

  it('signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) are signed again, chunk by chunk', async () => {
    const token = (
      JSON.parse(readFileSync(join(mount.mountpoint, 'aws/credentials'), 'utf8')) as {
        SessionToken: string;
      }
    ).SessionToken;
    const data = randomBytes(300_000);
    const status = await putSignedChunks(`${gw.base}/s3/bucket/allowed/chunked`, token, data);
    assert.equal(status.status, 200, status.text);
    const put = entriesFor('/bucket/allowed/chunked')[0];
    assert.equal(put?.refused, undefined, JSON.stringify(put));
    assert.equal(put?.payload, 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
    assert.equal(put?.chunks, 4);
    const down = join(dir, 'chunked.down');
    await awsOk(direct, 's3', 'cp', 's3://bucket/allowed/chunked', down);
    assert.ok(readFileSync(down).equals(data));
  });

  it('a signed-chunk upload held for an approver is signed again chunk by chunk when released', async () => {
    const token = gw.token({
      agent: 'held-agent',
      service: 's3',
      hosts: S3_HOSTS,
      methods: ['PUT'],
      paths: ['/bucket/allowed/**'],
      approval: { methods: ['PUT'], paths: ['/bucket/allowed/held'] },
    });
    const socket = join(gw.dir, 'approvals.sock');
    const data = randomBytes(400_000);
    const answer = putSignedChunks(`${gw.base}/s3/bucket/allowed/held`, token, data);
    const waiting = await pollUntil('the upload to wait for an approver', () => {
      if (!existsSync(socket)) return undefined;
      const listed = runCli(['approvals', 'list', '--socket', socket]);
      const pending = (JSON.parse(listed.stdout) as { pending: Array<{ id: string }> }).pending;
      return pending[0];
    });
    assert.deepEqual(entriesFor('/bucket/allowed/held'), [], 'nothing is sent before approval');
    const approved = runCli(['approvals', 'approve', waiting.id, '--socket', socket]);
    assert.equal(approved.code, 0, approved.stderr);
    const status = await answer;
    assert.equal(status.status, 200, status.text);
    const put = entriesFor('/bucket/allowed/held')[0];
    // The stand-in checked all five chunk signatures along their chain with the real key.
    assert.equal(put?.refused, undefined, JSON.stringify(put));
    assert.equal(put?.chunks, 5);
    const down = join(dir, 'held.down');
    await awsOk(direct, 's3', 'cp', 's3://bucket/allowed/held', down);
    assert.ok(readFileSync(down).equals(data));
  });

  it('a JSON-protocol body without a hash is hashed and signed; past 16 MiB it is refused in JSON shape', async () => {
    const token = gw.token({
      service: 'lambda',
      hosts: ['lambda.us-east-1.amazonaws.com'],
      methods: ['POST'],
      paths: ['/2015-03-31/functions/*/invocations'],
    });
    const invoke = (body: Buffer) =>
      fetch(`${gw.base}/lambda/2015-03-31/functions/f/invocations`, {
        method: 'POST',
        headers: {
          'x-amz-security-token': token,
          authorization:
            'AWS4-HMAC-SHA256 Credential=MINTFSPLACEHOLDER/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0',
          'content-type': 'application/json',
        },
        body,
      });
    const small = await invoke(Buffer.from('{"hello":"world"}'));
    assert.equal(small.status, 200, await small.clone().text());
    assert.deepEqual(await small.json(), { bytes: 17 });
    const big = await invoke(Buffer.alloc(17 * 1024 * 1024, 'x'));
    assert.equal(big.status, 413);
    assert.equal(big.headers.get('x-amzn-errortype'), 'ValidationException');
    const refusal = (await big.json()) as { __type: string; message: string };
    assert.equal(refusal.__type, 'ValidationException');
    assert.match(refusal.message, /x-amz-content-sha256/);
    assert.equal(standin.entries().filter((e) => e.service === 'lambda').length, 1);
  });

  it('keys are judged as S3 stores them: reserved characters as SDKs spell them, a trailing slash another key', async () => {
    // aws-cli spells the key; the stand-in logs the raw path it received.
    const odd = 'allowed/odd key+!=(1)\u00e9';
    await awsOk(
      viaRoute,
      's3api',
      'put-object',
      '--bucket',
      'bucket',
      '--key',
      odd,
      '--body',
      file('odd', 100),
    );
    const sent = '/bucket/allowed/odd%20key%2B%21%3D%281%29%C3%A9';
    assert.equal(entriesFor(sent).filter((e) => e.method === 'PUT' && !e.refused).length, 1);
    // A token for the key `allowed/x` does not reach the key `allowed/x/`.
    const token = gw.token({
      service: 's3',
      hosts: S3_HOSTS,
      methods: ['PUT'],
      paths: ['/bucket/allowed/x'],
    });
    const slashed = await putSignedChunks(
      `${gw.base}/s3/bucket/allowed/x/`,
      token,
      randomBytes(10),
    );
    assert.equal(slashed.status, 403, slashed.text);
    assert.match(slashed.text, /ERR_CAVEAT_UNSATISFIED/);
    assert.deepEqual(entriesFor('/bucket/allowed/x/'), []);
    assert.equal(
      (await putSignedChunks(`${gw.base}/s3/bucket/allowed/x`, token, randomBytes(10))).status,
      200,
    );
    // Another spelling of a key (a raw `+`, which S3 may read as a space) is refused, not rewritten.
    const plus = await putSignedChunks(`${gw.base}/s3/bucket/allowed/a+b`, token, randomBytes(10));
    assert.equal(plus.status, 400, plus.text);
    assert.match(plus.text, /<Code>InvalidRequest<\/Code>[\s\S]*percent-encoded as SDKs send it/);
    assert.deepEqual(entriesFor('/bucket/allowed/a+b'), []);
  });

  it('a presigned URL is refused with the reason, in S3 error shape', async () => {
    const res = await fetch(
      `${gw.base}/s3/bucket/allowed/small?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=${'0'.repeat(64)}`,
    );
    assert.equal(res.status, 400);
    const text = await res.text();
    assert.match(text, /<Code>InvalidRequest<\/Code>/);
    assert.match(text, /presigned URLs/);
  });
});

const REPORTS_POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::bucket/allowed/*' },
  ],
};

describe('AWS through the gateway with an assumed role per agent', { concurrency: false }, () => {
  const teardown = suiteTeardown();
  let dir: string;
  let standin: AwsStandin;
  let env: (file: string) => NodeJS.ProcessEnv;

  before(async () => {
    dir = tempDir(teardown);
    const pki = makeTestPki(dir);
    standin = await startAwsStandin(pki, dir, teardown);
    writeFileAtomic(join(dir, 'aws-key-id'), `${AWS_ACCESS_KEY_ID}\n`, { mode: 0o600 });
    writeFileAtomic(join(dir, 'aws-secret'), `${AWS_SECRET_ACCESS_KEY}\n`, { mode: 0o600 });
    const gw = await startGatewayFixture(teardown, {
      extraUpstreams: [
        '  s3:',
        `    url: ${standin.url}`,
        `    hosts: [${S3_HOSTS.join(', ')}]`,
        '    sign: sigv4',
        `    ca: ${pki.caFile}`,
        '    credential:',
        '      aws:',
        `        accessKeyId: { file: ${join(dir, 'aws-key-id')} }`,
        `        secretAccessKey: { file: ${join(dir, 'aws-secret')} }`,
        '        assumeRole:',
        '          roleArn: arn:aws:iam::123456789012:role/agents',
        '          externalId: mintfs-test',
        `          stsUrl: ${standin.url}`,
        '          region: us-east-1',
        `          ca: ${pki.caFile}`,
        '          policies:',
        `            read-reports: ${JSON.stringify(REPORTS_POLICY)}`,
      ].join('\n'),
    });
    const files = (name: string, policy?: string) =>
      [
        `  aws/${name}:`,
        '    service: s3',
        `    hosts: [${S3_HOSTS.join(', ')}]`,
        '    methods: [GET, HEAD, PUT, POST]',
        '    paths: ["/bucket", "/bucket/allowed/**"]',
        '    format: aws-credential-process',
        ...(policy === undefined ? [] : [`    aws: { policy: ${policy} }`]),
      ].join('\n');
    const mount = await startMountFixture(
      teardown,
      `agent: role-agent\nttl: 5m\nfiles:\n${files('plain')}\n${files('reports', 'read-reports')}\n${files('unknown', 'nope')}\n`,
      { keysDir: gw.keysDir },
    );
    env = (file) => {
      const config = join(dir, `aws-config-${file}`);
      writeFileSync(
        config,
        `[default]\nregion = us-east-1\ncredential_process = cat ${join(mount.mountpoint, 'aws', file)}\ns3 =\n    addressing_style = path\n`,
      );
      return {
        ...cleanEnv(),
        AWS_CONFIG_FILE: config,
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        AWS_ENDPOINT_URL: `${gw.base}/s3`,
      };
    };
  });

  const cp = (file: string, from: string, to: string) =>
    runAsync(
      'aws',
      ['s3', 'cp', from, to, '--only-show-errors'],
      undefined,
      env(file),
      dir,
      60_000,
    );
  const assumed = () => standin.entries().filter((e) => e.action === 'AssumeRole');

  it('signs with temporary keys of a session named for the agent, with the session policy the token names', async () => {
    const up = join(dir, 'report');
    writeFileSync(up, randomBytes(10_000));
    for (const key of ['one', 'two']) {
      const done = await cp('reports', up, `s3://bucket/allowed/${key}`);
      assert.equal(done.code, 0, done.stderr);
    }
    const sessions = assumed();
    assert.equal(sessions.length, 1, 'one session serves both requests');
    const session = sessions[0];
    assert.equal(session?.sessionName, 'mintfs-role-agent');
    assert.equal(session?.roleArn, 'arn:aws:iam::123456789012:role/agents');
    assert.equal(session?.externalId, 'mintfs-test');
    assert.equal(session?.accessKeyId, AWS_ACCESS_KEY_ID);
    assert.deepEqual(JSON.parse(session?.policy ?? 'null'), REPORTS_POLICY);
    const puts = standin.entries().filter((e) => e.method === 'PUT' && !e.refused);
    assert.equal(puts.length, 2);
    for (const put of puts) assert.equal(put.accessKeyId, session?.issued);
  });

  it('a token without a policy gets a session of its own, without one', async () => {
    const done = await cp('plain', 's3://bucket/allowed/one', join(dir, 'one.down'));
    assert.equal(done.code, 0, done.stderr);
    const sessions = assumed();
    assert.equal(sessions.length, 2);
    assert.equal(sessions[1]?.policy, null);
    assert.ok(readFileSync(join(dir, 'one.down')).equals(readFileSync(join(dir, 'report'))));
  });

  it('an upstream echoing the temporary key id and session token has both masked', async () => {
    const down = join(dir, 'echo.down');
    const done = await cp('reports', 's3://bucket/allowed/echo', down);
    assert.equal(done.code, 0, done.stderr);
    const echoed = readFileSync(down, 'utf8');
    const session = assumed()[0];
    assert.match(echoed, /^authorization=AWS4-HMAC-SHA256 Credential=\*+\//m);
    assert.match(echoed, /^token=\*+$/m);
    assert.ok(!echoed.includes(String(session?.issued)));
  });

  it('a token naming a policy the gateway does not have is refused before STS', async () => {
    // An upload: a refused HEAD (a download's first request) has no body to say why.
    const done = await cp('unknown', join(dir, 'report'), 's3://bucket/allowed/x');
    assert.notEqual(done.code, 0);
    assert.match(done.stderr, /session policy nope/);
    assert.equal(assumed().length, 2);
  });
});

describe('AWS inside mintfs run', () => {
  it("boto3 in the sandbox reads its credentials with cat from /secrets and reaches S3 through the run's gateway, by interception and by the route run names in AWS_ENDPOINT_URL_S3", async (t) => {
    const teardown = teardownOf(t);
    const dir = tempDir(teardown);
    const pki = makeTestPki(dir);
    const standin = await startAwsStandin(pki, dir, teardown);
    // For its keyring and an interception CA made for the S3 names.
    const gw = await startGatewayFixture(t, {
      intercept: { hosts: ['api.github.com'], otherHosts: S3_HOSTS },
    });
    writeFileAtomic(join(gw.dir, 'aws-key-id'), `${AWS_ACCESS_KEY_ID}\n`, { mode: 0o600 });
    writeFileAtomic(join(gw.dir, 'aws-secret'), `${AWS_SECRET_ACCESS_KEY}\n`, { mode: 0o600 });
    const config = join(gw.dir, 'run-aws.yaml');
    writeFileSync(
      config,
      [
        'listen: [127.0.0.1:0]',
        'upstreams:',
        '  s3:',
        `    url: ${standin.url}`,
        `    hosts: [${S3_HOSTS.join(', ')}]`,
        '    sign: sigv4',
        `    credential: { aws: { accessKeyId: { file: ${join(gw.dir, 'aws-key-id')} }, secretAccessKey: { file: ${join(gw.dir, 'aws-secret')} } } }`,
        `    ca: ${pki.caFile}`,
        'intercept:',
        `  ca: ${join(gw.dir, 'intercept-ca')}`,
        '',
      ].join('\n'),
    );
    const profile = join(gw.dir, 'aws-agent.yaml');
    writeFileSync(profile, PROFILE);
    // Debian's boto3 (/usr/bin/python3): the sandbox sees the host's /usr, not root's pyenv.
    const script = `
      set -e
      printf '[default]\\nregion = us-east-1\\ncredential_process = cat /secrets/aws/credentials\\ns3 =\\n    addressing_style = path\\n' > /tmp/aws-config
      AWS_CONFIG_FILE=/tmp/aws-config /usr/bin/python3 -c '
import boto3
s3 = boto3.client("s3")
body = b"from the sandbox " * 1000
s3.put_object(Bucket="bucket", Key="allowed/sandboxed", Body=body)
assert s3.get_object(Bucket="bucket", Key="allowed/sandboxed")["Body"].read() == body
try:
    s3.put_object(Bucket="bucket", Key="private/sandboxed", Body=body)
    print("private=written")
except Exception as err:
    print("private=" + type(err).__name__ + " " + str(err)[:200])
# The route mintfs run names for S3 (what the JS SDK v3 and current botocore read by
# themselves; the botocore of Debian predates the variable, so it is passed here by hand).
import os
print("endpoint=" + os.environ.get("AWS_ENDPOINT_URL_S3", ""))
routed = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
routed.put_object(Bucket="bucket", Key="allowed/routed", Body=body)
assert routed.get_object(Bucket="bucket", Key="allowed/routed")["Body"].read() == body
print("ok")
'
    `;
    const result = await runAsync(process.execPath, [
      CLI,
      'run',
      '--profile',
      profile,
      '--gateway',
      config,
      '--keys',
      gw.keysDir,
      '--',
      'bash',
      '-c',
      script,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^ok$/m);
    assert.match(result.stdout, /private=ClientError .*AccessDenied/);
    assert.match(result.stdout, /^endpoint=http:\/\/127\.0\.0\.1:8787\/s3$/m);
    const routed = standin
      .entries()
      .find((e) => e.method === 'PUT' && e.target === '/bucket/allowed/routed');
    assert.equal(routed?.refused, undefined, routed?.reason);
    const put = standin
      .entries()
      .find((e) => e.method === 'PUT' && e.target === '/bucket/allowed/sandboxed');
    assert.equal(put?.refused, undefined, put?.reason);
    assert.equal(put?.accessKeyId, AWS_ACCESS_KEY_ID);
    assert.equal(
      standin.entries().filter((e) => e.target === '/bucket/private/sandboxed').length,
      0,
    );
  });
});
