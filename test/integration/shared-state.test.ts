/**
 * Gateways on many hosts sharing one Redis (a real redis-server the test
 * starts on a free port, with an append-only file fsynced on every write):
 * use budgets spent once across all of them, even raced; revocations
 * recorded in Redis honoured by every gateway within a second, and by one
 * that starts later; Redis killed and restarted under load with nothing
 * spent twice and nothing revoked forgotten, and the gateways failing
 * closed meanwhile.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { PassThrough } from 'node:stream';
import { createTokenVerifier } from 'mintfs/verify';
import { startGateway } from '../../src/gateway/server.js';
import { createLogger } from '../../src/log/logger.js';
import {
  REVOCATION_EXPIRY_KEY,
  REVOCATIONS_KEY,
  recordRevocationInRedis,
} from '../../src/state/shared-revocations.js';
import { MAX_TTL_MS } from '../../src/token/limits.js';
import { formatTimeBefore } from '../../src/token/caveats.js';
import { decodeToken } from '../../src/token/token-text.js';
import { connectRedis, withTimeout } from '../../src/state/redis.js';
import { RedisUseCounter } from '../../src/state/redis-use-counter.js';
import { appendRawCaveats } from '../helpers/tokens.js';
import { BACKENDS } from '../helpers/backends.js';
import {
  bearerGet,
  configWithoutSocket,
  startGatewayFixture,
  startGatewayProcess,
  upstreamProfile,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { startMountFixture } from '../helpers/mount-fixture.js';
import { CLI } from '../helpers/paths.js';
import { freePort } from '../helpers/free-port.js';
import { REDIS_PASSWORD, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { pollUntil } from '../helpers/poll.js';
import { runAsync } from '../helpers/spawn.js';
import { tempDir, teardownOf } from '../helpers/temp.js';

const PATH = '/github/repos/acme/widgets/pulls';
const PASSWORD = REDIS_PASSWORD;

interface Peer {
  readonly base: string;
  readonly stderr: () => string;
}

/** Another gateway process with the fixture's config and keys (TCP only: the unix socket is the fixture's). */
async function startPeer(t: TestContext, gw: GatewayFixture, name: string): Promise<Peer> {
  const peer = await startGatewayProcess(t, gw, name, configWithoutSocket(gw));
  return { base: peer.base, stderr: peer.stderr };
}

/** A real Redis and `count` gateway processes sharing it: the fixture's and peers. */
async function gatewaysSharingRedis(
  t: TestContext,
  count: number,
  staleAfter?: string,
): Promise<{ redis: RedisServer; gw: GatewayFixture; gateways: Peer[] }> {
  const redis = await startRedis(teardownOf(t));
  const gw = await startGatewayFixture(t, { topLevel: redisConfig(redis, staleAfter) });
  const gateways: Peer[] = [{ base: gw.base, stderr: () => gw.stderr() }];
  for (let i = 1; i < count; i++) gateways.push(await startPeer(t, gw, `peer-${i}`));
  return { redis, gw, gateways };
}

function redisConfig(redis: RedisServer, staleAfter = '30s'): string {
  return `redis:\n  url: ${redis.url}\n  staleAfter: ${staleAfter}`;
}

async function get(agent: Agent, base: string, token: string) {
  const response = await bearerGet(agent, `${base}${PATH}`, token);
  const code =
    response.status === 200 ? 'ok' : (JSON.parse(response.body) as { error: string }).error;
  return { status: response.status, code };
}

function events(stderr: string, event: string): number {
  return stderr.split('\n').filter((line) => line.includes(`"event":"${event}"`)).length;
}

describe('use budgets without Redis', () => {
  for (const backend of BACKENDS)
    it(`a profile's uses: 1 makes single-use tokens (${backend} minter), counted in the one gateway's memory`, async (t) => {
      const gw = await startGatewayFixture(t);
      const mount = await startMountFixture(
        t,
        `${upstreamProfile('budget-agent').replace('    paths:', '    uses: 1\n    paths:')}`,
        { keysDir: gw.keysDir, backend },
      );
      const token = readFileSync(join(mount.mountpoint, 'github', 'token'), 'utf8');
      assert.ok(token.length > 100);
      const inspected = await runAsync(process.execPath, [CLI, 'inspect', token]);
      assert.match(inspected.stdout, /"uses 1"/);
      const agent = new Agent({ keepAlive: true });
      teardownOf(t).add(() => agent.destroy());
      const url = gw.base;
      assert.equal((await get(agent, url, token)).status, 200);
      assert.deepEqual(await get(agent, url, token), { status: 401, code: 'ERR_TOKEN_USES_SPENT' });
      // An attenuated copy has the same id: it spends the same budget.
      const narrowed = await runAsync(process.execPath, [
        CLI,
        'attenuate',
        token,
        '--caveat',
        'method GET',
      ]);
      assert.equal(narrowed.code, 0, narrowed.stderr);
      assert.deepEqual(await get(agent, url, narrowed.stdout.trim()), {
        status: 401,
        code: 'ERR_TOKEN_USES_SPENT',
      });
      // The next read is a new token with a budget of its own.
      const next = readFileSync(join(mount.mountpoint, 'github', 'token'), 'utf8');
      assert.equal((await get(agent, url, next)).status, 200);
    });
});

describe('shared state in Redis across gateways', () => {
  it('spends a single-use token once across three gateways, even when thirty requests race for it', async (t) => {
    const teardown = teardownOf(t);
    const { redis, gw, gateways: peers } = await gatewaysSharingRedis(t, 3);
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    teardown.add(() => agent.destroy());

    const single = gw.token({ uses: 1 });
    const before = gw.upstream.requests.length;
    const raced = await Promise.all(
      Array.from({ length: 30 }, (_, i) => get(agent, (peers[i % 3] as Peer).base, single)),
    );
    assert.equal(raced.filter((r) => r.status === 200).length, 1, JSON.stringify(raced));
    for (const refused of raced.filter((r) => r.status !== 200))
      assert.deepEqual(refused, { status: 401, code: 'ERR_TOKEN_USES_SPENT' });
    assert.equal(gw.upstream.requests.length, before + 1, 'refused requests reached the upstream');
    // The count expires with the token (5 min here), plus a minute for clock skew.
    const port = new URL(redis.url).port;
    const ttl = Number(
      execFileSync(
        'redis-cli',
        [
          '-p',
          port,
          '--no-auth-warning',
          '-a',
          PASSWORD,
          'PTTL',
          `mintfs:uses:${decodeToken(single).tokenId}`,
        ],
        { encoding: 'utf8' },
      ).trim(),
    );
    assert.ok(ttl > 300_000 && ttl <= 360_000, `PTTL ${ttl}`);

    // A budget of three: one use on each gateway, then refused on all.
    const three = gw.token({ uses: 3 });
    for (const peer of peers) assert.equal((await get(agent, peer.base, three)).status, 200);
    for (const peer of peers)
      assert.deepEqual(await get(agent, peer.base, three), {
        status: 401,
        code: 'ERR_TOKEN_USES_SPENT',
      });
    // A token without a budget is not counted.
    const plain = gw.token();
    for (let i = 0; i < 6; i++)
      assert.equal((await get(agent, (peers[i % 3] as Peer).base, plain)).status, 200);
  });

  it('honours a revocation recorded in Redis on every gateway within a second, and on one started later', async (t) => {
    const teardown = teardownOf(t);
    const { redis, gw, gateways: peers } = await gatewaysSharingRedis(t, 3);
    const agent = new Agent({ keepAlive: true });
    teardown.add(() => agent.destroy());
    const token = gw.token();
    const { tokenId } = decodeToken(token);
    for (const peer of peers) assert.equal((await get(agent, peer.base, token)).status, 200);

    const revoke = await runAsync(process.execPath, [
      CLI,
      'revoke',
      // `=`: one token id in 64 starts with "-".
      `--token=${tokenId}`,
      '--redis',
      redis.url,
    ]);
    const revokedAt = Date.now();
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(
      (JSON.parse(revoke.stdout) as { revoked: { tokenId: string } }).revoked.tokenId,
      tokenId,
    );
    assert.ok(!(revoke.stdout + revoke.stderr).includes(PASSWORD), 'the Redis password is printed');
    for (const peer of peers)
      await pollUntil(
        `${peer.base} to refuse the revoked token`,
        async () => (await get(agent, peer.base, token)).code === 'ERR_TOKEN_REVOKED',
        5_000,
      );
    const took = Date.now() - revokedAt;
    assert.ok(took <= 1_000, `every gateway refused it after ${took} ms`);

    // A gateway that starts now loads the whole set before it serves.
    const late = await startPeer(t, gw, 'late');
    assert.deepEqual(await get(agent, late.base, token), {
      status: 401,
      code: 'ERR_TOKEN_REVOKED',
    });

    // The same through MINTFS_REDIS, for an agent; --list shows both records.
    const byAgent = await runAsync(
      process.execPath,
      [CLI, 'revoke', '--agent', 'test-agent'],
      undefined,
      { ...process.env, MINTFS_REDIS: redis.url },
    );
    assert.equal(byAgent.code, 0, byAgent.stderr);
    const list = await runAsync(process.execPath, [CLI, 'revoke', '--list', '--redis', redis.url]);
    const records = (JSON.parse(list.stdout) as { records: Array<{ kind: string }> }).records;
    assert.deepEqual(records.map((r) => r.kind).sort(), ['agent', 'token']);
    await pollUntil(
      'a fresh token of the revoked agent to be refused',
      async () =>
        (await get(agent, late.base, gw.token({}, new Date(Date.now() - 2_000)))).code ===
        'ERR_TOKEN_REVOKED',
      5_000,
    );
  });

  it('keeps revocations in one hash: a reload reads the records, never the keyspace; expired records are dropped', async (t) => {
    const teardown = teardownOf(t);
    const { redis, gw } = await gatewaysSharingRedis(t, 1);
    const cli = (...args: string[]) =>
      execFileSync(
        'redis-cli',
        ['-p', new URL(redis.url).port, '-a', PASSWORD, '--no-auth-warning', ...args],
        {
          encoding: 'utf8',
        },
      ).trim();
    const agent = new Agent({ keepAlive: true });
    teardown.add(() => agent.destroy());
    // Budgeted tokens fill the keyspace (a key each), as on a busy fleet.
    for (let i = 0; i < 20; i++)
      assert.equal((await get(agent, gw.base, gw.token({ uses: 1 }))).status, 200);
    assert.ok(Number(cli('DBSIZE')) >= 20);
    cli('CONFIG', 'RESETSTAT');
    const calls = (command: string) =>
      Number(
        new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(cli('INFO', 'commandstats'))?.[1] ?? 0,
      );
    await pollUntil('two reloads of the revocations', () => calls('hgetall') >= 2, 10_000);
    assert.equal(calls('scan'), 0, 'a reload walked the keyspace');
    assert.equal(calls('keys'), 0, 'a reload walked the keyspace');

    // Recorded at three moments: the first has expired by the time the third
    // is recorded (its `now` is past the first's expiry), so it is dropped.
    const logger = createLogger({ stream: new PassThrough() });
    const start = Date.now();
    const request = (tokenId: string) => ({ kind: 'token' as const, tokenId });
    await recordRevocationInRedis(redis.url, request('A'.repeat(22)), new Date(start), logger);
    await recordRevocationInRedis(
      redis.url,
      request('B'.repeat(22)),
      new Date(start + 1_000),
      logger,
    );
    assert.deepEqual(cli('HKEYS', REVOCATIONS_KEY).split('\n').sort(), [
      `token-${'A'.repeat(22)}`,
      `token-${'B'.repeat(22)}`,
    ]);
    await recordRevocationInRedis(
      redis.url,
      request('C'.repeat(22)),
      new Date(start + MAX_TTL_MS + 500),
      logger,
    );
    assert.deepEqual(cli('HKEYS', REVOCATIONS_KEY).split('\n').sort(), [
      `token-${'B'.repeat(22)}`,
      `token-${'C'.repeat(22)}`,
    ]);
    assert.equal(cli('ZCARD', REVOCATION_EXPIRY_KEY), '2');
    // Both keys go when the last record does, not before.
    const lastExpiry = start + MAX_TTL_MS + 500 + MAX_TTL_MS;
    for (const key of [REVOCATIONS_KEY, REVOCATION_EXPIRY_KEY])
      assert.equal(Number(cli('PEXPIRETIME', key)), lastExpiry);
    // A record already expired when written leaves nothing behind.
    cli('DEL', REVOCATIONS_KEY, REVOCATION_EXPIRY_KEY);
    await recordRevocationInRedis(
      redis.url,
      request('D'.repeat(22)),
      new Date(start - MAX_TTL_MS - 1_000),
      logger,
    );
    assert.equal(cli('EXISTS', REVOCATIONS_KEY, REVOCATION_EXPIRY_KEY), '0');
  });

  it('fails closed while Redis is down, and after a restart has spent nothing twice and forgotten no revocation', async (t) => {
    const teardown = teardownOf(t);
    const { redis, gw, gateways } = await gatewaysSharingRedis(t, 2, '2s');
    const peer = gateways[1] as Peer;
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    teardown.add(() => agent.destroy());

    const revoked = gw.token();
    assert.equal(
      (
        await runAsync(process.execPath, [
          CLI,
          'revoke',
          `--token=${decodeToken(revoked).tokenId}`,
          '--redis',
          redis.url,
        ])
      ).code,
      0,
    );
    const budget = gw.token({ uses: 2 });
    assert.equal((await get(agent, gw.base, budget)).status, 200);

    // Load: single-use tokens, each sent to both gateways, all through the outage.
    const successes = new Map<string, number>();
    let loading = true;
    const load = (async () => {
      while (loading) {
        const token = gw.token({ uses: 1 });
        const results = await Promise.all(gateways.map((g) => get(agent, g.base, token)));
        successes.set(token, results.filter((r) => r.status === 200).length);
        for (const r of results)
          assert.ok(
            ['ok', 'ERR_TOKEN_USES_SPENT', 'ERR_STATE_UNAVAILABLE'].includes(r.code),
            r.code,
          );
      }
    })();

    await redis.kill();
    // Budgeted tokens: refused at once, 503. Others: served from the last known set...
    await pollUntil(
      'budgeted tokens to be refused',
      async () => (await get(agent, gw.base, budget)).code === 'ERR_STATE_UNAVAILABLE',
      5_000,
    );
    const plain = gw.token();
    // ...until it is older than staleAfter (2 s): then every token is refused, on each gateway.
    for (const g of gateways)
      await pollUntil(
        `${g.base} to refuse every token once its set is stale`,
        async () => (await get(agent, g.base, plain)).code === 'ERR_STATE_UNAVAILABLE',
        10_000,
      );
    assert.deepEqual(await get(agent, gw.base, revoked), {
      status: 503,
      code: 'ERR_STATE_UNAVAILABLE',
    });

    await redis.start();
    for (const g of gateways)
      await pollUntil(
        `${g.base} to serve again`,
        async () => (await get(agent, g.base, gw.token())).status === 200,
        15_000,
      );
    loading = false;
    await load;

    // The budget survived: one use left, then spent.
    assert.equal((await get(agent, peer.base, budget)).status, 200);
    assert.deepEqual(await get(agent, gw.base, budget), {
      status: 401,
      code: 'ERR_TOKEN_USES_SPENT',
    });
    // The revocation survived.
    for (const g of gateways)
      assert.deepEqual(await get(agent, g.base, revoked), {
        status: 401,
        code: 'ERR_TOKEN_REVOKED',
      });
    // No single-use token got through twice, before, during or after the outage.
    assert.ok(successes.size > 5, `only ${successes.size} tokens under load`);
    for (const [, count] of successes) assert.ok(count <= 1, 'a single-use token was used twice');
    // Each transition logged once per gateway (log lines may trail the
    // requests: polled), the password never.
    for (const g of gateways) {
      await pollUntil(
        'the transitions in the log',
        () => events(g.stderr(), 'redis-up') >= 2 && events(g.stderr(), 'revocations-fresh') >= 1,
        5_000,
      );
      assert.equal(events(g.stderr(), 'redis-down'), 1, g.stderr());
      assert.equal(events(g.stderr(), 'revocations-stale'), 1);
      assert.equal(events(g.stderr(), 'redis-up'), 2);
      assert.equal(events(g.stderr(), 'revocations-fresh'), 1);
      assert.ok(!g.stderr().includes(PASSWORD), 'the Redis password is logged');
    }
  });
});

/**
 * A gateway in this process, with the fixture's config and keys and a clock
 * the test sets (TCP only: the unix socket is the fixture's child's).
 */
async function gatewayWithClock(
  t: TestContext,
  gw: GatewayFixture,
  clock: () => Date,
): Promise<string> {
  const running = await startGateway({
    configFile: join(gw.dir, 'gateway.yaml'),
    keysDir: gw.keysDir,
    logger: createLogger({ stream: new PassThrough() }),
    clock,
    listen: [{ kind: 'tcp', host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }],
  });
  teardownOf(t).add(() => running.close());
  return `http://${running.addresses.find((a) => !a.startsWith('unix:')) as string}`;
}

function redisCli(redis: RedisServer, ...args: string[]): string {
  return execFileSync(
    'redis-cli',
    ['-p', new URL(redis.url).port, '--no-auth-warning', '-a', PASSWORD, ...args],
    { encoding: 'utf8' },
  ).trim();
}

describe('a use budget is counted as long as any copy of the token is valid', () => {
  for (const store of ['memory', 'redis'] as const)
    it(`a copy with an earlier time-before spends the budget, and the original stays spent after that copy expires (${store})`, async (t) => {
      const teardown = teardownOf(t);
      const redis = store === 'redis' ? await startRedis(teardown) : undefined;
      const gw = await startGatewayFixture(
        t,
        // The clock jumps minutes: revocations synced before the jump must not count as stale.
        redis === undefined ? {} : { topLevel: redisConfig(redis, '1h') },
      );
      // The gateway's clock is the test's, five minutes behind the real one
      // (and Redis's): a count dated by the copy's expiry is already past for
      // Redis, and the in-memory count is swept a minute after it.
      const minted = new Date(Math.floor(Date.now() / 1000) * 1000 - 5 * 60_000);
      let now = new Date(minted.getTime() + 10_000);
      const base = await gatewayWithClock(t, gw, () => now);
      const agent = new Agent({ keepAlive: true });
      teardown.add(() => agent.destroy());

      const original = gw.token({ uses: 1, ttlMs: 10 * 60_000 }, minted);
      const shortCopy = appendRawCaveats(original, [
        formatTimeBefore(new Date(minted.getTime() + 30_000)),
      ]);
      assert.equal((await get(agent, base, shortCopy)).status, 200);
      assert.deepEqual(await get(agent, base, original), {
        status: 401,
        code: 'ERR_TOKEN_USES_SPENT',
      });
      // Past the copy's expiry and the in-memory sweep, inside the original's life.
      now = new Date(minted.getTime() + 3 * 60_000);
      assert.deepEqual(await get(agent, base, original), {
        status: 401,
        code: 'ERR_TOKEN_USES_SPENT',
      });
      if (redis !== undefined) {
        // The count lives until the minted expiry (10 min) plus a minute, measured from the gateway's clock.
        const ttl = Number(redisCli(redis, 'PTTL', `mintfs:uses:${decodeToken(original).tokenId}`));
        assert.ok(ttl > 7 * 60_000 && ttl <= 11 * 60_000, `PTTL ${ttl}`);
      }
    });

  it('a count in Redis is only ever extended: a spend that asks for a shorter life does not shorten it', async (t) => {
    const teardown = teardownOf(t);
    const redis = await startRedis(teardown);
    const connection = await connectRedis(redis.url, createLogger({ stream: new PassThrough() }));
    teardown.add(() => connection.close());
    const counter = new RedisUseCounter(connection);
    const now = new Date();
    const id = 'E'.repeat(22);
    const key = `mintfs:uses:${id}`;
    assert.deepEqual(await counter.spend(id, 5, new Date(now.getTime() + 10_000), now), {
      ok: true,
      used: 1,
    });
    const short = Number(redisCli(redis, 'PTTL', key));
    assert.ok(short > 60_000 && short <= 70_000, `PTTL ${short}`);
    await counter.spend(id, 5, new Date(now.getTime() + 600_000), now);
    await counter.spend(id, 5, new Date(now.getTime() + 10_000), now);
    const long = Number(redisCli(redis, 'PTTL', key));
    assert.ok(long > 600_000 && long <= 660_000, `PTTL ${long}`);
    // A count left without an expiry (by hand, or an older writer) gets one.
    redisCli(redis, 'PERSIST', key);
    assert.deepEqual(await counter.spend(id, 5, new Date(now.getTime() + 10_000), now), {
      ok: true,
      used: 4,
    });
    assert.ok(Number(redisCli(redis, 'PTTL', key)) > 0);
  });

  it("a single-use token is single-use when Redis's clock is minutes ahead of the gateway's", async (t) => {
    const teardown = teardownOf(t);
    const redis = await startRedis(teardown);
    const gw = await startGatewayFixture(t, { topLevel: redisConfig(redis) });
    // By the real clock (Redis's) this token expired three minutes ago; by
    // the gateway's it has a minute and a half left.
    const minted = new Date(Math.floor(Date.now() / 1000) * 1000 - 5 * 60_000);
    const now = new Date(minted.getTime() + 30_000);
    const base = await gatewayWithClock(t, gw, () => now);
    const agent = new Agent({ keepAlive: true });
    teardown.add(() => agent.destroy());
    const single = gw.token({ uses: 1, ttlMs: 2 * 60_000 }, minted);
    assert.equal((await get(agent, base, single)).status, 200);
    for (let i = 0; i < 3; i++)
      assert.deepEqual(await get(agent, base, single), {
        status: 401,
        code: 'ERR_TOKEN_USES_SPENT',
      });
  });
});

describe("mintfs/verify with the gateway's redis setting", () => {
  it('spends the budget the gateways spend, honours revocations recorded in Redis, and fails closed while Redis is away', async (t) => {
    const teardown = teardownOf(t);
    const { redis, gw } = await gatewaysSharingRedis(t, 1);
    const agent = new Agent({ keepAlive: true });
    teardown.add(() => agent.destroy());
    // The gateway config's setting, as written there.
    const verifier = createTokenVerifier({
      keys: gw.keysDir,
      redis: { url: redis.url, staleAfter: '2s' },
    });
    teardown.add(() => verifier.close());
    await verifier.ready();
    const request = {
      service: 'github',
      method: 'GET',
      url: 'https://localhost/repos/acme/widgets/pulls',
    };

    const budget = gw.token({ uses: 2 });
    assert.equal((await get(agent, gw.base, budget)).status, 200);
    const second = await verifier.checkAndSpend(budget, request);
    assert.deepEqual([second.allowed, second.uses, second.used], [true, 2, 2]);
    assert.deepEqual(await get(agent, gw.base, budget), {
      status: 401,
      code: 'ERR_TOKEN_USES_SPENT',
    });
    const fourth = await verifier.checkAndSpend(budget, request);
    assert.equal(!fourth.allowed && fourth.code, 'ERR_TOKEN_USES_SPENT');

    const revoked = gw.token();
    assert.equal(verifier.check(revoked, request).allowed, true);
    const revoke = await runAsync(process.execPath, [
      CLI,
      'revoke',
      `--token=${decodeToken(revoked).tokenId}`,
      '--redis',
      redis.url,
    ]);
    assert.equal(revoke.code, 0, revoke.stderr);
    await pollUntil(
      'the library to refuse the token revoked in Redis',
      () => {
        const verdict = verifier.check(revoked, request);
        return !verdict.allowed && verdict.code === 'ERR_TOKEN_REVOKED';
      },
      5_000,
    );

    await redis.kill();
    const fresh = gw.token({ uses: 1 });
    await pollUntil(
      'a budgeted token to be refused while Redis is away',
      async () => {
        const verdict = await verifier.checkAndSpend(fresh, request);
        return !verdict.allowed && verdict.code === 'ERR_STATE_UNAVAILABLE';
      },
      5_000,
    );
    // Once the revocations it knows are older than staleAfter, every token is refused.
    const plain = gw.token();
    await pollUntil(
      'every token to be refused once the revocations are stale',
      () => {
        const verdict = verifier.check(plain, request);
        return !verdict.allowed && verdict.code === 'ERR_STATE_UNAVAILABLE';
      },
      10_000,
    );
  });
});

/** Prometheus text as `name{labels}` -> value (comments and blank lines skipped). */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    const text = line.slice(at + 1);
    // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case
    // (prom-client writes an event-loop mean with no samples yet as "Nan").
    const special = /^([+-]?)(nan|inf)$/i.exec(text);
    const value = special
      ? special[2]?.toLowerCase() === 'nan'
        ? NaN
        : special[1] === '-'
          ? -Infinity
          : Infinity
      : Number(text);
    assert.ok(special !== null || (text !== '' && !Number.isNaN(value)), `not a sample: ${line}`);
    samples.set(line.slice(0, at), value);
  }
  return samples;
}

async function scrape(
  stderr: () => string,
): Promise<{ text: string; samples: Map<string, number> }> {
  const line = await pollUntil('the metrics listener', () =>
    stderr()
      .split('\n')
      .find((l) => l.includes('"event":"metrics-listening"')),
  );
  const { address } = JSON.parse(line) as { address: string };
  const response = await fetch(`http://${address}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await response.text();
  return { text, samples: parseMetrics(text) };
}

describe('metrics', () => {
  it('the gateway counts requests by outcome and code, budgets, cache lookups and Redis health; no ids in labels', async (t) => {
    const teardown = teardownOf(t);
    const redis = await startRedis(teardown);
    const gw = await startGatewayFixture(t, {
      topLevel: `${redisConfig(redis)}\nmetrics: 127.0.0.1:0`,
    });
    const agent = new Agent({ keepAlive: true });
    teardown.add(() => agent.destroy());
    const token = gw.token();
    // A token is cached on its second use, so the third is a cache hit.
    for (let i = 0; i < 3; i++) assert.equal((await get(agent, gw.base, token)).status, 200);
    assert.equal((await get(agent, gw.base, 'not-a-token')).status, 401);
    const single = gw.token({ uses: 1 });
    assert.equal((await get(agent, gw.base, single)).status, 200);
    assert.equal((await get(agent, gw.base, single)).status, 401);

    const { text, samples } = await scrape(() => gw.stderr());
    const at = (key: string) => samples.get(key);
    assert.equal(at('mintfs_gateway_requests_total{outcome="served",code="none"}'), 4);
    assert.equal(at('mintfs_gateway_denials_total{code="ERR_TOKEN_MALFORMED"}'), 1);
    assert.equal(at('mintfs_gateway_denials_total{code="ERR_TOKEN_USES_SPENT"}'), 1);
    assert.equal(at('mintfs_gateway_use_budget_total{result="ok"}'), 1);
    assert.equal(at('mintfs_gateway_use_budget_total{result="spent"}'), 1);
    assert.equal(at('mintfs_gateway_request_duration_seconds_count{outcome="served"}'), 4);
    assert.equal(at('mintfs_gateway_upstream_duration_seconds_count{service="github"}'), 4);
    assert.ok((at('mintfs_gateway_verify_cache_lookups_total{result="hit"}') ?? 0) >= 1);
    assert.equal(at('mintfs_redis_up'), 1);
    assert.equal(at('mintfs_revocations_stale'), 0);
    assert.ok((at('mintfs_process_open_fds') ?? 0) > 0);
    assert.ok(at('mintfs_nodejs_active_handles_total') !== undefined);
    for (const name of samples.keys()) assert.match(name, /^mintfs_/);
    const { tokenId } = decodeToken(token);
    for (const secret of [tokenId, token, 'test-agent', '/repos/acme', PASSWORD, 'ghp_'])
      assert.ok(!text.includes(secret), `${secret} is in the metrics`);

    await redis.kill();
    await pollUntil(
      'Redis to show as down',
      async () => (await scrape(() => gw.stderr())).samples.get('mintfs_redis_up') === 0,
      10_000,
    );
  });

  it('a gateway with two workers serves the sum of both from its primary', async (t) => {
    const gw = await startGatewayFixture(t);
    const config = readFileSync(join(gw.dir, 'gateway.yaml'), 'utf8')
      .split('\n')
      .filter((line) => !line.includes('unix:'))
      .join('\n');
    writeFileSync(join(gw.dir, 'workers.yaml'), `${config}\nworkers: 2\nmetrics: 127.0.0.1:0\n`);
    let stderr = '';
    const child = spawn(
      process.execPath,
      [CLI, 'gateway', join(gw.dir, 'workers.yaml'), '--keys', gw.keysDir],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    teardownOf(t).add(async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    });
    const listening = await pollUntil(
      'both workers to listen',
      () => {
        const lines = stderr.split('\n').filter((l) => l.includes('"event":"gateway-listening"'));
        return lines.length === 2
          ? (JSON.parse(lines[0] as string) as { addresses: string[] })
          : undefined;
      },
      20_000,
    );
    const base = `http://${listening.addresses[0] as string}`;
    // New connections each time, so both workers take some.
    const token = gw.token();
    for (let i = 0; i < 12; i++) {
      const response = await bearerGet(new Agent(), `${base}${PATH}`, token);
      assert.equal(response.status, 200, `${response.body} ${stderr.slice(-3000)}`);
    }
    const pids = new Set(
      stderr
        .split('\n')
        .filter((l) => l.includes('"event":"request"'))
        .map((l) => (JSON.parse(l) as { pid: number }).pid),
    );
    const { samples } = await scrape(() => stderr);
    assert.equal(samples.get('mintfs_gateway_requests_total{outcome="served",code="none"}'), 12);
    assert.ok(pids.size >= 1);
  });

  it('the mount daemon counts mints by file and outcome', async (t) => {
    const teardown = teardownOf(t);
    const gw = await startGatewayFixture(t);
    const dir = tempDir(t);
    const profile = join(dir, 'profile.yaml');
    writeFileSync(profile, upstreamProfile('metrics-agent'));
    const mountpoint = join(dir, 'mnt');
    let stderr = '';
    const child = spawn(
      process.execPath,
      [CLI, 'mount', profile, mountpoint, '--keys', gw.keysDir, '--metrics', '127.0.0.1:0'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    teardown.add(async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    });
    await pollUntil('the mount', () => stderr.includes('"event":"mounted"'), 15_000);
    for (let i = 0; i < 3; i++) readFileSync(join(mountpoint, 'github', 'token'), 'utf8');
    // Counted as the audit lines are written (the native backend hands them over in batches).
    const { samples } = await pollUntil('three mints counted', async () => {
      const scraped = await scrape(() => stderr);
      return scraped.samples.get('mintfs_mints_total{file="github/token",outcome="minted"}') === 3
        ? scraped
        : undefined;
    });
    assert.equal(samples.get('mintfs_mount_open_handles'), 0);
  });
});

describe('mintfs verify --redis', () => {
  it('honours revocations recorded with revoke --redis and the uses spent at the gateways; without it, the keyring alone', async (t) => {
    const teardown = teardownOf(t);
    const { redis, gw } = await gatewaysSharingRedis(t, 1);
    const agent = new Agent({ keepAlive: true });
    teardown.add(() => agent.destroy());
    const verify = (token: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) =>
      runAsync(
        process.execPath,
        [
          CLI,
          'verify',
          token,
          '--keys',
          gw.keysDir,
          '--service',
          'github',
          '--method',
          'GET',
          '--url',
          `https://localhost${PATH.replace('/github', '')}`,
          ...args,
        ],
        undefined,
        { ...process.env, MINTFS_REDIS: '', ...env },
      );
    const verdictOf = (stdout: string) =>
      JSON.parse(stdout) as { allowed: boolean; code?: string; uses?: number; used?: number };

    const token = gw.token();
    const revoke = await runAsync(process.execPath, [
      CLI,
      'revoke',
      `--token=${decodeToken(token).tokenId}`,
      '--redis',
      redis.url,
    ]);
    assert.equal(revoke.code, 0, revoke.stderr);
    const withRedis = await verify(token, ['--redis', redis.url]);
    assert.equal(withRedis.code, 1, withRedis.stderr);
    assert.equal(verdictOf(withRedis.stdout).code, 'ERR_TOKEN_REVOKED');
    const fromEnv = await verify(token, [], { MINTFS_REDIS: redis.url });
    assert.equal(verdictOf(fromEnv.stdout).code, 'ERR_TOKEN_REVOKED');
    // Without Redis, verify reads the keyring's records alone (as a gateway without redis does).
    const keyringOnly = await verify(token);
    assert.equal(keyringOnly.code, 0, keyringOnly.stderr);

    // A budget spent at a gateway is spent for verify --redis, which spends nothing itself.
    const single = gw.token({ uses: 1 });
    const before = await verify(single, ['--redis', redis.url]);
    assert.equal(before.code, 0, before.stderr);
    assert.deepEqual(
      (({ allowed, uses, used }) => ({ allowed, uses, used }))(verdictOf(before.stdout)),
      { allowed: true, uses: 1, used: 0 },
    );
    assert.equal((await get(agent, gw.base, single)).status, 200);
    const after = await verify(single, ['--redis', redis.url]);
    assert.equal(after.code, 1);
    assert.deepEqual((({ code, uses, used }) => ({ code, uses, used }))(verdictOf(after.stdout)), {
      code: 'ERR_TOKEN_USES_SPENT',
      uses: 1,
      used: 1,
    });
    // Without --redis the budget is reported, and that it cannot be judged here.
    const uncounted = await verify(single);
    assert.equal(uncounted.code, 0);
    assert.equal(verdictOf(uncounted.stdout).uses, 1);
    assert.match(uncounted.stderr, /without --redis, verify cannot tell how much of it is spent/);

    // Redis away: no answer without its revocations.
    await redis.kill();
    const away = await verify(token, ['--redis', redis.url]);
    assert.equal(away.code, 3, away.stderr);
    assert.match(away.stderr, /^mintfs: Redis is unreachable/m);
    assert.equal(away.stdout, '');
    assert.ok(!away.stderr.includes(PASSWORD));
  });
});

describe('mintfs revoke --redis', () => {
  it('refuses a bad URL in one line, and says so when Redis cannot be reached, recording nothing', async (t) => {
    const gw = await startGatewayFixture(t);
    const tokenId = decodeToken(gw.token()).tokenId;
    const revoke = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      runAsync(process.execPath, [CLI, 'revoke', `--token=${tokenId}`, ...args], undefined, {
        ...process.env,
        ...env,
      });
    const badFlag = await revoke(['--redis', 'http://127.0.0.1:6379']);
    assert.equal(badFlag.code, 2);
    assert.equal(badFlag.stderr.trim(), 'mintfs: --redis: not a redis:// or rediss:// URL');
    const badEnv = await revoke([], { MINTFS_REDIS: 'localhost:6379' });
    assert.equal(badEnv.code, 2);
    assert.equal(badEnv.stderr.trim(), 'mintfs: MINTFS_REDIS: not a redis:// or rediss:// URL');
    const port = await freePort(); // nothing listens there
    const away = await revoke(['--redis', `redis://:${PASSWORD}@127.0.0.1:${port}`]);
    assert.equal(away.code, 3, away.stderr);
    assert.match(away.stderr, /^mintfs: Redis is unreachable; nothing was recorded$/m);
    assert.ok(!away.stderr.includes(PASSWORD));
    assert.equal(away.stdout, '');
    // verify --redis fails in its own words too: the error comes from the bundle's
    // Redis file and is reported by its fast-path file (MintfsError across copies).
    const verifyAway = await runAsync(
      process.execPath,
      [CLI, 'verify', gw.token(), '--keys', gw.keysDir, '--service', 'github', '--method', 'GET'],
      undefined,
      process.env,
    );
    assert.equal(verifyAway.code, 2, 'without --url it is a usage error');
    const unreachable = await runAsync(
      process.execPath,
      [
        CLI,
        'verify',
        gw.token(),
        '--keys',
        gw.keysDir,
        '--service',
        'github',
        '--method',
        'GET',
        '--url',
        'https://api.github.com/repos/acme/widgets',
        '--redis',
        `redis://:${PASSWORD}@127.0.0.1:${port}`,
      ],
      undefined,
      process.env,
    );
    assert.equal(unreachable.code, 3, unreachable.stderr);
    assert.match(unreachable.stderr, /^mintfs: Redis is unreachable$/m);
    assert.doesNotMatch(unreachable.stderr, /unexpected error/);
    assert.ok(!unreachable.stderr.includes(PASSWORD));
    assert.equal(unreachable.stdout, '');
  });
});

describe('Redis command timeout', () => {
  /** Busy-waits: this process stalls, as under a GC pause or a CPU-starved host. */
  function stall(ms: number): void {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // spin
    }
  }

  it('a reply that came while this process stalled wins over the timer; a silent Redis still times out', async (t) => {
    const redis = await startRedis(teardownOf(t));
    const connection = await connectRedis(redis.url, createLogger({ stream: new PassThrough() }));
    t.after(() => connection.close());
    assert.ok(connection.up());
    // The stall ends in the event loop's check phase, so the timers run next:
    // without the extra turn, the due timer would reject before the reply is read.
    const answered = withTimeout('pinging', connection.client.ping(), 50);
    await new Promise<void>((resolve) => setImmediate(() => (stall(300), resolve())));
    assert.equal(await answered, 'PONG');
    // A Redis that does not answer (stopped with SIGSTOP) still times out.
    const info = await connection.client.info('server');
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    process.kill(pid, 'SIGSTOP');
    try {
      await assert.rejects(withTimeout('pinging', connection.client.ping(), 50), {
        code: 'ERR_STATE_UNAVAILABLE',
        message: 'Redis: pinging timed out',
      });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });
});
