/** git clones through the gateway with a credential helper that cats a token. */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CREDENTIAL, startGatewayFixture } from '../helpers/gateway-fixture.js';
import { tempDir } from '../helpers/temp.js';

const GIT_ENV = {
  ...process.env,
  GIT_TERMINAL_PROMPT: '0',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: '/nonexistent',
  GIT_AUTHOR_NAME: 'mintfs',
  GIT_AUTHOR_EMAIL: 'mintfs@example.invalid',
  GIT_COMMITTER_NAME: 'mintfs',
  GIT_COMMITTER_EMAIL: 'mintfs@example.invalid',
};

function makeBareRepo(root: string): void {
  const work = join(root, 'work');
  mkdirSync(work, { recursive: true });
  const git = (args: string[], cwd: string) =>
    execFileSync('git', args, { cwd, env: GIT_ENV, stdio: 'pipe' });
  git(['init', '-q', '-b', 'main'], work);
  writeFileSync(join(work, 'README'), 'widgets\n');
  git(['add', 'README'], work);
  git(['commit', '-q', '-m', 'first'], work);
  mkdirSync(join(root, 'repos', 'acme'), { recursive: true });
  git(['clone', '-q', '--bare', work, join(root, 'repos', 'acme', 'widgets.git')], root);
}

/** Runs git asynchronously: the upstream serving it runs in this process. */
function git(args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('git', args, { cwd, env: GIT_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** git options that hand `token` to git as its password (a credential helper). */
function withToken(token: string): string[] {
  return ['-c', `credential.helper=!f() { echo username=x; echo "password=${token}"; }; f`];
}

describe('git through the gateway', () => {
  it('clones with a credential helper; the upstream sees only the real credential', async (t) => {
    const root = tempDir(t);
    makeBareRepo(root);
    const gw = await startGatewayFixture(t, { gitRoot: join(root, 'repos') });
    const tokenFile = join(root, 'token');
    writeFileSync(
      tokenFile,
      gw.token({ methods: ['GET', 'POST'], paths: ['/git/acme/widgets.git/**'] }),
    );
    const helper = `!f() { echo username=x; echo "password=$(cat ${tokenFile})"; }; f`;
    const clone = await git(
      [
        '-c',
        `credential.helper=${helper}`,
        'clone',
        '-q',
        `${gw.base}/github/git/acme/widgets.git`,
        'widgets',
      ],
      root,
    );
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(readFileSync(join(root, 'widgets', 'README'), 'utf8'), 'widgets\n');
    const authorized = gw.upstream.requests.filter((r) => r.url.startsWith('/git/'));
    assert.ok(authorized.length >= 2, 'info/refs and upload-pack');
    for (const request of authorized)
      assert.equal(request.headers.authorization, `token ${CREDENTIAL}`);
  });

  it('without a token git is challenged and fails; the upstream sees nothing', async (t) => {
    const root = tempDir(t);
    makeBareRepo(root);
    const gw = await startGatewayFixture(t, { gitRoot: join(root, 'repos') });
    const clone = await git(
      ['clone', '-q', `${gw.base}/github/git/acme/widgets.git`, 'widgets'],
      root,
    );
    assert.notEqual(clone.code, 0);
    assert.match(clone.stderr, /could not read Username|Authentication failed|401/);
    assert.equal(existsSync(join(root, 'widgets', 'README')), false);
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('a token for another repository cannot clone this one', async (t) => {
    const root = tempDir(t);
    makeBareRepo(root);
    const gw = await startGatewayFixture(t, { gitRoot: join(root, 'repos') });
    const token = gw.token({ methods: ['GET', 'POST'], paths: ['/git/acme/other.git/**'] });
    const helper = `!f() { echo username=x; echo "password=${token}"; }; f`;
    const clone = await git(
      [
        '-c',
        `credential.helper=${helper}`,
        'clone',
        '-q',
        `${gw.base}/github/git/acme/widgets.git`,
        'widgets',
      ],
      root,
    );
    assert.notEqual(clone.code, 0);
    // git's user is told why, not just "403".
    assert.match(
      clone.stderr,
      /remote: mintfs: ERR_CAVEAT_UNSATISFIED: path \/git\/acme\/widgets\.git\/info\/refs is not allowed/,
    );
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('a push the token cannot make is refused at discovery, and git tells its user why', async (t) => {
    const root = tempDir(t);
    makeBareRepo(root);
    const gw = await startGatewayFixture(t, { gitRoot: join(root, 'repos') });
    const repo = '/git/acme/widgets.git';
    // Enough to clone (discovery and upload-pack), nothing to push.
    const readOnly = gw.token({
      methods: ['GET', 'POST'],
      paths: [`${repo}/info/refs`, `${repo}/git-upload-pack`],
    });
    const readWrite = gw.token({ methods: ['GET', 'POST'], paths: [`${repo}/**`] });
    const url = `${gw.base}/github${repo}`;
    const clone = await git([...withToken(readOnly), 'clone', '-q', url, 'widgets'], root);
    assert.equal(clone.code, 0, clone.stderr);
    const work = join(root, 'widgets');
    writeFileSync(join(work, 'CHANGE'), 'change\n');
    execFileSync('git', ['add', 'CHANGE'], { cwd: work, env: GIT_ENV });
    execFileSync('git', ['commit', '-q', '-m', 'change'], { cwd: work, env: GIT_ENV });
    const before = gw.upstream.requests.length;
    const push = await git([...withToken(readOnly), 'push', 'origin', 'main'], work);
    assert.notEqual(push.code, 0);
    assert.match(
      push.stderr,
      /remote: mintfs: ERR_CAVEAT_UNSATISFIED: this token cannot push to this repository \(POST \/git\/acme\/widgets\.git\/git-receive-pack\)/,
    );
    assert.doesNotMatch(push.stderr, /Everything up-to-date/);
    assert.equal(gw.upstream.requests.length, before, 'the refused push reached the upstream');
    // A token that may push does, through the same discovery.
    const pushed = await git([...withToken(readWrite), 'push', 'origin', 'main'], work);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.ok(
      gw.upstream.requests.some((r) => r.method === 'POST' && r.url.endsWith('/git-receive-pack')),
    );
  });

  it('a clone the token cannot finish (no POST) is refused at discovery, saying why', async (t) => {
    const root = tempDir(t);
    makeBareRepo(root);
    const gw = await startGatewayFixture(t, { gitRoot: join(root, 'repos') });
    const token = gw.token({ methods: ['GET'], paths: ['/git/acme/widgets.git/**'] });
    const clone = await git(
      [...withToken(token), 'clone', '-q', `${gw.base}/github/git/acme/widgets.git`, 'widgets'],
      root,
    );
    assert.notEqual(clone.code, 0);
    assert.match(
      clone.stderr,
      /remote: mintfs: ERR_CAVEAT_UNSATISFIED: this token cannot fetch from/,
    );
    assert.equal(gw.upstream.requests.length, 0);
  });
});
