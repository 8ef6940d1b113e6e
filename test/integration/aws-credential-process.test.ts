/**
 * `format: aws-credential-process` on a real mount, read the way AWS SDKs
 * read it: `credential_process = cat FILE` in an AWS config file, resolved by
 * botocore (what aws-cli and boto3 run) and by the JS SDK v3's process
 * provider. Each resolution reads a fresh token; its SessionToken verifies
 * and its Expiration is the token's time-before.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { verifyToken } from '../../src/token/verify.js';
import { inspectToken } from '../../src/token/inspect.js';
import { AWS_PLACEHOLDER_KEY_ID } from '../../src/fs/token-content.js';
import { startMountFixture, type MountFixture } from '../helpers/mount-fixture.js';
import { BACKENDS } from '../helpers/backends.js';
import { runSync } from '../helpers/spawn.js';
import { suiteTeardown } from '../helpers/temp.js';

const PROFILE = `agent: aws-agent
ttl: 5m
files:
  aws/credentials:
    service: s3
    hosts: [s3.us-east-1.amazonaws.com]
    methods: [GET, PUT]
    paths: ["/bucket/**"]
    format: aws-credential-process
`;

const REQUEST = {
  service: 's3',
  host: 's3.us-east-1.amazonaws.com',
  method: 'GET',
  rawPath: '/bucket/key',
  pathSegments: ['bucket', 'key'],
};

// botocore's own resolution chain (what aws-cli and boto3 use), printed as JSON.
const BOTOCORE_RESOLVE = `
import json, botocore.session
creds = botocore.session.Session(profile='mintfs').get_credentials()
frozen = creds.get_frozen_credentials()
print(json.dumps({"method": creds.method, "accessKey": frozen.access_key,
  "token": frozen.token, "expiry": creds._expiry_time.isoformat()}))
`;

for (const backend of BACKENDS) {
  describe(`aws-credential-process files (${backend})`, { concurrency: false }, () => {
    const teardown = suiteTeardown();
    let fixture: MountFixture;
    let configFile: string;
    before(async () => {
      fixture = await startMountFixture(teardown, PROFILE, { backend });
      configFile = join(fixture.dir, 'aws-config');
      writeFileSync(
        configFile,
        `[profile mintfs]\ncredential_process = cat ${join(fixture.mountpoint, 'aws/credentials')}\n`,
      );
    });

    const assertToken = (token: string, expiration: Date): string => {
      const verdict = verifyToken(token, REQUEST, {
        keyById: fixture.keyring().keyById,
        now: new Date(),
      });
      assert.equal(verdict.allowed, true, verdict.allowed ? '' : verdict.reason);
      const caveats = inspectToken(token).caveats;
      const timeBefore = caveats.find((c) => c.startsWith('time-before '));
      assert.equal(new Date(String(timeBefore?.slice(12))).getTime(), expiration.getTime());
      return verdict.tokenId as string;
    };

    it('botocore resolves the file through credential_process = cat, a fresh token each time', () => {
      const env = {
        ...process.env,
        AWS_CONFIG_FILE: configFile,
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      };
      const ids = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const out = JSON.parse(
          runSync('python3', ['-c', BOTOCORE_RESOLVE], 'botocore', { env }),
        ) as {
          method: string;
          accessKey: string;
          token: string;
          expiry: string;
        };
        assert.equal(out.method, 'custom-process');
        assert.equal(out.accessKey, AWS_PLACEHOLDER_KEY_ID);
        ids.add(assertToken(out.token, new Date(out.expiry)));
      }
      assert.equal(ids.size, 2);
    });

    it('the JS SDK v3 resolves it through its default chain', async () => {
      const saved = process.env.AWS_CONFIG_FILE;
      process.env.AWS_CONFIG_FILE = configFile;
      try {
        // The client's default chain, as an application gets it: profile, then credential_process.
        const client = new S3Client({ profile: 'mintfs', region: 'us-east-1' });
        const creds = await client.config.credentials();
        client.destroy();
        assert.equal(creds.accessKeyId, AWS_PLACEHOLDER_KEY_ID);
        assert.ok(creds.expiration instanceof Date);
        assertToken(String(creds.sessionToken), creds.expiration);
      } finally {
        if (saved === undefined) delete process.env.AWS_CONFIG_FILE;
        else process.env.AWS_CONFIG_FILE = saved;
      }
    });
  });
}
