/**
 * GitHub App installation tokens end to end, with GitHub's own clients: `gh`
 * and `git` (clone and push) through HTTPS interception, each holding only a
 * macaroon read from a real mount, against a GitHub stand-in that verifies the
 * app's JWT, mints installation tokens, and serves the API and git's smart
 * HTTP only to a live installation token for a listed repository (git with
 * the token as HTTP Basic's password, as github.com takes it).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { writeFileAtomic } from '../../src/keys/atomic-write.js';
import { startGatewayFixture, type GatewayFixture } from '../helpers/gateway-fixture.js';
import {
  githubAppUpstream,
  startGitHubStandIn,
  type GitHubStandIn,
} from '../helpers/github-app-server.js';
import { interceptEnv } from '../helpers/intercept-env.js';
import { startMountFixture } from '../helpers/mount-fixture.js';
import { runAsync, type Completed } from '../helpers/spawn.js';
import { teardownOf, tempDir } from '../helpers/temp.js';
import { makeTestPki } from '../helpers/tls.js';

const API = 'api.github.com';
const WEB = 'github.com';

interface Setup {
  readonly gw: GatewayFixture;
  readonly stand: GitHubStandIn;
  readonly bare: string;
  readonly home: string;
  readonly secrets: string;
  readonly env: NodeJS.ProcessEnv;
}

function gitSync(args: string[], cwd: string): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: 'pipe', timeout: 60_000 });
}

async function setup(t: TestContext): Promise<Setup> {
  const root = tempDir(t);
  const pki = makeTestPki(root);
  const gitRoot = join(root, 'repos');
  const seed = join(root, 'seed');
  mkdirSync(seed);
  mkdirSync(gitRoot);
  gitSync(['init', '-q', '-b', 'main'], seed);
  writeFileSync(join(seed, 'README'), 'widgets\n');
  gitSync(['add', 'README'], seed);
  gitSync(
    ['-c', 'user.name=m', '-c', 'user.email=m@example.invalid', 'commit', '-qm', 'first'],
    seed,
  );
  const bare = join(gitRoot, 'widgets.git');
  gitSync(['clone', '-q', '--bare', seed, bare], root);

  const stand = await startGitHubStandIn(
    pki,
    teardownOf(t),
    {
      repositories: ['widgets', 'gadgets'],
      permissions: { contents: 'write', metadata: 'read' },
    },
    { gitRoot },
  );
  const keyFile = join(root, 'app.pem');
  writeFileAtomic(keyFile, stand.privateKeyPem, { mode: 0o600 });
  // One app, two upstreams: the REST API takes the installation token as
  // `token`, git takes it as HTTP Basic's password.
  const upstream = (name: string, host: string, inject: string) =>
    githubAppUpstream({
      name,
      host,
      stand,
      pki,
      keyFile,
      permissions: '{ contents: write, metadata: read }',
      inject,
    });
  const gw = await startGatewayFixture(t, {
    intercept: { hosts: [API, WEB], githubOwnsHosts: false },
    extraUpstreams: [
      ...upstream('github-api', API, '"Authorization: token {credential}"'),
      ...upstream('github-git', WEB, '{ basic: { username: x-access-token } }'),
    ].join('\n'),
  });
  const mount = await startMountFixture(
    t,
    `agent: coder
files:
  github/token:
    service: github-api
    hosts: [${API}]
    methods: [GET]
    paths: ["/repos/acme/**"]
    github: { repositories: [widgets], permissions: { metadata: read } }
  github/git-read:
    service: github-git
    hosts: [${WEB}]
    methods: [GET, POST]
    paths: ["/acme/widgets.git/**"]
    github: { repositories: [widgets], permissions: { contents: read } }
  github/git-write:
    service: github-git
    hosts: [${WEB}]
    methods: [GET, POST]
    paths: ["/acme/widgets.git/**"]
    github: { repositories: [widgets], permissions: { contents: write } }
`,
    { keysDir: gw.keysDir },
  );
  const home = tempDir(t);
  return {
    gw,
    stand,
    bare,
    home,
    secrets: mount.mountpoint,
    env: {
      ...interceptEnv(gw, home),
      GH_CONFIG_DIR: join(home, 'gh'),
      GH_NO_UPDATE_NOTIFIER: '1',
      GH_PROMPT_DISABLED: '1',
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'agent',
      GIT_AUTHOR_EMAIL: 'agent@example.invalid',
      GIT_COMMITTER_NAME: 'agent',
      GIT_COMMITTER_EMAIL: 'agent@example.invalid',
    },
  };
}

/** git with a credential helper that cats a token file of the mount, as an agent's git config would. */
function git(s: Setup, tokenFile: string, args: string[], cwd: string): Promise<Completed> {
  const helper = `!f() { echo username=x-access-token; echo "password=$(cat ${join(s.secrets, tokenFile)})"; }; f`;
  return runAsync('git', ['-c', `credential.helper=${helper}`, ...args], undefined, s.env, cwd);
}

/** Every installation token the stand-in issued: none may reach the agent's side. */
function assertNoInstallationToken(s: Setup, ...outputs: string[]): void {
  assert.ok(s.stand.tokens.size > 0);
  for (const issued of s.stand.tokens.keys())
    for (const output of [...outputs, s.gw.stderr()])
      assert.ok(!output.includes(issued.slice(4, 60)), 'an installation token reached the agent');
}

describe('GitHub App tokens with gh and git through interception', () => {
  it('gh api with GH_TOKEN=$(cat token) gets an installation token narrowed to the caveats, its echo redacted', async (t) => {
    const s = await setup(t);
    const tokenFile = join(s.secrets, 'github', 'token');
    const gh = (path: string) =>
      runAsync(
        'bash',
        ['-c', `GH_TOKEN=$(cat ${tokenFile}) exec gh api ${path}`],
        undefined,
        s.env,
        s.home,
      );
    const first = await gh('repos/acme/widgets');
    assert.equal(first.code, 0, first.stderr);
    const answer = JSON.parse(first.stdout) as { full_name: string; seen: string };
    assert.equal(answer.full_name, 'acme/widgets');
    // The stand-in echoes the Authorization it got; the agent sees it masked.
    assert.ok(!answer.seen.includes('ghs_'), answer.seen);
    const second = await gh('repos/acme/widgets/pulls');
    assert.equal(second.code, 0, second.stderr);
    // The macaroon's paths allow gadgets; its github caveat does not, and
    // neither does the installation token GitHub issued for it.
    const other = await gh('repos/acme/gadgets');
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /Not Found/);
    assert.deepEqual(s.stand.mints, [
      { repositories: ['widgets'], permissions: { metadata: 'read' } },
    ]);
    assert.deepEqual(
      s.stand.repoRequests.map((r) => r.status),
      [200, 200, 404],
    );
    assertNoInstallationToken(s, first.stdout, second.stdout, other.stdout, other.stderr);
  });

  it("git clones with a contents:read token from the mount, one mint for two clones; its push is refused with GitHub's words", async (t) => {
    const s = await setup(t);
    const url = `https://${WEB}/acme/widgets.git`;
    const clone = await git(s, 'github/git-read', ['clone', '-q', url, 'one'], s.home);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(readFileSync(join(s.home, 'one', 'README'), 'utf8'), 'widgets\n');
    const again = await git(s, 'github/git-read', ['clone', '-q', url, 'two'], s.home);
    assert.equal(again.code, 0, again.stderr);
    // Two clones, two macaroons read from the mount, one installation token.
    assert.deepEqual(s.stand.mints, [
      { repositories: ['widgets'], permissions: { contents: 'read' } },
    ]);
    assert.ok(
      s.stand.gitRequests.some((r) => r.path.endsWith('/git-upload-pack') && r.status === 200),
    );

    const checkout = join(s.home, 'one');
    writeFileSync(join(checkout, 'CHANGES'), 'from the agent\n');
    assert.equal((await runAsync('git', ['add', 'CHANGES'], undefined, s.env, checkout)).code, 0);
    assert.equal(
      (await runAsync('git', ['commit', '-qm', 'second'], undefined, s.env, checkout)).code,
      0,
    );
    const push = await git(s, 'github/git-read', ['push', 'origin', 'main'], checkout);
    assert.notEqual(push.code, 0);
    // GitHub refuses the read-only installation token at discovery; git shows its user why.
    assert.match(push.stderr, /Permission to acme\/widgets\.git denied/);
    assert.ok(
      !s.stand.gitRequests.some((r) => r.path.endsWith('/git-receive-pack') && r.status === 200),
    );
    assert.deepEqual(gitSync(['log', '--format=%s', 'main'], s.bare).trim().split('\n'), ['first']);
    assertNoInstallationToken(s, clone.stderr, again.stderr, push.stderr);
  });

  it('git pushes with a contents:write token from the mount; the mint asks for write on that repository only', async (t) => {
    const s = await setup(t);
    const url = `https://${WEB}/acme/widgets.git`;
    const clone = await git(s, 'github/git-write', ['clone', '-q', url, 'work'], s.home);
    assert.equal(clone.code, 0, clone.stderr);
    const checkout = join(s.home, 'work');
    writeFileSync(join(checkout, 'CHANGES'), 'from the agent\n');
    assert.equal((await runAsync('git', ['add', 'CHANGES'], undefined, s.env, checkout)).code, 0);
    assert.equal(
      (await runAsync('git', ['commit', '-qm', 'second'], undefined, s.env, checkout)).code,
      0,
    );
    const push = await git(s, 'github/git-write', ['push', '-q', 'origin', 'main'], checkout);
    assert.equal(push.code, 0, push.stderr);
    assert.deepEqual(gitSync(['log', '--format=%s', 'main'], s.bare).trim().split('\n'), [
      'second',
      'first',
    ]);
    assert.deepEqual(s.stand.mints, [
      { repositories: ['widgets'], permissions: { contents: 'write' } },
    ]);
    assert.ok(
      s.stand.gitRequests.some((r) => r.path.endsWith('/git-receive-pack') && r.status === 200),
    );
    assertNoInstallationToken(s, clone.stderr, push.stderr);
  });
});
