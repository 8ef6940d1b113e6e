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
import { mountedPaths, openFuseConnection, topMountAt } from '../../src/mounts/mount-table.js';
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
    const { fsnameWithOptions, loadFuseNative } =
      await import('../../src/fuse/fuse-native-workarounds.js');
    const PatchedFuse = loadFuseNative();
    const dir = tempDir(t);
    // A real mount at a hostile name, so the unmount really runs fusermount3. A
    // mount name cannot hold a slash: a shell would touch the marker in our cwd.
    const markerName = `mintfs-injected-${process.pid}`;
    const marker = join(process.cwd(), markerName);
    teardownOf(t).add(() => rmSync(marker, { force: true }));
    const mountpoint = join(dir, `$(touch ${markerName})`);
    mkdirSync(mountpoint);
    // Typed fuse.mintfs as the daemon's mounts are: with the id, the device and
    // the connection, what tells this mount from a later one given its id (the
    // suite mounts in parallel, and a bare id once detached another file's mount).
    const fsname = fsnameWithOptions('mintfs', ['subtype=mintfs']);
    const fuse = new PatchedFuse(mountpoint, {}, { fsname });
    await new Promise<void>((resolve, reject) =>
      fuse.mount((err) => (err ? reject(err) : resolve())),
    );
    const entry = topMountAt(mountpoint);
    assert.equal(entry?.fstype, 'fuse.mintfs');
    const { id, device } = entry as { id: number; device: string };
    const connection = await openFuseConnection(device);
    // However the test ends, the FUSE thread stops (as the daemon stops it):
    // a thread left reading a connection kept this file's process alive.
    teardownOf(t).add(async () => {
      connection.abort();
      spawnSync('fusermount3', ['-u', '-z', '--', mountpoint], { timeout: 10_000 });
      await new Promise<void>((resolve) => fuse.unmount(() => resolve()));
      connection.release();
    });
    assert.equal(mountedPaths().includes(mountpoint), true);
    // The replaced static succeeds without touching the mount: by the time a
    // daemon stops, another may serve that path (a takeover).
    assert.equal(await unmountWith(PatchedFuse.unmount.bind(PatchedFuse), mountpoint), null);
    assert.equal(mountedPaths().includes(mountpoint), true, 'still mounted');
    const alive = () => connection.alive();
    assert.equal(await detachMountById(id, device, alive), 'detached');
    assert.equal(mountedPaths().includes(mountpoint), false, 'detached by id');
    // Its id (and, once its connection has ended, its device) may go to the
    // next mount anywhere: a second detach must leave that one alone.
    assert.equal(await detachMountById(id, device, alive), 'already-gone');
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
