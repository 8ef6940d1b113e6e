/**
 * Real agent tools, unmodified, through HTTPS interception: git (clone and
 * push over https with a credential helper that reads the token file), gh,
 * Python requests and urllib, Node fetch. Each only gets HTTPS_PROXY and the
 * interception CA as its trust, as `mintfs run` gives them; the upstream
 * (a local HTTPS server behind the names api.github.com and github.com) must
 * see the real credential on every request and the token on none.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CREDENTIAL,
  startGatewayFixture,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { interceptEnv } from '../helpers/intercept-env.js';
import { tempDir } from '../helpers/temp.js';
import { BACKENDS } from '../helpers/backends.js';
import { startMountFixture } from '../helpers/mount-fixture.js';

const API = 'api.github.com';
const WEB = 'github.com';

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function assertOnlyCredentialUpstream(gw: GatewayFixture, tokens: string[]): void {
  assert.ok(gw.upstream.requests.length > 0, 'nothing reached the upstream');
  for (const request of gw.upstream.requests) {
    assert.equal(request.headers.authorization, `token ${CREDENTIAL}`, request.url);
    const seen = JSON.stringify(request.headers);
    for (const token of tokens) assert.ok(!seen.includes(token), 'a token reached the upstream');
  }
}

describe('agent tools through HTTPS interception', () => {
  it('git clones and pushes over https with a credential helper that cats the token file', async (t) => {
    const root = tempDir(t);
    const git = (args: string[], cwd: string) =>
      execFileSync('git', args, { cwd, stdio: 'pipe', env: { ...process.env, HOME: root } });
    const work = join(root, 'seed');
    mkdirSync(work);
    git(['init', '-q', '-b', 'main'], work);
    writeFileSync(join(work, 'README'), 'widgets\n');
    git(['add', 'README'], work);
    git(
      ['-c', 'user.name=m', '-c', 'user.email=m@example.invalid', 'commit', '-qm', 'first'],
      work,
    );
    const bare = join(root, 'repos', 'acme', 'widgets.git');
    mkdirSync(join(root, 'repos', 'acme'), { recursive: true });
    git(['clone', '-q', '--bare', work, bare], root);
    git(['config', 'http.receivepack', 'true'], bare);

    const gw = await startGatewayFixture(t, {
      gitRoot: join(root, 'repos'),
      intercept: { hosts: [API, WEB] },
    });
    const tokenFile = join(root, 'token');
    const token = gw.token({
      hosts: [WEB],
      methods: ['GET', 'POST'],
      paths: ['/git/acme/widgets.git/**'],
    });
    writeFileSync(tokenFile, token);
    const env = {
      ...interceptEnv(gw, root),
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'agent',
      GIT_AUTHOR_EMAIL: 'agent@example.invalid',
      GIT_COMMITTER_NAME: 'agent',
      GIT_COMMITTER_EMAIL: 'agent@example.invalid',
    };
    const helper = `!f() { echo username=x-access-token; echo "password=$(cat ${tokenFile})"; }; f`;
    const url = `https://${WEB}/git/acme/widgets.git`;
    const clone = await run(
      'git',
      ['-c', `credential.helper=${helper}`, 'clone', '-q', url, 'widgets'],
      env,
      root,
    );
    assert.equal(clone.code, 0, clone.stderr);
    const checkout = join(root, 'widgets');
    assert.equal(readFileSync(join(checkout, 'README'), 'utf8'), 'widgets\n');

    writeFileSync(join(checkout, 'CHANGES'), 'pushed through mintfs\n');
    await run('git', ['add', 'CHANGES'], env, checkout);
    await run('git', ['commit', '-qm', 'second'], env, checkout);
    const push = await run(
      'git',
      ['-c', `credential.helper=${helper}`, 'push', '-q', 'origin', 'main'],
      env,
      checkout,
    );
    assert.equal(push.code, 0, push.stderr);
    const log = execFileSync('git', ['log', '--format=%s', 'main'], {
      cwd: bare,
      encoding: 'utf8',
    });
    assert.deepEqual(log.trim().split('\n'), ['second', 'first']);
    assert.ok(gw.upstream.requests.some((r) => r.url.includes('git-receive-pack')));
    assertOnlyCredentialUpstream(gw, [token]);
  });

  for (const backend of BACKENDS)
    it(`gh api with GH_TOKEN=$(cat token) from a ${backend} mount whose profile adds the ghp_ prefix`, async (t) => {
      const gw = await startGatewayFixture(t, {
        intercept: { hosts: [API, WEB] },
        githubUpstream: '    tokenPrefix: ghp_',
      });
      const mount = await startMountFixture(
        t,
        `agent: gh-agent
files:
  github/token:
    service: github
    hosts: [${API}]
    methods: [GET]
    paths: ["/repos/acme/widgets/**"]
    prefix: ghp_
`,
        { keysDir: gw.keysDir, backend },
      );
      const home = tempDir(t);
      const tokenFile = join(mount.mountpoint, 'github', 'token');
      assert.match(readFileSync(tokenFile, 'utf8'), /^ghp_AgEG/);
      const result = await run(
        'bash',
        ['-c', `GH_TOKEN=$(cat ${tokenFile}) exec gh api repos/acme/widgets/pulls`],
        {
          ...interceptEnv(gw, home),
          GH_CONFIG_DIR: join(home, 'gh'),
          GH_NO_UPDATE_NOTIFIER: '1',
          GH_PROMPT_DISABLED: '1',
        },
        home,
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(
        (JSON.parse(result.stdout) as { path: string }).path,
        '/repos/acme/widgets/pulls',
      );
      // Every mintfs token's text starts so (V2, location "mintfs").
      assertOnlyCredentialUpstream(gw, ['AgEGbWludGZz']);
    });

  it('Python requests and urllib, and a key in x-api-key (tokenHeader)', async (t) => {
    const gw = await startGatewayFixture(t, {
      intercept: { hosts: [API, WEB] },
      githubUpstream: '    tokenHeader: x-api-key',
    });
    const home = tempDir(t);
    const token = gw.token({ hosts: [API], methods: ['GET'] });
    const script = `
import json, os, sys, urllib.request, requests
url = "https://${API}/repos/acme/widgets/pulls"
token = sys.argv[1]
a = requests.get(url, headers={"Authorization": "Bearer " + token})
b = urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": "Bearer " + token}))
c = requests.get(url, headers={"x-api-key": token})
print(json.dumps([a.status_code, b.status, c.status_code, a.json()["path"], c.json()["path"]]))
`;
    const result = await run(
      '/usr/bin/python3',
      ['-c', script, token],
      interceptEnv(gw, home),
      home,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), [
      200,
      200,
      200,
      '/repos/acme/widgets/pulls',
      '/repos/acme/widgets/pulls',
    ]);
    assertOnlyCredentialUpstream(gw, [token]);
    assert.ok(gw.upstream.requests.every((r) => r.headers['x-api-key'] === undefined));
  });

  it(`Node fetch (${process.versions.node}): NODE_USE_ENV_PROXY on 24, undici's ProxyAgent on 22`, async (t) => {
    const gw = await startGatewayFixture(t, { intercept: { hosts: [API, WEB] } });
    const home = tempDir(t);
    const token = gw.token({ hosts: [API], methods: ['GET'] });
    const major = Number(process.versions.node.split('.')[0]);
    const undici = new URL('../../../node_modules/undici/index.js', import.meta.url).pathname;
    const script =
      major >= 24
        ? `const r = await fetch('https://${API}/repos/acme/widgets/pulls', { headers: { authorization: 'Bearer ' + process.argv[1] } });
           console.log(JSON.stringify([r.status, (await r.json()).path]));`
        : `const { ProxyAgent, fetch } = await import(${JSON.stringify(undici)});
           const dispatcher = new ProxyAgent({ uri: process.env.HTTPS_PROXY, requestTls: { ca: (await import('node:fs')).readFileSync(process.env.SSL_CERT_FILE, 'utf8') } });
           const r = await fetch('https://${API}/repos/acme/widgets/pulls', { dispatcher, headers: { authorization: 'Bearer ' + process.argv[1] } });
           console.log(JSON.stringify([r.status, (await r.json()).path]));`;
    const result = await run(
      process.execPath,
      ['--input-type=module', '-e', script, token],
      interceptEnv(gw, home),
      home,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), [200, '/repos/acme/widgets/pulls']);
    assertOnlyCredentialUpstream(gw, [token]);
  });
});
