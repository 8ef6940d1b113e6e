/**
 * The gateway under rotation, load and abuse: credential rotation under a
 * request loop, streaming both ways, keep-alive, size and time limits,
 * upstream failures, graceful shutdown.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileAtomic } from '../../src/keys/atomic-write.js';
import { curl } from '../helpers/curl.js';
import { CREDENTIAL, bearerGet, startGatewayFixture } from '../helpers/gateway-fixture.js';
import { pollUntil } from '../helpers/poll.js';

const PATH = '/repos/acme/widgets';

const get = bearerGet;

describe('gateway: rotation and streaming', () => {
  it('rotating the credential file under a request loop: zero failures, new credential used', async (t) => {
    const gw = await startGatewayFixture(t);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    t.after(() => agent.destroy());
    const token = gw.token();
    const rotated = `${CREDENTIAL}-rotated`;
    const statuses: number[] = [];
    let rotatedAt = -1;
    for (let i = 0; i < 400; i++) {
      if (i === 100) {
        writeFileAtomic(gw.credentialFile, `${rotated}\n`, { mode: 0o600 });
        rotatedAt = gw.upstream.requests.length;
      }
      statuses.push((await get(agent, `${gw.base}/github${PATH}`, token)).status);
      const seenNew = gw.upstream.requests
        .slice(rotatedAt)
        .filter((r) => r.headers.authorization === `token ${rotated}`);
      if (rotatedAt >= 0 && seenNew.length >= 20) break;
    }
    assert.deepEqual([...new Set(statuses)], [200], 'every request succeeded');
    const seen = gw.upstream.requests.map((r) => r.headers.authorization);
    const firstNew = seen.indexOf(`token ${rotated}`);
    assert.ok(firstNew > 0, 'the rotated credential reached the upstream');
    assert.ok(
      seen.slice(firstNew).every((a) => a === `token ${rotated}`),
      'never the old one again',
    );
    assert.ok(seen.slice(0, firstNew).every((a) => a === `token ${CREDENTIAL}`));
    await pollUntil('the reload to be logged', () =>
      /"event":"credential-reloaded","service":"github","version":2/.test(gw.stderr()),
    );
    // Both old and new values are redacted from echoes after the rotation.
    const echo = await curl([
      `${gw.base}/github${PATH}/echo`,
      '-H',
      `Authorization: Bearer ${token}`,
    ]);
    assert.ok(!echo.body.includes(rotated) && !echo.body.includes(CREDENTIAL));
  });

  it('the config reloads on an edit and on SIGHUP; a bad edit keeps the last good one; listen needs a restart', async (t) => {
    const gw = await startGatewayFixture(t);
    const configFile = join(gw.dir, 'gateway.yaml');
    const original = readFileSync(configFile, 'utf8');
    const token = gw.token({ service: 'mirror', hosts: ['127.0.0.1'], paths: ['/**'] });
    const viaMirror = () =>
      curl([`${gw.base}/mirror/repos/acme/widgets`, '-H', `Authorization: Bearer ${token}`]);
    assert.equal((await viaMirror()).status, 404, 'no upstream named mirror yet');
    // A new upstream: taken on the next poll, no restart.
    const withMirror = original.replace(
      'upstreams:\n',
      `upstreams:\n  mirror:\n    url: https://127.0.0.1:${gw.upstream.port}\n    credential: { file: ./github.credential }\n    inject: "X-Mirror-Key: {credential}"\n    ca: ./ca.pem\n`,
    );
    writeFileAtomic(configFile, withMirror, { mode: 0o644 });
    await pollUntil('the mirror upstream', async () => (await viaMirror()).status === 200);
    assert.equal(gw.upstream.requests.at(-1)?.headers['x-mirror-key'], CREDENTIAL);
    // A bad edit: logged, the last good config keeps serving.
    writeFileAtomic(configFile, `${withMirror}bogus: true\n`, { mode: 0o644 });
    await pollUntil('the failed reload', () =>
      gw.stderr().includes('"event":"gateway-config-reload-failed"'),
    );
    assert.equal((await viaMirror()).status, 200);
    // SIGHUP reloads at once; a new listen address is refused with a warning, the rest is taken.
    writeFileSync(
      configFile,
      original.replace('  - 127.0.0.1:0\n', '  - 127.0.0.1:0\n  - 127.0.0.1:1\n'),
    );
    gw.child.kill('SIGHUP');
    await pollUntil('the restart warning', () =>
      gw.stderr().includes('"event":"gateway-restart-needed"'),
    );
    assert.equal((await viaMirror()).status, 404, 'mirror is gone with the edit');
    assert.equal(
      (
        await curl([
          `${gw.base}/github/repos/acme/widgets`,
          '-H',
          `Authorization: Bearer ${gw.token()}`,
        ])
      ).status,
      200,
    );
    // Interception added to a gateway that started without it: it says interception stays off.
    writeFileSync(configFile, `${original}intercept:\n  ca: ./intercept-ca\n`);
    gw.child.kill('SIGHUP');
    await pollUntil('the interception warning', () =>
      gw.stderr().includes('HTTPS interception stays off until then'),
    );
    assert.doesNotMatch(gw.stderr(), /still intercepting/);
  });

  it(
    'workers: 2 serves from two processes; SIGHUP reaches both; SIGTERM stops all and exits 0',
    { timeout: 60_000 },
    async (t) => {
      const gw = await startGatewayFixture(t, { topLevel: 'workers: 2' });
      const token = gw.token();
      const once = () =>
        curl([`${gw.base}/github/repos/acme/widgets`, '-H', `Authorization: Bearer ${token}`]);
      await pollUntil('both workers to answer', async () => {
        assert.equal((await once()).status, 200);
        const pids = new Set(gw.requestLogs().map((line) => line.pid));
        return pids.size >= 2;
      });
      const workerPids = [...new Set(gw.requestLogs().map((line) => Number(line.pid)))];
      assert.ok(!workerPids.includes(gw.child.pid as number), 'the primary serves nothing itself');
      // A config edit announced by SIGHUP reaches every worker.
      const configFile = join(gw.dir, 'gateway.yaml');
      writeFileSync(
        configFile,
        readFileSync(configFile, 'utf8').replace(
          'upstreams:\n',
          `upstreams:\n  mirror:\n    url: https://127.0.0.1:${gw.upstream.port}\n    credential: { file: ./github.credential }\n    inject: "X-Mirror-Key: {credential}"\n    ca: ./ca.pem\n`,
        ),
      );
      gw.child.kill('SIGHUP');
      const mirror = gw.token({ service: 'mirror', hosts: ['127.0.0.1'], paths: ['/**'] });
      const viaMirror = () =>
        curl([`${gw.base}/mirror/repos/acme/widgets`, '-H', `Authorization: Bearer ${mirror}`]);
      await pollUntil('both workers to know the mirror', async () => {
        const statuses = await Promise.all(Array.from({ length: 6 }, () => viaMirror()));
        return statuses.every((r) => r.status === 200);
      });
      const exited = new Promise<number | null>((resolve) => gw.child.once('exit', resolve));
      gw.child.kill('SIGTERM');
      assert.equal(await exited, 0);
      for (const pid of workerPids)
        assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
    },
  );

  it('a broken credential file keeps the last good credential serving', async (t) => {
    const gw = await startGatewayFixture(t);
    writeFileSync(gw.credentialFile, '', { mode: 0o600 });
    await pollUntil('the reload failure to be logged', () =>
      gw.stderr().includes('credential-reload-failed'),
    );
    const res = await curl([
      `${gw.base}/github${PATH}`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 200);
    assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
  });

  it('streams a 20 MiB download whole', async (t) => {
    const gw = await startGatewayFixture(t);
    const bytes = 20 * 1024 * 1024;
    const out = join(gw.dir, 'download.bin');
    const res = await curl([
      '-o',
      out,
      `${gw.base}/github${PATH}/big?bytes=${bytes}`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 200);
    assert.equal(statSync(out).size, bytes);
  });

  it('streams a chunked upload whole', async (t) => {
    const gw = await startGatewayFixture(t);
    const body = randomBytes(3 * 1024 * 1024);
    const file = join(gw.dir, 'upload.bin');
    writeFileSync(file, body);
    const res = await curl([
      '-X',
      'POST',
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      `@${file}`,
      `${gw.base}/github${PATH}/upload`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 200, res.body);
    const seen = gw.upstream.requests.at(-1);
    assert.equal(seen?.body.length, body.length);
    assert.equal(
      createHash('sha256')
        .update(seen?.body ?? '')
        .digest('hex'),
      createHash('sha256').update(body).digest('hex'),
    );
  });

  it('keeps client connections alive across requests', async (t) => {
    const gw = await startGatewayFixture(t);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const token = gw.token();
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await get(agent, `${gw.base}/github${PATH}`, token));
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200, 200, 200, 200],
    );
    assert.deepEqual(
      results.map((r) => r.reused),
      [false, true, true, true, true],
    );
  });
});

describe('gateway: limits and failures', () => {
  const limits =
    'maxBodyBytes: 1024\nmaxHeaderBytes: 2048\nheadersTimeout: 1s\nupstreamTimeout: 1s';

  it('an oversized body is 413, declared or chunked, and never forwarded whole', async (t) => {
    const gw = await startGatewayFixture(t, { limits });
    const token = gw.token();
    const declared = await curl([
      '-X',
      'POST',
      '--data-binary',
      'x'.repeat(5000),
      `${gw.base}/github${PATH}`,
      '-H',
      `Authorization: Bearer ${token}`,
    ]);
    assert.equal(declared.status, 413);
    assert.equal((JSON.parse(declared.body) as { error: string }).error, 'ERR_BODY_TOO_LARGE');
    assert.equal(gw.upstream.requests.length, 0);
    const file = join(gw.dir, 'big.bin');
    writeFileSync(file, randomBytes(256 * 1024));
    const chunked = await curl([
      '-X',
      'POST',
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      `@${file}`,
      `${gw.base}/github${PATH}`,
      '-H',
      `Authorization: Bearer ${token}`,
    ]);
    assert.ok(chunked.status === 413 || chunked.exitCode !== 0, `got ${chunked.status}`);
    assert.ok(gw.upstream.requests.every((r) => r.body.length <= 1024 + 64 * 1024));
  });

  it('an oversized request head is 431', async (t) => {
    const gw = await startGatewayFixture(t, { limits });
    const res = await curl([
      `${gw.base}/github${PATH}`,
      '-H',
      `X-Big: ${'y'.repeat(4096)}`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 431);
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('a client that never finishes its request head is cut off with 408', async (t) => {
    const gw = await startGatewayFixture(t, { limits });
    const socket = connect(gw.port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (c: string) => (answer += c));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(`GET /github${PATH} HTTP/1.1\r\nHost: x\r\n`);
    await closed;
    assert.match(answer, /^HTTP\/1\.1 408/);
  });

  it('an upstream that does not answer is 504', async (t) => {
    const gw = await startGatewayFixture(t, { limits });
    const res = await curl([
      `${gw.base}/github${PATH}/stall`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 504);
    assert.equal((JSON.parse(res.body) as { error: string }).error, 'ERR_UPSTREAM_TIMEOUT');
  });

  it('an upstream that stalls in the middle of its body is cut, not waited for', async (t) => {
    const gw = await startGatewayFixture(t, { limits });
    const started = Date.now();
    const res = await curl([
      '-m',
      '20',
      `${gw.base}/github${PATH}/stall-body`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    // curl sees the connection cut (52: empty reply, or 18: partial body), well before its own
    // 20 s limit: never a silently short answer.
    assert.ok([18, 52].includes(res.exitCode ?? -1), `curl exit ${res.exitCode}: ${res.stderr}`);
    assert.ok(Date.now() - started < 15_000);
    assert.ok(res.body.length < 1000);
  });

  it('an upstream that cannot be reached is 502', async (t) => {
    const gw = await startGatewayFixture(t, {
      extraUpstreams:
        '  down:\n    url: https://127.0.0.2:9\n    credential: { env: MINTFS_TEST_DOWN }\n    inject: "X-Api-Key: {credential}"',
      env: { MINTFS_TEST_DOWN: 'down-secret' },
    });
    const token = gw.token({ service: 'down', hosts: ['127.0.0.2'], paths: ['/**'] });
    const res = await curl([`${gw.base}/down/anything`, '-H', `Authorization: Bearer ${token}`]);
    assert.equal(res.status, 502);
    assert.equal((JSON.parse(res.body) as { error: string }).error, 'ERR_UPSTREAM_UNREACHABLE');
  });

  it('SIGTERM lets an in-flight request finish, then exits 0', async (t) => {
    const gw = await startGatewayFixture(t);
    const inFlight = curl([
      `${gw.base}/github${PATH}/delay?ms=1500`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    await pollUntil('the upstream to receive the request', () => gw.upstream.requests.length === 1);
    const exited = new Promise<number | null>((resolve) =>
      gw.child.once('exit', (code) => resolve(code)),
    );
    gw.child.kill('SIGTERM');
    await pollUntil('the shutdown to start', () => gw.stderr().includes('"event":"shutdown"'));
    const refused = await curl([
      `${gw.base}/github${PATH}`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.notEqual(refused.exitCode, 0, 'no new connections after SIGTERM');
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(await exited, 0);
  });
});
