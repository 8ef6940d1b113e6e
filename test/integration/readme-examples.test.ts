/**
 * Every shell example in README.md and docs/*.md runs, so none can rot. Each
 * ```sh block is preceded by a marker: `<!-- example: NAME -->` runs it, and
 * `<!-- example: not run by the example test (WHY) -->` says why not (and
 * where it is tested instead). A block without a marker fails this test. A
 * ```yaml block marked `<!-- file: PATH -->` must be that shipped file, byte
 * for byte.
 *
 * The runnable blocks run in order (the README's, then each document's in
 * the order of DOCUMENTS), as one bash session, as the documents print them, with the machine's fixed places moved into a temporary
 * directory (/var/lib/mintfs/keys, /run/mintfs/agent1, /etc/mintfs/credentials,
 * port 8787), the shipped configs copied there with their upstreams pointed at
 * a local HTTPS server standing in for api.github.com and github.com (this
 * machine has no network), and `mintfs mount|gateway ... &` waiting until the
 * daemon serves, as a person would before typing the next line.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { freePort } from '../helpers/free-port.js';
import { join } from 'node:path';
import { it } from 'node:test';
import { mountedPaths } from '../../src/mounts/mount-table.js';
import { CREDENTIAL } from '../helpers/gateway-fixture.js';
import { CLI, REPO_ROOT } from '../helpers/paths.js';
import { tempDir, teardownOf } from '../helpers/temp.js';
import { makeTestPki } from '../helpers/tls.js';
import { startUpstream } from '../helpers/upstream.js';
import { describeOnFirstPass } from '../helpers/node-passes.js';

interface Example {
  readonly name: string;
  readonly runs: boolean;
  readonly code: string;
  /** Where it is, as file:line. */
  readonly at: string;
}

/** README.md first, then every document in docs/, in name order. */
const DOCUMENTS = [
  'README.md',
  ...readdirSync(join(REPO_ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];

/** The fenced blocks of one language in a document, with the marker comment just above each. */
function blocks(file: string, language: string, marker: string) {
  const lines = readFileSync(join(REPO_ROOT, file), 'utf8').split('\n');
  const found: Array<{ marker: string | undefined; code: string; at: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== `\`\`\`${language}`) continue;
    const above = lines
      .slice(Math.max(0, i - 3), i)
      .map((l) => new RegExp(`^<!-- ${marker}: (.*) -->$`).exec(l)?.[1])
      .find((m) => m !== undefined);
    const end = lines.indexOf('```', i + 1);
    found.push({ marker: above, code: lines.slice(i + 1, end).join('\n'), at: `${file}:${i + 1}` });
  }
  return found;
}

function readmeExamples(): Example[] {
  return DOCUMENTS.flatMap((file) =>
    blocks(file, 'sh', 'example').map(({ marker, code, at }) => {
      const name = marker ?? '';
      return { name, runs: !name.startsWith('not run'), code, at };
    }),
  );
}

function makeBareRepo(root: string): void {
  const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: root };
  const work = join(root, 'work');
  mkdirSync(work, { recursive: true });
  const git = (args: string[], cwd: string) =>
    execFileSync('git', args, { cwd, env, stdio: 'pipe' });
  git(['init', '-q', '-b', 'main'], work);
  writeFileSync(join(work, 'README'), 'widgets\n');
  git(['add', 'README'], work);
  git(
    ['-c', 'user.name=m', '-c', 'user.email=m@example.invalid', 'commit', '-q', '-m', 'first'],
    work,
  );
  mkdirSync(join(root, 'repos', 'acme'), { recursive: true });
  git(['clone', '-q', '--bare', work, join(root, 'repos', 'acme', 'widgets.git')], root);
}

/** What a block means in the temporary machine: the same commands, other places. */
function localise(example: Example, dir: string, port: number): string {
  let code = example.code
    .replaceAll('/var/lib/mintfs/keys', `${dir}/keys`)
    .replaceAll('/run/mintfs/agent1', `${dir}/agent1`)
    .replaceAll('/etc/mintfs/credentials', `${dir}/credentials`)
    .replaceAll('127.0.0.1:8787', `127.0.0.1:${port}`);
  // Outside `mintfs run`, the quick start's mount stands in for the agent's /secrets.
  if (!code.includes('mintfs run')) code = code.replaceAll('/secrets/', `${dir}/agent1/`);
  return code.replace(/^mintfs (mount|gateway) (.*) &(\s*#.*)?$/gm, 'mintfs_background $1 $2');
}

const PRELUDE = `
set -euo pipefail
pids=()
finish() { for pid in "\${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait; }
trap finish EXIT
mintfs() { "$MINTFS_NODE" "$MINTFS_CLI" "$@"; }
mintfs_background() {
  "$MINTFS_NODE" "$MINTFS_CLI" "$@" 2>>"$MINTFS_DIR/daemons.log" &
  pids+=($!)
  for _ in $(seq 400); do
    case "$1" in
      mount) grep -q " $MINTFS_DIR/agent1 " /proc/mounts && return 0 ;;
      gateway) (exec 3<>"/dev/tcp/127.0.0.1/$MINTFS_PORT") 2>/dev/null && return 0 ;;
    esac
    kill -0 "$!" 2>/dev/null || { cat "$MINTFS_DIR/daemons.log" >&2; return 1; }
    sleep 0.025
  done
  echo "mintfs $1 did not start" >&2; return 1
}
`;

describeOnFirstPass('README examples', () => {
  it('every shell block is marked as run here, or says why not', () => {
    const examples = readmeExamples();
    assert.ok(examples.length >= 8);
    const unmarked = examples.filter((e) => e.name === '').map((e) => e.at);
    assert.deepEqual(unmarked, []);
    for (const e of examples.filter((x) => !x.runs))
      assert.match(e.name, /^not run by the example test \(.+\)$/);
  });

  it('every config shown as a shipped file is that file, byte for byte', () => {
    const shown = DOCUMENTS.flatMap((file) => blocks(file, 'yaml', 'file'));
    const marked = shown.filter((b) => b.marker !== undefined);
    assert.ok(marked.length >= 2, 'the README shows a profile and a gateway config');
    for (const block of marked)
      assert.equal(
        `${block.code}\n`,
        readFileSync(join(REPO_ROOT, block.marker ?? ''), 'utf8'),
        `${block.at} differs from ${block.marker ?? ''}`,
      );
  });

  it(
    'run as printed: quick start, gateway (curl, http_proxy, git), keys, revocation, mintfs run',
    { timeout: 180_000 },
    async (t) => {
      const dir = tempDir(t);
      const teardown = teardownOf(t);
      const pki = makeTestPki(dir);
      makeBareRepo(dir);
      const upstream = await startUpstream(pki, teardown, join(dir, 'repos'));
      const port = await freePort();
      cpSync(join(REPO_ROOT, 'mount-profiles'), join(dir, 'mount-profiles'), { recursive: true });
      const gatewayFile = join(dir, 'mount-profiles', 'gateway', 'github.yaml');
      writeFileSync(
        gatewayFile,
        readFileSync(gatewayFile, 'utf8')
          .replace(
            'url: https://api.github.com',
            `url: ${upstream.url}\n    hosts: [api.github.com]\n    ca: ${pki.caFile}`,
          )
          .replace(
            'url: https://github.com',
            `url: ${upstream.url}\n    hosts: [github.com]\n    ca: ${pki.caFile}`,
          )
          .replace('unix:/run/mintfs/gateway.sock', `unix:${dir}/gateway.sock`)
          .replaceAll('/etc/mintfs/credentials', `${dir}/credentials`)
          .replace('127.0.0.1:8787', `127.0.0.1:${port}`),
      );
      teardown.add(() => {
        const mount = join(dir, 'agent1');
        if (mountedPaths().includes(mount)) execFileSync('umount', ['-l', mount]);
      });

      const runnable = readmeExamples().filter((e) => e.runs);
      assert.deepEqual(
        runnable.map((e) => e.name.split(' ')[0]),
        ['quick-start', 'gateway', 'run', 'keys', 'revoke'],
      );
      const script = [
        PRELUDE,
        ...runnable.map((e) => {
          const name = e.name.split(' ')[0] as string;
          const code = localise(e, dir, port);
          // A key rotation is done again and again: the snippet must be right every time.
          if (name === 'keys')
            return `echo "== example: keys"\n${code}\n${code}\necho "== example: keys-after"\nmintfs keys list --json`;
          return `echo "== example: ${name}"\n${code}`;
        }),
      ].join('\n');
      const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
        (resolve) => {
          const child = spawn('bash', ['-c', script], {
            cwd: dir,
            env: {
              ...process.env,
              MINTFS_NODE: process.execPath,
              MINTFS_CLI: CLI,
              MINTFS_DIR: dir,
              MINTFS_PORT: String(port),
              MINTFS_LOG_LEVEL: 'warn',
              // The default keyring (/var/lib/mintfs/keys for root), moved like the rest.
              MINTFS_KEYS: join(dir, 'keys'),
              GITHUB_TOKEN: CREDENTIAL,
              HOME: dir,
              GIT_TERMINAL_PROMPT: '0',
              GIT_CONFIG_NOSYSTEM: '1',
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stdout = '';
          let stderr = '';
          child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
          child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
          child.on('close', (code) => resolve({ code, stdout, stderr }));
        },
      );
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      const section = (name: string) =>
        result.stdout.split('== example: ').find((s) => s.startsWith(name)) ?? '';
      // Quick start: a token, its inspection, an allowed verdict.
      assert.match(section('quick-start'), /"caveats"/);
      assert.match(section('quick-start'), /"allowed": true/);
      // Gateway: reverse and forward proxy reached the upstream with the real credential; git cloned.
      const api = upstream.requests.filter((r) => r.url.startsWith('/repos/acme/widgets'));
      assert.ok(api.length >= 3, 'curl twice and once from mintfs run');
      for (const r of api) assert.equal(r.headers.authorization, `token ${CREDENTIAL}`);
      const git = upstream.requests.filter((r) => r.url.startsWith('/acme/widgets.git/'));
      assert.ok(git.length >= 2, 'info/refs and upload-pack');
      const basic = Buffer.from(`x-access-token:${CREDENTIAL}`).toString('base64');
      for (const r of git) assert.equal(r.headers.authorization, `Basic ${basic}`);
      assert.equal(readFileSync(join(dir, 'widgets', 'README'), 'utf8'), 'widgets\n');
      // Keys and revocations: the old key retired, four revocation commands succeeded.
      assert.match(section('keys'), /retired/);
      // Run twice, the snippet retired the key each rotation replaced: none is left verifying.
      const keysAfter = JSON.parse(section('keys-after').slice('keys-after\n'.length)) as {
        entries: Array<{ state: string }>;
      };
      assert.deepEqual(keysAfter.entries.map((e) => e.state).sort(), [
        'retired',
        'retired',
        'signing',
      ]);
      assert.match(section('revoke'), /"records"/);
      // mintfs run: the sandboxed curl got the upstream's answer.
      assert.match(section('run'), /"ok":true/);
      assert.ok(existsSync(join(dir, 'keys')));
    },
  );
});
