/**
 * fuse-native 2.2.6 bugs that src/fuse/fuse-native-workarounds.ts works
 * around. If an upgrade fixes one, its test here starts failing: then drop
 * the workaround.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Fuse from 'fuse-native';
import { mountedPaths, topMountAt } from '../../src/mounts/mount-table.js';
import { detachMountById } from '../../src/mounts/propagation.js';
import { tempDir, teardownOf } from '../helpers/temp.js';

// Captured before the workaround module is loaded (it replaces the static).
const originalUnmount = Fuse.unmount.bind(Fuse);

function unmountWith(unmount: typeof Fuse.unmount, mountpoint: string): Promise<Error | null> {
  return new Promise((resolve) => unmount(mountpoint, resolve));
}

describe('fuse-native bugs', () => {
  it('Fuse.unmount runs the mountpoint through a shell: $(...) in a path executes', async (t) => {
    const dir = tempDir(t);
    const marker = join(dir, 'injected');
    await unmountWith(originalUnmount, join(dir, `$(touch ${marker})`));
    assert.equal(existsSync(marker), true, 'the shell ran the command in the path');
  });

  it('our Fuse.unmount runs no shell and detaches nothing; the daemon detaches by mount id', async (t) => {
    const { loadFuseNative } = await import('../../src/fuse/fuse-native-workarounds.js');
    const PatchedFuse = loadFuseNative();
    const dir = tempDir(t);
    // A real mount at a hostile name, so the unmount really runs fusermount3. A
    // mount name cannot hold a slash: a shell would touch the marker in our cwd.
    const markerName = `mintfs-injected-${process.pid}`;
    const marker = join(process.cwd(), markerName);
    teardownOf(t).add(() => rmSync(marker, { force: true }));
    const mountpoint = join(dir, `$(touch ${markerName})`);
    mkdirSync(mountpoint);
    const fuse = new PatchedFuse(mountpoint, {}, {});
    await new Promise<void>((resolve, reject) =>
      fuse.mount((err) => (err ? reject(err) : resolve())),
    );
    teardownOf(t).add(() => spawnSync('fusermount3', ['-u', '-z', '--', mountpoint]));
    assert.equal(mountedPaths().includes(mountpoint), true);
    // The replaced static succeeds without touching the mount: by the time a
    // daemon stops, another may serve that path (a takeover).
    assert.equal(await unmountWith(PatchedFuse.unmount.bind(PatchedFuse), mountpoint), null);
    assert.equal(mountedPaths().includes(mountpoint), true, 'still mounted');
    const id = topMountAt(mountpoint)?.id as number;
    assert.equal(await detachMountById(id), 'detached');
    assert.equal(mountedPaths().includes(mountpoint), false, 'detached by id');
    assert.equal(await detachMountById(id), 'already-gone');
    await new Promise<void>((resolve, reject) =>
      fuse.unmount((err) => (err ? reject(err) : resolve())),
    );
    assert.equal(existsSync(marker), false, 'no shell ran the path');
  });

  it('fuse-native cannot express direct_io, and drops zero timeouts', (t) => {
    const dir = tempDir(t);
    type WithOptions = { _fuseOptions(): string };
    const options = (
      new Fuse(dir, {}, { entryTimeout: 0, attrTimeout: 0 }) as unknown as WithOptions
    )._fuseOptions();
    assert.doesNotMatch(options, /entry_timeout|attr_timeout|direct_io/);
  });

  it('our options ride after fsname and reach libfuse as separate options', async (t) => {
    const { fsnameWithOptions } = await import('../../src/fuse/fuse-native-workarounds.js');
    const dir = tempDir(t);
    type WithOptions = { _fuseOptions(): string };
    const fsname = fsnameWithOptions('mintfs', ['direct_io']);
    const options = (new Fuse(dir, {}, { fsname }) as unknown as WithOptions)._fuseOptions();
    assert.match(options, /^-o(.*,)?fsname=mintfs,direct_io(,|$)/);
    assert.throws(() => fsnameWithOptions('mintfs', ['dev,suid']), RangeError);
  });
});
