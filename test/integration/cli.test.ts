/** The command line, spawned for real: output on stdout, one-line errors, exit codes. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mintOnce } from '../../src/fs/mint-fs.js';
import { buildTree } from '../../src/fs/virtual-tree.js';
import { initKeyring } from '../../src/keys/keyring.js';
import { createLogger } from '../../src/log/logger.js';
import { mountedPaths } from '../../src/mounts/mount-table.js';
import { loadProfile } from '../../src/profile/load-profile.js';
import { newTokenId } from '../../src/token/identifier.js';
import { diagnostics, runCli, type CliResult } from '../helpers/cli.js';
import { runAsync } from '../helpers/spawn.js';
import { DEMO_PROFILE } from '../helpers/mount-fixture.js';
import { CLI, REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp.js';

const URL = 'https://api.github.com/repos/acme/widgets/pulls';

/**
 * A keyring and a token made in this process, by the code `keys init` and
 * `mint` run (two processes per test otherwise); the tests of those two
 * commands run them for real.
 */
function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  const keys = join(dir, 'keys');
  const keyring = initKeyring(keys, new Date());
  const profile = join(dir, 'profile.yaml');
  writeFileSync(profile, DEMO_PROFILE);
  const tree = buildTree(loadProfile(profile));
  const logger = createLogger({ level: 'silent' });
  const token = mintOnce(tree, keyring, 'github/token', logger, newTokenId).toString('utf8');
  return { dir, keys, profile, token, keyId: keyring.current.id };
}

describe('mintfs CLI', () => {
  it('keys init prints the key id, never the key; refuses to run twice', (t) => {
    const keys = join(tempDir(t), 'keys');
    const first = runCli(['keys', 'init', '--keys', keys]);
    assert.equal(first.code, 0, first.stderr);
    const init = JSON.parse(first.stdout) as { keyId: string };
    const keyFile = readFileSync(join(keys, `${init.keyId}.key`), 'utf8').trim();
    assert.doesNotMatch(first.stdout + first.stderr, new RegExp(keyFile));
    const again = runCli(['keys', 'init', '--keys', keys]);
    assert.equal(again.code, 3);
    assert.deepEqual(diagnostics(again.stderr), [
      `mintfs: keyring ${keys} already holds keys; not overwriting`,
    ]);
    assert.doesNotMatch(again.stdout + again.stderr, new RegExp(keyFile));
  });

  it('--keys defaults to $MINTFS_KEYS', (t) => {
    const { keys, profile } = setup(t);
    const mint = runCli(['mint', profile, 'github/token'], { env: { MINTFS_KEYS: keys } });
    assert.equal(mint.code, 0, mint.stderr);
  });

  it('mint prints only the token on stdout and logs the mint on stderr', (t) => {
    const { keys, profile } = setup(t);
    const mint = runCli(['mint', profile, 'github/token', '--keys', keys]);
    assert.match(mint.stdout, /^[A-Za-z0-9_-]+$/);
    const log = JSON.parse(mint.stderr.trim()) as { event: string; tokenId: string };
    assert.equal(log.event, 'mint');
    assert.ok(!mint.stderr.includes(mint.stdout));
  });

  it('inspect prints id, keyId, location, caveats and expiresAt, from an argument or stdin', (t) => {
    const { token, keyId } = setup(t);
    for (const result of [
      runCli(['inspect', token]),
      runCli(['inspect'], { input: `${token}\n` }),
    ]) {
      assert.equal(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.equal(summary.keyId, keyId);
      assert.equal(summary.location, 'mintfs');
      assert.match(String(summary.id), /^[A-Za-z0-9_-]{22}$/);
      assert.equal((summary.caveats as string[]).length, 6);
      assert.match(String(summary.expiresAt), /Z$/);
    }
  });

  it('verify exits 0 for an allowed request and 1 naming the failing caveat', (t) => {
    const { keys, token } = setup(t);
    const ok = runCli([
      'verify',
      token,
      '--keys',
      keys,
      '--service',
      'github',
      '--method',
      'GET',
      '--url',
      URL,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { allowed: boolean }).allowed, true);
    const post = runCli([
      'verify',
      token,
      '--keys',
      keys,
      '--service',
      'github',
      '--method',
      'POST',
      '--url',
      URL,
    ]);
    assert.equal(post.code, 1);
    assert.deepEqual(diagnostics(post.stderr), [
      'mintfs: denied: ERR_CAVEAT_UNSATISFIED: method POST is not allowed (caveat "method GET HEAD")',
    ]);
    const smuggled = runCli([
      'verify',
      token,
      '--keys',
      keys,
      '--service',
      'github',
      '--method',
      'GET',
      '--url',
      'https://api.github.com/repos/acme/widgets/../secrets',
    ]);
    assert.equal(smuggled.code, 1);
    assert.match(smuggled.stderr, /ERR_PATH_AMBIGUOUS/);
  });

  it('verify --at checks expiry against the given time', (t) => {
    const { keys, token } = setup(t);
    const late = runCli([
      'verify',
      token,
      '--keys',
      keys,
      '--service',
      'github',
      '--method',
      'GET',
      '--url',
      URL,
      '--at',
      '2099-01-01T00:00:00Z',
    ]);
    assert.equal(late.code, 1);
    assert.match(late.stderr, /ERR_TOKEN_EXPIRED/);
    const bad = runCli([
      'verify',
      token,
      '--keys',
      keys,
      '--service',
      'github',
      '--method',
      'GET',
      '--url',
      URL,
      '--at',
      'tomorrow',
    ]);
    assert.equal(bad.code, 2);
    assert.deepEqual(diagnostics(bad.stderr), [
      'mintfs: --at: "tomorrow" is not an RFC 3339 time such as 2026-11-22T01:20:00Z',
    ]);
  });

  it('verify turns garbage into a denial with a reason', (t) => {
    const { keys } = setup(t);
    const result = runCli([
      'verify',
      'garbage!',
      '--keys',
      keys,
      '--service',
      'github',
      '--method',
      'GET',
      '--url',
      URL,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /ERR_TOKEN_MALFORMED/);
    assert.doesNotMatch(result.stderr, /\s+at /, 'no stack trace');
  });

  it('attenuate prints a narrower token that verify then enforces', (t) => {
    const { keys, token } = setup(t);
    const narrowed = runCli(['attenuate', '--caveat', 'method HEAD'], { input: token });
    assert.equal(narrowed.code, 0, narrowed.stderr);
    const get = runCli([
      'verify',
      narrowed.stdout.trim(),
      '--keys',
      keys,
      '--service',
      'github',
      '--method',
      'GET',
      '--url',
      URL,
    ]);
    assert.equal(get.code, 1);
    assert.match(get.stderr, /caveat "method HEAD"/);
    const unknown = runCli(['attenuate', token, '--caveat', 'ip 1.2.3.4']);
    assert.equal(unknown.code, 2);
    assert.deepEqual(diagnostics(unknown.stderr), ['mintfs: unknown caveat "ip 1.2.3.4"']);
  });

  it('profile check explains a valid profile and names the field of an invalid one', (t) => {
    const dir = tempDir(t);
    const good = runCli([
      'profile',
      'check',
      join(REPO_ROOT, 'mount-profiles', 'github-readonly.yaml'),
    ]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /github\/token/);
    assert.match(good.stdout, /method GET HEAD/);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, DEMO_PROFILE.replace('    service: github\n', ''));
    const result = runCli(['profile', 'check', bad]);
    assert.equal(result.code, 2);
    assert.deepEqual(diagnostics(result.stderr), [
      `mintfs: profile ${bad}: files."github/token".service: required`,
    ]);
  });

  it('a bad profile never mounts', (t) => {
    const { dir, keys } = setup(t);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, DEMO_PROFILE.replace('methods: [GET, HEAD]', 'methdos: [GET, HEAD]'));
    const mountpoint = join(dir, 'mnt');
    const result = runCli(['mount', bad, mountpoint, '--keys', keys]);
    assert.equal(result.code, 2);
    assert.equal(diagnostics(result.stderr).length, 1);
    assert.match(result.stderr, /files\."github\/token"\.methdos: unknown field/);
    assert.equal(mountedPaths().includes(mountpoint), false);
  });

  it('mount and run as a non-root user fail with one line saying root is needed', (t) => {
    const dir = tempDir(t);
    chownSync(dir, 4242, 4242);
    const keys = join(dir, 'keys');
    const asUser = (args: string[]) =>
      spawnSync(
        'setpriv',
        // CAP_DAC_READ_SEARCH alone, so it reads the CLI wherever the checkout is (CI clones into a 0700 directory).
        [
          '--reuid=4242',
          '--regid=4242',
          '--clear-groups',
          '--inh-caps=+dac_read_search',
          '--ambient-caps=+dac_read_search',
          process.execPath,
          CLI,
          ...args,
        ],
        {
          encoding: 'utf8',
          env: { ...process.env, HOME: dir },
        },
      );
    const init = asUser(['keys', 'init', '--keys', keys]);
    assert.equal(init.status, 0, init.stderr);
    const profile = join(dir, 'profile.yaml');
    writeFileSync(profile, DEMO_PROFILE);
    chownSync(profile, 4242, 4242);
    const mountpoint = join(dir, 'mnt');
    mkdirSync(mountpoint);
    chownSync(mountpoint, 4242, 4242);
    for (const args of [
      ['mount', profile, mountpoint, '--keys', keys],
      ['run', '--profile', profile, '--gateway', profile, '--keys', keys, '--', 'true'],
    ]) {
      const result = asUser(args);
      assert.equal(result.status, 3, result.stderr);
      const lines = diagnostics(result.stderr);
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0] ?? '', /^mintfs: (mount|run) needs root/);
    }
    assert.ok(!mountedPaths().includes(mountpoint));
  });

  it('a missing keyring never mounts and says how to create one', (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'p.yaml'), DEMO_PROFILE);
    const result = runCli([
      'mount',
      join(dir, 'p.yaml'),
      join(dir, 'mnt'),
      '--keys',
      join(dir, 'nokeys'),
    ]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /mintfs keys init --keys/);
    assert.equal(mountedPaths().includes(join(dir, 'mnt')), false);
  });

  it('verify without a usable keyring points at the one tokens were signed with, never at keys init', (t) => {
    const { dir, token } = setup(t);
    const home = join(dir, 'home');
    mkdirSync(home);
    chownSync(home, 4242, 4242);
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
    delete env.MINTFS_KEYS;
    delete env.XDG_STATE_HOME;
    // A non-root user without --keys: the default is a keyring of their own, which does not exist.
    const verify = (...extra: string[]) =>
      spawnSync(
        'setpriv',
        [
          '--reuid=4242',
          '--regid=4242',
          '--clear-groups',
          '--inh-caps=+dac_read_search',
          '--ambient-caps=+dac_read_search',
          process.execPath,
          CLI,
          'verify',
          token,
          '--service',
          'github',
          '--method',
          'GET',
          '--url',
          URL,
          ...extra,
        ],
        { encoding: 'utf8', env, timeout: 30_000 },
      );
    const empty = join(home, 'empty-keys');
    mkdirSync(empty, { mode: 0o700 });
    chownSync(empty, 4242, 4242);
    for (const [result, what] of [
      [verify(), `${home}/.local/state/mintfs/keys does not exist`],
      [verify('--keys', empty), `${empty} holds no keys`],
    ] as const) {
      assert.equal(result.status, 3, result.stderr);
      const lines = diagnostics(result.stderr);
      assert.equal(lines.length, 1, result.stderr);
      assert.ok(lines[0]?.includes(`keyring ${what}`), lines[0]);
      assert.match(lines[0] ?? '', /--keys DIR or \$MINTFS_KEYS/);
      assert.match(lines[0] ?? '', /\/var\/lib\/mintfs\/keys/);
      assert.doesNotMatch(result.stderr, /keys init/);
      assert.equal(result.stdout, '');
    }
    assert.equal(existsSync(join(home, '.local')), false, 'nothing created');
  });

  it('a bad gateway config or a missing credential never starts the gateway', (t) => {
    const { dir, keys } = setup(t);
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      'listen: [127.0.0.1:0]\nupstreams:\n  github:\n    url: https://api.github.com\n    credential: { file: ./missing }\n    inject: "Authorization: token"\n',
    );
    const bad = runCli(['gateway', config, '--keys', keys]);
    assert.equal(bad.code, 2);
    assert.deepEqual(diagnostics(bad.stderr), [
      `mintfs: gateway config ${config}: upstreams.github.inject: must contain {credential} exactly once`,
    ]);
    writeFileSync(
      config,
      'listen: [127.0.0.1:0]\nupstreams:\n  github:\n    url: https://api.github.com\n    credential: { file: ./missing }\n    inject: "Authorization: token {credential}"\n',
    );
    const missing = runCli(['gateway', config, '--keys', keys]);
    assert.equal(missing.code, 3);
    assert.deepEqual(diagnostics(missing.stderr), [
      `mintfs: upstreams.github.credential: ${join(dir, 'missing')} does not exist`,
    ]);
  });

  it('ca init prints the fingerprint, never the key; bad input and a CA that does not cover a host are one line', (t) => {
    const { dir, keys } = setup(t);
    const caDir = join(dir, 'ca');
    const made = runCli(['ca', 'init', '--dir', caDir, '--host', 'api.github.com']);
    assert.equal(made.code, 0, made.stderr);
    const key = readFileSync(join(caDir, 'ca.key'), 'utf8');
    const keyBody = key.split('\n')[1] ?? '';
    assert.ok(!made.stdout.includes(keyBody) && !made.stderr.includes(keyBody));
    assert.match(
      (JSON.parse(made.stdout) as { fingerprintSha256: string }).fingerprintSha256,
      /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/,
    );
    const again = runCli(['ca', 'init', '--dir', caDir, '--host', 'api.github.com']);
    assert.equal(again.code, 3);
    assert.deepEqual(diagnostics(again.stderr), [
      `mintfs: ${join(caDir, 'ca.key')} exists: a CA is never overwritten`,
    ]);
    const noHost = runCli(['ca', 'init', '--dir', join(dir, 'ca2')]);
    assert.equal(noHost.code, 2);
    assert.deepEqual(diagnostics(noHost.stderr), [
      'mintfs: --host: name the hosts the CA is for (or --any-host for an unconstrained CA)',
    ]);
    const badHost = runCli([
      'ca',
      'init',
      '--dir',
      join(dir, 'ca2'),
      '--host',
      'API.github.com:443',
    ]);
    assert.equal(badHost.code, 2);
    assert.equal(diagnostics(badHost.stderr).length, 1);
    assert.equal(existsSync(join(dir, 'ca2', 'ca.key')), false);

    const config = join(dir, 'gateway.yaml');
    writeFileSync(join(dir, 'cred'), 'x\n', { mode: 0o600 });
    writeFileSync(
      config,
      'listen: [127.0.0.1:0]\nintercept: { ca: ./ca }\nupstreams:\n  github:\n    url: https://api.github.com\n    hosts: [api.github.com, uploads.github.com]\n    credential: { file: ./cred }\n    inject: "Authorization: token {credential}"\n',
    );
    const uncovered = runCli(['gateway', config, '--keys', keys]);
    assert.equal(uncovered.code, 2);
    assert.deepEqual(diagnostics(uncovered.stderr), [
      `mintfs: upstreams.github.hosts: uploads.github.com is outside the names the CA in ${caDir} may issue for (api.github.com); make a new CA that lists it (mintfs ca init --host ...)`,
    ]);
  });

  it('usage errors are one line and exit 2; --debug adds the stack', (t) => {
    const unknown = runCli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.equal(diagnostics(unknown.stderr).length, 1);
    const missing = runCli(['verify', 'x', '--service', 'github']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Missing required argument/);
    const { dir } = setup(t);
    const debug = runCli(['profile', 'check', join(dir, 'none.yaml'), '--debug']);
    assert.equal(debug.code, 2);
    assert.match(debug.stderr, /\n\s+at /);
    const plain = runCli(['profile', 'check', join(dir, 'none.yaml')]);
    assert.deepEqual(plain.stderr.trim().split('\n'), [
      `mintfs: profile ${join(dir, 'none.yaml')}: no such file`,
    ]);
  });

  it('a token id that starts with "-": `--token <id>` explains itself, `--token=<id>` works', (t) => {
    const { keys } = setup(t);
    const id = `-${'N'.repeat(21)}`;
    const spaced = runCli(['revoke', '--token', id, '--keys', keys]);
    assert.equal(spaced.code, 2);
    assert.equal(diagnostics(spaced.stderr).length, 1);
    assert.match(
      spaced.stderr,
      /; a value that starts with "-" must be written --token=<value> \(see mintfs --help\)/,
    );
    assert.equal(spaced.stderr.includes(id), false, 'the value is not repeated');
    const joined = runCli(['revoke', `--token=${id}`, '--keys', keys]);
    assert.equal(joined.code, 0, joined.stderr);
  });
});

/** The CLI with stdin fed by a writer slower than the reader (a pipe from `sleep 1; echo`). */
function runWithSlowStdin(args: readonly string[], input: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // The reader is up and waiting on an empty pipe well before the writer speaks.
    child.stdin.write(input.slice(0, 10));
    setTimeout(() => child.stdin.end(input.slice(10)), 700);
  });
}

/** The CLI under a real pseudo-terminal (util-linux `script`), as a person runs it. */
function runAtTerminal(args: readonly string[]): CliResult {
  const command = [process.execPath, CLI, ...args]
    .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
    .join(' ');
  const result = spawnSync('script', ['-qec', command, '/dev/null'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return {
    code: result.status,
    stdout: result.stdout.replaceAll('\r\n', '\n'),
    stderr: result.stderr,
  };
}

describe('mintfs CLI: the first hour', () => {
  it('reads a token from a slow pipe whole (inspect, verify, attenuate)', async (t) => {
    const { keys, token } = setup(t);
    const inspected = await runWithSlowStdin(['inspect'], `${token}\n`);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.match(inspected.stdout, /"id"/);
    const verified = await runWithSlowStdin(
      ['verify', '--service', 'github', '--method', 'GET', '--url', URL, '--keys', keys],
      token,
    );
    assert.equal(verified.code, 0, verified.stderr);
    const narrowed = await runWithSlowStdin(['attenuate', '--caveat', 'method GET'], token);
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.match(narrowed.stdout.trim(), /^[A-Za-z0-9_-]+$/);
  });

  it('--version and -V print the version; no arguments print the usage; mistakes name what was meant', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-V']) {
      const result = runCli([flag]);
      assert.equal(result.code, 0);
      assert.equal(result.stdout, `mintfs ${pkg.version}\n`);
    }
    const bare = runCli([]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /mintfs <command>/);
    assert.match(bare.stderr, /Commands:/);
    assert.doesNotMatch(bare.stderr, /name a command/);
    const typo = runCli(['mout', 'p.yaml', 'mnt']);
    assert.equal(typo.code, 2);
    assert.deepEqual(diagnostics(typo.stderr), [
      'mintfs: unknown command mout (did you mean mount?) (see mintfs --help)',
    ]);
    const short = runCli(['mount']);
    assert.equal(short.code, 2);
    assert.match(
      diagnostics(short.stderr)[0] ?? '',
      /^mintfs: usage: mintfs mount <profile> <mountpoint>/,
    );
  });

  it('a number where a duration or address belongs says so, naming the field', (t) => {
    const { dir, keys } = setup(t);
    const profile = join(dir, 'ttl.yaml');
    writeFileSync(profile, DEMO_PROFILE.replace('ttl: 5m', 'ttl: 300'));
    const ttl = runCli(['profile', 'check', profile]);
    assert.equal(ttl.code, 2);
    assert.match(
      diagnostics(ttl.stderr)[0] ?? '',
      /ttl: a duration such as 90s, 5m or 1h, not the number 300/,
    );
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      'listen: [8787]\nupstreams:\n  github:\n    url: https://api.github.com\n    credential: { env: X }\n    inject: "Authorization: token {credential}"\n',
    );
    const listen = runCli(['gateway', config, '--keys', keys]);
    assert.equal(listen.code, 2);
    assert.match(
      diagnostics(listen.stderr)[0] ?? '',
      /listen\[0\]: an address such as 127\.0\.0\.1:8787 .*not the number 8787/,
    );
  });

  it('a listen address in use is an environment failure, exit 3', async (t) => {
    const { dir, keys } = setup(t);
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    t.after(() => busy.close());
    const port = (busy.address() as AddressInfo).port;
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `listen: [127.0.0.1:${port}]\nupstreams:\n  github:\n    url: https://api.github.com\n    credential: { env: MINTFS_TEST_X }\n    inject: "Authorization: token {credential}"\n`,
    );
    const result = await runAsync(
      process.execPath,
      [CLI, 'gateway', config, '--keys', keys],
      undefined,
      {
        ...process.env,
        MINTFS_TEST_X: 'x',
      },
    );
    assert.equal(result.code, 3, result.stderr);
    assert.match(
      diagnostics(result.stderr)[0] ?? '',
      new RegExp(`listen 127\\.0\\.0\\.1:${port}: EADDRINUSE`),
    );
  });

  it('revoke --before more than an hour ago says nothing can be covered and records nothing', (t) => {
    const { keys } = setup(t);
    const before = new Date(Date.now() - 2 * 3_600_000).toISOString();
    const result = runCli(['revoke', '--agent', 'demo-agent', '--before', before, '--keys', keys]);
    assert.equal(result.code, 2);
    assert.match(
      diagnostics(result.stderr)[0] ?? '',
      /every token minted before then has expired .* nothing was recorded/,
    );
    const listed = JSON.parse(runCli(['revoke', '--list', '--keys', keys]).stdout) as {
      records: unknown[];
    };
    assert.deepEqual(listed.records, []);
  });

  it('at a terminal: keys list is a table, mint prints the token without audit JSON, logs read as lines', (t) => {
    const { keys, profile } = setup(t);
    const table = runAtTerminal(['keys', 'list', '--keys', keys]);
    assert.equal(table.code, 0, table.stdout);
    assert.match(table.stdout, /^KEY ID\s+CREATED\s+STATE/m);
    assert.match(table.stdout, /\bsigning\b/);
    const json = runAtTerminal(['keys', 'list', '--keys', keys, '--json']);
    assert.match(json.stdout, /"entries"/);
    const mint = runAtTerminal(['mint', profile, 'github/token', '--keys', keys]);
    assert.equal(mint.code, 0);
    assert.match(mint.stdout.trim(), /^[A-Za-z0-9_-]+$/, 'the token alone');
    const asked = runAtTerminal([
      'mint',
      profile,
      'github/token',
      '--keys',
      keys,
      '--log-level',
      'info',
    ]);
    const lines = asked.stdout.trim().split('\n');
    assert.equal(lines.length, 2, asked.stdout);
    assert.match(
      lines.find((l) => l.includes('mint')) ?? '',
      /^\d\d:\d\d:\d\d {2}info {3}mint {2}.*tokenId=/,
    );
    assert.doesNotMatch(asked.stdout, /"level":/);
  });
});
