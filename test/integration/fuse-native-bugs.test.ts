/**
 * fuse-native 2.2.6 bugs that src/fuse/fuse-native-workarounds.ts works
 * around. If an upgrade fixes one, its test here starts failing: then drop
 * the workaround.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Fuse from 'fuse-native';
import { tempDir } from '../helpers/temp.js';

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

  it('our unmount passes the path as one argument, never to a shell', async (t) => {
    const { loadFuseNative } = await import('../../src/fuse/fuse-native-workarounds.js');
    const PatchedFuse = loadFuseNative();
    const dir = tempDir(t);
    const marker = join(dir, 'injected');
    const err = await unmountWith(
      PatchedFuse.unmount.bind(PatchedFuse),
      join(dir, `$(touch ${marker})`),
    );
    assert.ok(err, 'unmounting a path that is not mounted fails');
    assert.equal(existsSync(marker), false);
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
