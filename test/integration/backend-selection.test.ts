/**
 * Where the native backend did not build, `mintfs mount` says so and serves
 * with fuse-native; asking for `--backend native` there fails with the reason
 * and mounts nothing. The build without the addon is a copy of dist/ with
 * the addon left out (the package's node_modules linked in).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, copyFileSync, existsSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { initKeyring } from '../../src/keys/keyring.js';
import { diagnostics } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';
import { teardownOf, tempDir } from '../helpers/temp.js';
import { DEMO_PROFILE, stopMount, type MountFixture } from '../helpers/mount-fixture.js';

/** A copy of the built package without the native addon; returns its CLI. */
function buildWithoutAddon(dir: string): string {
  const pkg = join(dir, 'pkg');
  cpSync(join(REPO_ROOT, 'dist'), join(pkg, 'dist'), {
    recursive: true,
    filter: (source) => !source.endsWith('.node'),
  });
  copyFileSync(join(REPO_ROOT, 'package.json'), join(pkg, 'package.json'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(pkg, 'node_modules'));
  assert.equal(existsSync(join(pkg, 'dist', 'native', 'mintfs_native.node')), false);
  return join(pkg, 'dist', 'src', 'cli', 'main.js');
}

describe('backend selection', () => {
  it('without the native addon: a warning naming why, then fuse-native serves', async (t) => {
    const dir = tempDir(t);
    const cli = buildWithoutAddon(dir);
    const keysDir = join(dir, 'keys');
    initKeyring(keysDir, new Date());
    const profileFile = join(dir, 'profile.yaml');
    writeFileSync(profileFile, DEMO_PROFILE);
    const mountpoint = join(dir, 'mnt');
    const child = spawn(
      process.execPath,
      [cli, 'mount', profileFile, mountpoint, '--keys', keysDir],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const fixture = { child, mountpoint } as unknown as MountFixture;
    teardownOf(t).add(() => stopMount(fixture));
    await pollUntil('the fallback mount to serve', () => {
      if (child.exitCode !== null) throw new Error(`mount exited ${child.exitCode}: ${stderr}`);
      return stderr.includes('"event":"mounted"') && readdirSync(mountpoint).length > 0;
    });
    const fallback = JSON.parse(
      stderr.split('\n').find((line) => line.includes('"event":"backend-fallback"')) ?? '{}',
    ) as { level?: number; reason?: string };
    assert.equal(fallback.level, 40, 'a warning');
    assert.match(
      fallback.reason ?? '',
      /the native backend is not built \(.*mintfs_native\.node is missing/,
    );
    assert.match(stderr, /"event":"mounted".*"backend":"fuse-native"/);
    assert.equal(spawnSync('cat', [join(mountpoint, 'github/token')]).status, 0);
  });

  it('without the native addon, --backend native fails with the reason and mounts nothing', (t) => {
    const dir = tempDir(t);
    const cli = buildWithoutAddon(dir);
    initKeyring(join(dir, 'keys'), new Date());
    writeFileSync(join(dir, 'profile.yaml'), DEMO_PROFILE);
    const result = spawnSync(
      process.execPath,
      [
        cli,
        'mount',
        join(dir, 'profile.yaml'),
        join(dir, 'mnt'),
        '--keys',
        join(dir, 'keys'),
        '--backend',
        'native',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(result.status, 3);
    const lines = diagnostics(result.stderr);
    assert.equal(lines.length, 1, result.stderr);
    assert.match(
      lines[0] ?? '',
      /^mintfs: the native backend is not built \(.*mintfs_native\.node is missing\): the npm package carries it prebuilt for linux-x64 only; in a checkout, scripts\/setup\.sh installs libfuse3-dev and builds it$/,
    );
    assert.equal(existsSync(join(dir, 'mnt')), false);
  });
});
