/**
 * Workarounds for fuse-native 2.2.6, all in one place. Each is shown by a
 * test in test/integration/fuse-native-bugs.test.ts.
 *
 * 1. Unmount runs a shell: `Fuse.unmount` does
 *    exec(`fusermount -uz ${JSON.stringify(mountpoint)}`), and JSON quoting
 *    does not stop `$(...)` in a double-quoted shell word, so a mountpoint
 *    name runs commands as root. We replace it with one that detaches
 *    nothing (`_close` calls the static before stopping its loop): the daemon
 *    detaches its own mount by mount id (mounts/propagation.ts), because by
 *    then another daemon may have taken the path over.
 * 2. No way to pass `direct_io` (nor zero timeouts: `entryTimeout: 0` is
 *    dropped as falsy). Options are joined with commas into one `-o`, so the
 *    extra ones ride along after `fsname=`. direct_io makes read() bypass the
 *    page cache, so a later open never gets an earlier open's token.
 */
import Fuse from 'fuse-native';

let unmountPatched = false;

export function loadFuseNative(): typeof Fuse {
  if (!unmountPatched) {
    Fuse.unmount = (_mountpoint, cb) => {
      process.nextTick(cb, null);
    };
    unmountPatched = true;
  }
  return Fuse;
}

/** The `fsname` value that also carries mount options fuse-native cannot express. */
export function fsnameWithOptions(fsname: string, extraOptions: readonly string[]): string {
  for (const option of [fsname, ...extraOptions]) {
    if (!/^[A-Za-z0-9_=.-]+$/.test(option)) throw new RangeError(`unsafe mount option ${option}`);
  }
  return [fsname, ...extraOptions].join(',');
}
