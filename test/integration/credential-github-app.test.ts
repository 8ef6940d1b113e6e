/**
 * The `githubApp` credential source through a real gateway, against a GitHub
 * API stand-in over TLS that verifies the app's JWT, records each mint's body,
 * and serves repositories only to a live installation token that lists them.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../src/keys/atomic-write.js';
import { attenuateToken } from '../../src/token/attenuate.js';
import { inspectToken } from '../../src/token/inspect.js';
import { BACKENDS } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { startMountFixture } from '../helpers/mount-fixture.js';
import { bearerGet, startGatewayFixture, type GatewayFixture } from '../helpers/gateway-fixture.js';
import {
  githubAppUpstream,
  startGitHubStandIn,
  type GitHubStandIn,
} from '../helpers/github-app-server.js';
import { pollUntil } from '../helpers/poll.js';
import { REDIS_PASSWORD, startRedis } from '../helpers/redis-server.js';
import { teardownOf, tempDir } from '../helpers/temp.js';
import { makeTestPki } from '../helpers/tls.js';
import type { TokenGrant } from '../../src/token/mint.js';

const HOST = 'api.github.test';

interface Setup {
  gw: GatewayFixture;
  stand: GitHubStandIn;
  agent: Agent;
  token(agent?: string, github?: TokenGrant['github']): string;
}

async function setup(
  t: TestContext,
  prepare?: (stand: GitHubStandIn) => void,
  topLevel?: string,
): Promise<Setup> {
  const dir = tempDir(t);
  const pki = makeTestPki(dir);
  const stand = await startGitHubStandIn(pki, teardownOf(t), {
    repositories: ['widgets', 'gadgets', 'secret-plans'],
    permissions: { contents: 'write', metadata: 'read', issues: 'write' },
  });
  prepare?.(stand);
  const keyFile = join(dir, 'app.pem');
  writeFileAtomic(keyFile, stand.privateKeyPem, { mode: 0o600 });
  const gw = await startGatewayFixture(t, {
    limits: 'agentConcurrency: 64',
    ...(topLevel === undefined ? {} : { topLevel }),
    extraUpstreams: githubAppUpstream({
      name: 'ghapp',
      host: HOST,
      stand,
      pki,
      keyFile,
      permissions: '{ contents: read, metadata: read }',
      inject: '"Authorization: Bearer {credential}"',
    }).join('\n'),
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  t.after(() => agent.destroy());
  return {
    gw,
    stand,
    agent,
    token: (name = 'test-agent', github?: TokenGrant['github']) =>
      gw.token({
        agent: name,
        service: 'ghapp',
        hosts: [HOST],
        paths: ['/repos/acme/**'],
        ...(github === undefined ? {} : { github }),
      }),
  };
}

const repo = (s: Setup, path: string, token: string) =>
  bearerGet(s.agent, `${s.gw.base}/ghapp/repos/acme/${path}`, token);

describe('credential source: githubApp', () => {
  it('an installation token is minted with a JWT GitHub verifies, narrowed to the ceiling, once for 50 concurrent first requests, and its 520 characters redacted', async (t) => {
    const s = await setup(t);
    const token = s.token();
    const answers = await Promise.all(Array.from({ length: 50 }, () => repo(s, 'widgets', token)));
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(50).fill(200),
    );
    assert.deepEqual(s.stand.refusals, []);
    assert.deepEqual(s.stand.mints, [
      { repositories: ['gadgets', 'widgets'], permissions: { contents: 'read', metadata: 'read' } },
    ]);
    const [issued] = [...s.stand.tokens.keys()];
    assert.ok(issued !== undefined && issued.startsWith('ghs_') && issued.length === 520);
    for (const a of answers) {
      assert.ok(!a.body.includes(issued), 'the echoed token is redacted');
      assert.ok(!a.body.includes(issued.slice(0, 200)));
    }
    // The token GitHub issued reaches only what it lists: the ceiling holds upstream too.
    assert.equal((await repo(s, 'secret-plans', token)).status, 404);
    assert.equal(s.stand.mints.length, 1, 'one mint for every request of the agent');
    assert.ok(!s.gw.stderr().includes(issued.slice(4, 80)), 'the token is never logged');
    assert.ok(!s.gw.stderr().includes('PRIVATE KEY'));
  });

  it('a new token GitHub does not accept yet is tried until it does, not failed', async (t) => {
    const s = await setup(t, (stand) => (stand.activationMs = 1200));
    const answer = await repo(s, 'widgets', s.token());
    assert.equal(answer.status, 200);
    assert.equal(s.stand.mints.length, 1);
    assert.ok(
      s.stand.repoRequests.every((r) => r.status === 200),
      'no request went upstream with a token GitHub did not know yet',
    );
  });

  it('an app key GitHub does not accept is a 502 naming the source, never the key', async (t) => {
    const s = await setup(t, (stand) => {
      stand.publicKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    });
    const answer = await repo(s, 'widgets', s.token());
    assert.equal(answer.status, 502);
    const body = JSON.parse(answer.body) as { error: string; message: string };
    assert.equal(body.error, 'ERR_CREDENTIAL_UNAVAILABLE');
    assert.match(body.message, /githubApp .* answered 401 to the token request/);
    assert.deepEqual(s.stand.refusals, ['signature']);
    assert.equal(s.stand.repoRequests.length, 0);
  });

  it('a token is refreshed ahead of its expiry, once', async (t) => {
    const s = await setup(t, (stand) => (stand.lifetimeSeconds = 4));
    const token = s.token();
    assert.equal((await repo(s, 'widgets', token)).status, 200);
    await pollUntil('a refresh before expiry', async () => {
      assert.equal((await repo(s, 'widgets', token)).status, 200);
      return s.stand.mints.length === 2;
    });
    assert.ok(
      s.stand.repoRequests.every((r) => r.status === 200),
      'no request met an expired token',
    );
  });

  it('a gateway stop revokes the installation tokens it minted', async (t) => {
    const s = await setup(t);
    assert.equal((await repo(s, 'widgets', s.token('alice'))).status, 200);
    assert.equal((await repo(s, 'widgets', s.token('bob'))).status, 200);
    assert.equal(s.stand.tokens.size, 2, 'one token per agent');
    const exited = new Promise((resolve) => s.gw.child.once('exit', resolve));
    s.gw.child.kill('SIGTERM');
    await exited;
    assert.deepEqual(
      [...s.stand.tokens.values()].map((issued) => issued.revoked),
      [true, true],
    );
  });

  it('the mint asks for exactly the repositories and permissions of a token read from each mount backend', async (t) => {
    const s = await setup(t);
    const caveatLists: string[][] = [];
    for (const backend of BACKENDS) {
      const mount = await startMountFixture(
        t,
        `agent: agent-${backend}
ttl: 5m
files:
  ghapp/token:
    service: ghapp
    hosts: [${HOST}]
    methods: [GET]
    paths: ["/repos/acme/**"]
    github:
      repositories: [widgets]
      permissions: { contents: read }
`,
        { keysDir: s.gw.keysDir, backend },
      );
      const token = readFileSync(join(mount.mountpoint, 'ghapp/token'), 'utf8');
      caveatLists.push(
        inspectToken(token).caveats.filter(
          (c) => !c.startsWith('time-before') && !c.startsWith('agent'),
        ),
      );
      assert.equal((await repo(s, 'widgets', token)).status, 200, backend);
      // The installation token reaches only the listed repository, whatever the macaroon's paths say.
      assert.equal((await repo(s, 'gadgets', token)).status, 404, backend);
    }
    assert.ok(caveatLists.every((list) => JSON.stringify(list) === JSON.stringify(caveatLists[0])));
    assert.ok(caveatLists[0]?.includes('github-repos widgets'));
    assert.ok(caveatLists[0]?.includes('github-perms contents=read'));
    assert.deepEqual(
      s.stand.mints,
      BACKENDS.map(() => ({ repositories: ['widgets'], permissions: { contents: 'read' } })),
    );
  });

  it('an agent appending github caveats only narrows; asking beyond the ceiling is refused before any mint', async (t) => {
    const s = await setup(t);
    const token = s.token('narrow', { repositories: ['widgets', 'gadgets'] });
    const narrowed = attenuateToken(token, [
      'github-repos gadgets secret-plans',
      'github-perms metadata=read',
    ]);
    assert.equal((await repo(s, 'gadgets', narrowed)).status, 200);
    assert.deepEqual(s.stand.mints, [
      { repositories: ['gadgets'], permissions: { metadata: 'read' } },
    ]);

    const refused = async (attenuated: string, reason: RegExp) => {
      const answer = await repo(s, 'widgets', attenuated);
      assert.equal(answer.status, 403);
      const body = JSON.parse(answer.body) as { error: string; message: string };
      assert.equal(body.error, 'ERR_CAVEAT_UNSATISFIED');
      assert.match(body.message, reason);
    };
    // Beyond the ceiling (contents: read): refused, not silently cut down.
    await refused(
      attenuateToken(s.token('wide'), ['github-perms contents=write']),
      /contents=write is outside/,
    );
    await refused(s.token('wide', { repositories: ['secret-plans'] }), /secret-plans is outside/);
    // Caveats that leave nothing: never an empty (= unnarrowed) request to GitHub.
    await refused(attenuateToken(token, ['github-repos other']), /allow no repository/);
    await refused(
      attenuateToken(s.token('p', { permissions: { contents: 'read' } }), [
        'github-perms issues=read',
      ]),
      /allow no permission/,
    );
    assert.equal(s.stand.mints.length, 1, 'no mint for a refused token');
    // A token narrowed for GitHub, sent to an upstream whose credential cannot be narrowed.
    const staticAnswer = await bearerGet(
      s.agent,
      `${s.gw.base}/github/repos/acme/widgets`,
      s.gw.token({ github: { repositories: ['widgets'] } }),
    );
    assert.equal(staticAnswer.status, 403);
  });

  it('mintfs revoke --agent revokes the installation tokens minted for that agent, and only those', async (t) => {
    const s = await setup(t);
    assert.equal((await repo(s, 'widgets', s.token('alice'))).status, 200);
    assert.equal((await repo(s, 'widgets', s.token('bob'))).status, 200);
    const [aliceToken, bobToken] = [...s.stand.tokens.values()];
    const revoked = runCli(['revoke', '--agent', 'alice', '--keys', s.gw.keysDir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await pollUntil("alice's installation token to be revoked upstream", () => aliceToken?.revoked);
    assert.equal(bobToken?.revoked, false, "another agent's token stays");
    // Alice's next token (issued after the revocation) gets a fresh installation token.
    await pollUntil('a new token of alice to be served', async () =>
      (await repo(s, 'widgets', s.token('alice'))).status === 200 ? true : undefined,
    );
    assert.equal(s.stand.mints.length, 3);
  });

  it('mintfs revoke --agent --redis ends the installation tokens a gateway sharing that Redis minted', async (t) => {
    const redis = await startRedis(teardownOf(t));
    const s = await setup(t, undefined, `redis:\n  url: ${redis.url}`);
    assert.equal((await repo(s, 'widgets', s.token('alice'))).status, 200);
    assert.equal((await repo(s, 'widgets', s.token('bob'))).status, 200);
    const [aliceToken, bobToken] = [...s.stand.tokens.values()];
    // Recorded in Redis only: the gateway hears it there, not from the keyring's files.
    const revoked = runCli(['revoke', '--agent', 'alice', '--redis', redis.url]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await pollUntil("alice's installation token to be revoked upstream", () => aliceToken?.revoked);
    assert.equal(bobToken?.revoked, false, "another agent's token stays");
    assert.ok(!s.gw.stderr().includes(REDIS_PASSWORD));
  });
});
