/**
 * Role sessions over time: the gateway's minted-credential cache with the
 * AssumeRole minter, against the STS stand-in (which checks every call's
 * signature with botocore and the gateway's real key). The clock is the
 * cache's and the minter's own, moved forward (within the 15 minutes of skew
 * the stand-in, like STS, accepts), so a session's refresh is seen without
 * waiting for it.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { before, describe, it } from 'node:test';
import { AssumeRoleSchema, assumeRoleMinter } from '../../src/aws/assume-role.js';
import { MintedCache } from '../../src/credentials/minted-cache.js';
import type { Credential } from '../../src/credentials/credential.js';
import { createLogger } from '../../src/log/logger.js';
import {
  AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY,
  startAwsStandin,
  type AwsStandin,
} from '../helpers/aws-standin.js';
import { pollUntil } from '../helpers/poll.js';
import { suiteTeardown, tempDir } from '../helpers/temp.js';
import { makeTestPki } from '../helpers/tls.js';

const MINUTE = 60_000;

describe('assumed-role sessions: one per agent, refreshed before they expire', () => {
  const teardown = suiteTeardown();
  let standin: AwsStandin;
  let cache: MintedCache;
  let scope: { key: string };
  const offset = { ms: 0 };
  const logs: string[] = [];

  before(async () => {
    const dir = tempDir(teardown);
    const pki = makeTestPki(dir);
    standin = await startAwsStandin(pki, dir, teardown);
    const config = AssumeRoleSchema.parse({
      roleArn: 'arn:aws:iam::123456789012:role/agents',
      duration: '15m',
      stsUrl: standin.url,
      region: 'us-east-1',
      ca: pki.caFile,
    });
    const clock = () => Date.now() + offset.ms;
    const minter = assumeRoleMinter(
      config,
      () => ({ accessKeyId: AWS_ACCESS_KEY_ID, secretAccessKey: AWS_SECRET_ACCESS_KEY }),
      's3',
      clock,
    );
    teardown.add(() => minter.close?.());
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(chunk.toString());
        done();
      },
    });
    cache = new MintedCache({
      service: 's3',
      source: 'assumeRole',
      minter,
      logger: createLogger({ stream: sink }),
      clock,
    });
    const scoped = minter.scope?.({});
    assert.ok(scoped !== undefined && typeof scoped !== 'string');
    scope = scoped;
  });

  const sessions = () => standin.entries().filter((e) => e.action === 'AssumeRole' && !e.refused);
  const keysOf = async (agent: string) => {
    const credential: Credential = await cache.get({ agent, scope });
    assert.ok(credential.aws !== undefined);
    return credential.aws;
  };

  it('mints one session per agent, named for it, and serves it from the cache', async () => {
    const alpha = await keysOf('alpha');
    assert.equal((await keysOf('alpha')).accessKeyId, alpha.accessKeyId);
    const beta = await keysOf('beta.team/1');
    assert.notEqual(beta.accessKeyId, alpha.accessKeyId);
    const minted = sessions();
    assert.deepEqual(
      minted.map((e) => [e.sessionName, e.issued, e.roleArn]),
      [
        ['mintfs-alpha', alpha.accessKeyId, 'arn:aws:iam::123456789012:role/agents'],
        // RoleSessionName allows [\w+=,.@-]: the agent's other characters become '-'.
        ['mintfs-beta.team-1', beta.accessKeyId, 'arn:aws:iam::123456789012:role/agents'],
      ],
    );
    assert.ok(minted.every((e) => (e as { durationSeconds?: number }).durationSeconds === 900));
  });

  it("refreshes an agent's session in the background before it expires, then serves the new one", async () => {
    const old = await keysOf('alpha');
    const beta = await keysOf('beta.team/1');
    // 12 of its 15 minutes spent: inside the refresh window (the last quarter), still usable.
    offset.ms = 12 * MINUTE;
    assert.equal((await keysOf('alpha')).accessKeyId, old.accessKeyId, 'served while refreshing');
    const refreshed = await pollUntil('the refreshed alpha session', async () => {
      const now = await keysOf('alpha');
      return now.accessKeyId !== old.accessKeyId ? now : undefined;
    });
    const alphaSessions = sessions().filter((e) => e.sessionName === 'mintfs-alpha');
    assert.deepEqual(
      alphaSessions.map((e) => e.issued),
      [old.accessKeyId, refreshed.accessKeyId],
      'one new session for alpha',
    );
    assert.notEqual(refreshed.sessionToken, old.sessionToken);
    for (const secret of [old.secretAccessKey, refreshed.secretAccessKey, refreshed.sessionToken])
      assert.ok(!logs.join('').includes(secret as string), 'no key in the log');
    // Another agent's session is its own: refreshed only when that agent asks.
    assert.equal(sessions().filter((e) => e.sessionName === 'mintfs-beta.team-1').length, 1);
    assert.equal((await keysOf('beta.team/1')).accessKeyId, beta.accessKeyId);
  });

  it('never hands out a session in its last 30 seconds: the agent waits for a fresh one', async () => {
    // Minted with a clock 12 minutes slow, then read with one 14:40 fast: gamma's session
    // (15 minutes from the stand-in's real time) is in its last 30 s; both within the skew.
    offset.ms = -12 * MINUTE;
    const before = await keysOf('gamma');
    offset.ms = 15 * MINUTE - 20_000;
    const after = await keysOf('gamma');
    assert.notEqual(after.accessKeyId, before.accessKeyId);
    assert.equal(sessions().filter((e) => e.sessionName === 'mintfs-gamma').length, 2);
  });
});
