/**
 * The gateway against a real HTTPS upstream, driven with real curl: the
 * credential is injected and never comes back; every refusal happens
 * before the upstream sees anything.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CREDENTIAL, startGatewayFixture } from '../helpers/gateway-fixture.js';
import { curl } from '../helpers/curl.js';
import { pollUntil } from '../helpers/poll.js';

const PATH = '/repos/acme/widgets';

describe('gateway: injection and routing', () => {
  it('reverse proxy: swaps the token for the real credential', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token();
    const res = await curl([
      `${gw.base}/github${PATH}/pulls?state=open`,
      '-H',
      `Authorization: Bearer ${token}`,
    ]);
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), {
      ok: true,
      method: 'GET',
      path: `${PATH}/pulls`,
      bodyBytes: 0,
    });
    const seen = gw.upstream.requests.at(-1);
    assert.equal(seen?.url, `${PATH}/pulls?state=open`);
    assert.equal(seen?.headers.authorization, `token ${CREDENTIAL}`);
    assert.equal(seen?.headers.host, `localhost:${gw.upstream.port}`);
    assert.ok(
      !JSON.stringify(seen?.headers).includes(token),
      'the token never reaches the upstream',
    );
  });

  it('forward proxy: an absolute http:// URL goes to the upstream on that host over HTTPS', async (t) => {
    const gw = await startGatewayFixture(t);
    const res = await curl([
      '-x',
      gw.base,
      `http://localhost${PATH}/issues`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 200, res.body);
    assert.equal(gw.upstream.requests.at(-1)?.url, `${PATH}/issues`);
    assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
  });

  it('accepts the token as Basic password, as `token`, and in Proxy-Authorization', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token();
    const url = `${gw.base}/github${PATH}`;
    assert.equal((await curl([url, '-u', `x:${token}`])).status, 200);
    assert.equal((await curl([url, '-H', `Authorization: token ${token}`])).status, 200);
    assert.equal(
      (await curl(['-x', gw.base, `http://localhost${PATH}`, '--proxy-user', `x:${token}`])).status,
      200,
    );
    assert.equal(
      (
        await curl([
          '-x',
          gw.base,
          `http://localhost${PATH}`,
          '-H',
          `Proxy-Authorization: Bearer ${token}`,
        ])
      ).status,
      200,
    );
  });

  it('replaces a client-sent header of the injected name instead of merging it', async (t) => {
    const gw = await startGatewayFixture(t);
    const res = await curl([
      `${gw.base}/github${PATH}`,
      '-H',
      `Proxy-Authorization: Bearer ${gw.token()}`,
      '-H',
      'Authorization: token attacker-chosen',
    ]);
    assert.equal(res.status, 200);
    assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
  });

  it('listens on a unix socket too', async (t) => {
    const gw = await startGatewayFixture(t);
    const res = await curl([
      '--unix-socket',
      gw.socketPath,
      `http://localhost/github${PATH}`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 200, res.body);
  });

  it('refuses CONNECT tunnels with a clear message', async (t) => {
    const gw = await startGatewayFixture(t);
    const res = await curl(['-p', '-x', gw.base, `https://localhost:${gw.upstream.port}${PATH}`]);
    assert.notEqual(res.exitCode, 0);
    assert.match(res.headers, /405/);
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('an unknown service is 404 and never proxied', async (t) => {
    const gw = await startGatewayFixture(t);
    const res = await curl([
      `${gw.base}/gitlab${PATH}`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 404);
    assert.equal((JSON.parse(res.body) as { error: string }).error, 'ERR_SERVICE_UNKNOWN');
  });
});

describe('gateway: denials never reach the upstream', () => {
  it('no token: 401 with a Basic challenge (so git asks its credential helper)', async (t) => {
    const gw = await startGatewayFixture(t);
    const res = await curl([`${gw.base}/github${PATH}`]);
    assert.equal(res.status, 401);
    assert.match(res.headers, /www-authenticate: Basic realm="mintfs"/i);
    assert.deepEqual(Object.keys(JSON.parse(res.body) as object), ['error', 'message']);
    assert.equal((JSON.parse(res.body) as { error: string }).error, 'ERR_TOKEN_MISSING');
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('each refusal has its status and code, and the upstream sees none', async (t) => {
    const gw = await startGatewayFixture(t);
    const url = `${gw.base}/github${PATH}`;
    const good = gw.token();
    const tampered = Buffer.from(good, 'base64url');
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    const cases: Array<[string, string[], number, string]> = [
      [
        'expired',
        [
          '-H',
          `Authorization: Bearer ${gw.token({ ttlMs: 10_000 }, new Date(Date.now() - 60_000))}`,
        ],
        401,
        'ERR_TOKEN_EXPIRED',
      ],
      [
        'tampered',
        ['-H', `Authorization: Bearer ${tampered.toString('base64url')}`],
        401,
        'ERR_TOKEN_SIGNATURE',
      ],
      ['garbage', ['-H', 'Authorization: Bearer not-a-token'], 401, 'ERR_TOKEN_MALFORMED'],
      [
        'wrong method',
        ['-X', 'DELETE', '-H', `Authorization: Bearer ${good}`],
        403,
        'ERR_CAVEAT_UNSATISFIED',
      ],
      [
        'other service',
        ['-H', `Authorization: Bearer ${gw.token({ service: 'gitlab' })}`],
        403,
        'ERR_CAVEAT_UNSATISFIED',
      ],
      [
        'other host',
        ['-H', `Authorization: Bearer ${gw.token({ hosts: ['api.github.com'] })}`],
        403,
        'ERR_CAVEAT_UNSATISFIED',
      ],
    ];
    for (const [name, args, status, code] of cases) {
      const res = await curl([url, ...args]);
      assert.equal(res.status, status, name);
      assert.equal((JSON.parse(res.body) as { error: string }).error, code, name);
    }
    const outside = await curl([
      `${gw.base}/github/repos/acme/secrets`,
      '-H',
      `Authorization: Bearer ${good}`,
    ]);
    assert.equal(outside.status, 403);
    assert.match(outside.body, /path \/repos\/acme\/widgets\/\*\*/);
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('refuses every path-smuggling form with 400 before checking the token', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token({ paths: ['/**'] });
    const forms = [
      `/github${PATH}/../../other/secrets`,
      `/github${PATH}/%2e%2e/%2e%2e/other`,
      `/github${PATH}/.%2E/x`,
      `/github/repos%2facme%2fwidgets`,
      `/github/repos%5cacme`,
      `/github${PATH}\\..\\x`,
      `/github//repos/acme/widgets`,
      `/github${PATH}/./x`,
      `/github/../gitlab/x`,
    ];
    for (const path of forms) {
      const res = await curl([
        '--path-as-is',
        `${gw.base}${path}`,
        '-H',
        `Authorization: Bearer ${token}`,
      ]);
      assert.equal(res.status, 400, path);
      assert.equal((JSON.parse(res.body) as { error: string }).error, 'ERR_PATH_AMBIGUOUS', path);
    }
    assert.equal(gw.upstream.requests.length, 0);
  });
});

describe('gateway: the credential never comes back', () => {
  it('an echoed credential is redacted from headers and body', async (t) => {
    const gw = await startGatewayFixture(t);
    const res = await curl([
      `${gw.base}/github${PATH}/echo`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 200);
    assert.ok(!res.headers.includes(CREDENTIAL) && !res.body.includes(CREDENTIAL));
    assert.match(res.headers, /x-echo-authorization: token \[redacted\]/i);
    assert.match(res.body, /token \*{10}/);
    assert.ok(JSON.parse(res.body), 'the body is still valid JSON (same length)');
  });

  it('a compressed echo is decoded and redacted too', async (t) => {
    const gw = await startGatewayFixture(t);
    const res = await curl([
      '--compressed',
      `${gw.base}/github${PATH}/echo-gzip`,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
    ]);
    assert.equal(res.status, 200);
    assert.ok(!res.body.includes(CREDENTIAL));
    assert.match(res.body, /"authorization":"token \*+"/);
  });

  it('the audit log has one line per request, naming ids, never the token or credential', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token();
    await curl([`${gw.base}/github${PATH}`, '-H', `Authorization: Bearer ${token}`]);
    await curl([
      `${gw.base}/github${PATH}`,
      '-X',
      'DELETE',
      '-H',
      `Authorization: Bearer ${token}`,
    ]);
    // The gateway writes its log asynchronously: wait for both lines.
    const lines = await pollUntil(
      'two audit lines',
      () => gw.requestLogs().length >= 2 && gw.requestLogs(),
    );
    assert.equal(lines.length, 2);
    const [ok, denied] = lines as [Record<string, unknown>, Record<string, unknown>];
    assert.equal(ok.agent, 'test-agent');
    assert.match(String(ok.tokenId), /^[A-Za-z0-9_-]{22}$/);
    assert.equal(ok.service, 'github');
    assert.equal(ok.method, 'GET');
    assert.equal(ok.path, PATH);
    assert.equal(ok.status, 200);
    assert.equal(typeof ok.bytesOut, 'number');
    assert.equal(typeof ok.durationMs, 'number');
    assert.equal(denied.status, 403);
    assert.equal(denied.error, 'ERR_CAVEAT_UNSATISFIED');
    assert.ok(!gw.stderr().includes(token.slice(0, 40)), 'no token in logs');
    assert.ok(!gw.stderr().includes(CREDENTIAL), 'no credential in logs');
  });
});
