/**
 * The `oauth2` credential source through a real gateway, against a token
 * endpoint stand-in over TLS that authenticates the client and rotates
 * refresh tokens as a real one does.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { writeFileAtomic } from '../../src/keys/atomic-write.js';
import { bearerGet, startGatewayFixture, type GatewayFixture } from '../helpers/gateway-fixture.js';
import { startTokenEndpoint, type TokenEndpoint } from '../helpers/oauth2-server.js';
import { runCli } from '../helpers/cli.js';
import { pollUntil } from '../helpers/poll.js';
import { teardownOf, tempDir } from '../helpers/temp.js';
import { makeTestPki } from '../helpers/tls.js';

const ECHO = '/github/repos/acme/widgets/echo';
const CLIENT_SECRET = 'cs_very+secret/value=with&specials';

interface Setup {
  gw: GatewayFixture;
  endpoint: TokenEndpoint;
  dir: string;
  agent: Agent;
}

async function setup(
  t: TestContext,
  grant: 'client_credentials' | 'refresh_token',
  extra = '',
  secret = CLIENT_SECRET,
): Promise<Setup> {
  const dir = tempDir(t);
  const pki = makeTestPki(dir);
  const endpoint = await startTokenEndpoint(pki, teardownOf(t), {
    id: 'mintfs-gateway',
    ...(grant === 'client_credentials' ? { secret: CLIENT_SECRET } : {}),
  });
  writeFileAtomic(join(dir, 'client-secret'), `${secret}\n`, { mode: 0o600 });
  writeFileAtomic(join(dir, 'refresh-token'), `${endpoint.refreshToken}\n`, { mode: 0o600 });
  const files =
    grant === 'client_credentials'
      ? `clientSecret: ${join(dir, 'client-secret')}`
      : `refreshToken: ${join(dir, 'refresh-token')}`;
  const gw = await startGatewayFixture(t, {
    credential: `{ oauth2: { tokenUrl: "${endpoint.url}", clientId: mintfs-gateway, grant: ${grant}, ${files}, ca: ${pki.caFile}${extra} } }`,
  });
  const agent = new Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  return { gw, endpoint, dir, agent };
}

function failureLines(gw: GatewayFixture): Array<Record<string, unknown>> {
  return gw
    .stderr()
    .split('\n')
    .filter((l) => l.includes('"event":"credential-mint-failed"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('credential source: oauth2', () => {
  it('client_credentials: the client authenticates with HTTP Basic, each agent gets its own access token, and it is redacted', async (t) => {
    const { gw, endpoint, agent } = await setup(
      t,
      'client_credentials',
      ', scope: "repo read:org"',
    );
    const alice = gw.token({ agent: 'alice' });
    const bob = gw.token({ agent: 'bob' });
    for (const token of [alice, alice, bob, alice, bob]) {
      const answer = await bearerGet(agent, `${gw.base}${ECHO}`, token);
      assert.equal(answer.status, 200);
      for (const issued of endpoint.issued) assert.ok(!answer.body.includes(issued));
    }
    assert.equal(endpoint.issued.length, 2, 'one mint per agent');
    assert.deepEqual(
      endpoint.requests.map((r) => [r.auth, r.form.get('grant_type'), r.form.get('scope')]),
      [
        ['basic', 'client_credentials', 'repo read:org'],
        ['basic', 'client_credentials', 'repo read:org'],
      ],
    );
    const used = new Set(gw.upstream.requests.map((r) => r.headers.authorization));
    assert.deepEqual(used, new Set(endpoint.issued.map((token) => `token ${token}`)));
    assert.ok(!gw.stderr().includes(CLIENT_SECRET));
    for (const issued of endpoint.issued) assert.ok(!gw.stderr().includes(issued));
  });

  it('a client secret the endpoint refuses is a 502 naming its answer, never the secret or its description', async (t) => {
    const wrong = 'cs_wrong_secret_value';
    const { gw, endpoint, agent } = await setup(
      t,
      'client_credentials',
      ', clientAuth: body',
      wrong,
    );
    const answer = await bearerGet(agent, `${gw.base}${ECHO}`, gw.token());
    assert.equal(answer.status, 502);
    const body = JSON.parse(answer.body) as { error: string; message: string };
    assert.equal(body.error, 'ERR_CREDENTIAL_UNAVAILABLE');
    assert.match(body.message, /oauth2 token endpoint .* answered 401 \(invalid_client\)/);
    assert.equal(endpoint.requests[0]?.auth, 'body');
    await pollUntil('the failure log line', () => failureLines(gw).length === 1);
    assert.equal(failureLines(gw)[0]?.source, 'oauth2');
    for (const text of [answer.body, gw.stderr()]) assert.ok(!text.includes(wrong));
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('refresh_token: each rotated refresh token is written back (mode 0600) before the access token is used, and the next mint spends it', async (t) => {
    const { gw, endpoint, dir, agent } = await setup(t, 'refresh_token');
    const file = join(dir, 'refresh-token');
    const first = endpoint.refreshToken;
    assert.equal(
      (await bearerGet(agent, `${gw.base}${ECHO}`, gw.token({ agent: 'a' }))).status,
      200,
    );
    assert.notEqual(endpoint.refreshToken, first, 'the endpoint rotated it');
    assert.equal(readFileSync(file, 'utf8').trim(), endpoint.refreshToken);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // A second agent's mint presents the rotated token (the stand-in refuses a spent one).
    assert.equal(
      (await bearerGet(agent, `${gw.base}${ECHO}`, gw.token({ agent: 'b' }))).status,
      200,
    );
    assert.equal(endpoint.issued.length, 2);
    assert.equal(readFileSync(file, 'utf8').trim(), endpoint.refreshToken);
    assert.deepEqual(
      endpoint.requests.map((r) => [r.auth, r.form.get('grant_type')]),
      [
        ['body', 'refresh_token'],
        ['body', 'refresh_token'],
      ],
    );
    // Concurrent first requests of more agents: mints are serialised, none spends a spent token.
    const answers = await Promise.all(
      ['c', 'd', 'e', 'f'].map((name) =>
        bearerGet(agent, `${gw.base}${ECHO}`, gw.token({ agent: name })),
      ),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200],
    );
    assert.equal(endpoint.issued.length, 6);
  });

  it('a refresh token the endpoint no longer accepts is one clear 502, not a loop', async (t) => {
    const { gw, endpoint, agent } = await setup(t, 'refresh_token');
    endpoint.refreshToken = 'rt_revoked_by_the_provider';
    const token = gw.token();
    for (let i = 0; i < 10; i++) {
      const answer = await bearerGet(agent, `${gw.base}${ECHO}`, token);
      assert.equal(answer.status, 502);
      assert.match(answer.body, /answered 400 \(invalid_grant\)/);
      assert.ok(!answer.body.includes('spent'), 'the endpoint description is not passed on');
    }
    assert.equal(endpoint.requests.length, 1, 'refused from the backoff, not retried per request');
    await pollUntil('the failure log line', () => failureLines(gw).length === 1);
    assert.ok(!gw.stderr().includes('rt_'), 'no refresh token in the log');
  });

  it("mintfs revoke --agent drops the agent's access token from the cache", async (t) => {
    const { gw, endpoint, agent } = await setup(t, 'client_credentials');
    assert.equal(
      (await bearerGet(agent, `${gw.base}${ECHO}`, gw.token({ agent: 'alice' }))).status,
      200,
    );
    assert.equal(
      (await bearerGet(agent, `${gw.base}${ECHO}`, gw.token({ agent: 'bob' }))).status,
      200,
    );
    assert.equal(endpoint.issued.length, 2);
    const revoked = runCli(['revoke', '--agent', 'alice', '--keys', gw.keysDir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await pollUntil("the gateway to drop alice's access token", () =>
      gw
        .stderr()
        .includes(
          '"event":"credential-revoked","service":"github","agent":"alice","dropped":1,"revokedUpstream":0',
        )
        ? true
        : undefined,
    );
    // Alice's next token gets a new access token; Bob's is still cached.
    await pollUntil('a new token of alice to be served', async () =>
      (await bearerGet(agent, `${gw.base}${ECHO}`, gw.token({ agent: 'alice' }))).status === 200
        ? true
        : undefined,
    );
    assert.equal(
      (await bearerGet(agent, `${gw.base}${ECHO}`, gw.token({ agent: 'bob' }))).status,
      200,
    );
    assert.equal(endpoint.issued.length, 3);
    const last = gw.upstream.requests.at(-2)?.headers.authorization;
    assert.equal(last, `token ${endpoint.issued[2]}`);
  });
});
