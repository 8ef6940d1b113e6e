/**
 * What a user gets from `npm pack`: a tarball that installs globally (npm
 * runs no install scripts for it, so nothing may depend on one) and serves a
 * real mount on the native backend from the prebuilt addon inside it; without
 * that addon, the same install falls back to fuse-native and says why.
 * Dependencies come from npm's cache or registry, as for a user.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { mountedPaths } from '../../src/mounts/mount-table.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir, teardownOf, type Teardown } from '../helpers/temp.js';

const VERSION = (
  JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

/** The installed command runs on the Node.js running this test (its shebang says `node`). */
function pathWithNode(): string {
  return `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
}

/** npm's environment: its temporary files (V8's compile cache among them) in the test's directory. */
function npmEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, PATH: pathWithNode(), TMPDIR: dir };
}

async function serve(
  teardown: Teardown,
  mintfs: string,
  dir: string,
  name: string,
): Promise<{ log: () => string; mountpoint: string }> {
  const mountpoint = join(dir, name);
  const child = spawn(
    mintfs,
    [
      'mount',
      join(REPO_ROOT, 'mount-profiles', 'github-readonly.yaml'),
      mountpoint,
      '--keys',
      join(dir, 'keys'),
    ],
    { env: { ...process.env, PATH: pathWithNode() }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (log += c));
  teardown.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    }
    if (mountedPaths().includes(mountpoint)) execFileSync('umount', ['-l', mountpoint]);
  });
  await pollUntil(
    `the installed mintfs to mount ${name}`,
    () => {
      if (child.exitCode !== null) throw new Error(`mintfs mount exited: ${log}`);
      return log.includes('"event":"mounted"');
    },
    30_000,
  );
  return { log: () => log, mountpoint };
}

describe('the npm package', () => {
  it('packs what users need and nothing else, installs globally without install scripts, and mounts on the native backend', async (t) => {
    const dir = tempDir(t);
    const teardown = teardownOf(t);
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: npmEnv(dir),
      }),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = packed[0]!.files.map((f) => f.path);
    for (const needed of [
      'package.json',
      'README.md',
      'dist/src/bundle/mintfs.js',
      // CommonJS beside ES modules: without its package.json the executable would load as an ES module.
      'dist/src/bundle/package.json',
      'dist/src/bundle/one-shot.cjs',
      'dist/src/bundle/one-shot-commands.cjs',
      'dist/src/bundle/main.mjs',
      'dist/src/lib/verify.js',
      'dist/src/lib/verify.d.ts',
      'dist/native/mintfs_native.node',
      'dist/native/mintfs-run-init',
      'mount-profiles/github-readonly.yaml',
      'docs/profiles.md',
    ])
      assert.ok(files.includes(needed), `the tarball lacks ${needed}`);
    const unwanted = files.filter((f) =>
      /^(src|test|dist\/test|dist\/scripts|scripts|native)\/|\.map$|\.ts$(?<!\.d\.ts)|^\.|\/\.|^build\//.test(
        f,
      ),
    );
    assert.deepEqual(unwanted, [], 'sources, tests, maps and build files stay out');

    const prefix = join(dir, 'prefix');
    execFileSync(
      'npm',
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        join(dir, packed[0]!.filename),
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: npmEnv(dir),
      },
    );
    const mintfs = join(prefix, 'bin', 'mintfs');
    const run = (...args: string[]) =>
      execFileSync(mintfs, args, {
        encoding: 'utf8',
        env: { ...process.env, PATH: pathWithNode() },
      }).trim();
    assert.equal(run('--version'), `mintfs ${VERSION}`);
    run('keys', 'init', '--keys', join(dir, 'keys'));

    const native = await serve(teardown, mintfs, dir, 'native');
    assert.match(native.log(), /"backend":"native"/);
    assert.doesNotMatch(native.log(), /backend-fallback/);
    const token = readFileSync(join(native.mountpoint, 'github', 'token'), 'utf8');
    assert.match(run('inspect', token), /"service github"/);

    // An install whose addon cannot load (another platform, no libfuse3):
    // fuse-native serves, and the log says why.
    const installed = join(prefix, 'lib', 'node_modules', 'mintfs');
    rmSync(join(installed, 'dist', 'native', 'mintfs_native.node'));
    const fallback = await serve(teardown, mintfs, dir, 'fallback');
    assert.match(fallback.log(), /"event":"backend-fallback"/);
    assert.match(fallback.log(), /the native backend is not built|does not load/);
    assert.match(fallback.log(), /"backend":"fuse-native"/);
    assert.ok(readFileSync(join(fallback.mountpoint, 'github', 'token'), 'utf8').length > 100);
    assert.ok(existsSync(installed) && readdirSync(installed).includes('dist'));
  });
});
