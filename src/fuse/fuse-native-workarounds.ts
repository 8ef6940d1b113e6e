/**
 * Workarounds for fuse-native 2.2.6, all in one place. Each is shown by a
 * test in test/integration/fuse-native-bugs.test.ts.
 *
 * 1. Unmount runs a shell: `Fuse.unmount` does
 *    exec(`fusermount -uz ${JSON.stringify(mountpoint)}`), and JSON quoting
 *    does not stop `$(...)` in a double-quoted shell word, so a mountpoint
 *    name runs commands as root. We replace it with an execFile of
 *    fusermount3 (no shell), and `_close` picks it up since it calls the static.
 *    Ours also succeeds on a mountpoint that is no longer mounted, so that a
 *    graceful shutdown can detach first and stop fuse-native's loop later.
 * 2. No way to pass `direct_io` (nor zero timeouts: `entryTimeout: 0` is
 *    dropped as falsy). Options are joined with commas into one `-o`, so the
 *    extra ones ride along after `fsname=`. direct_io makes read() bypass the
 *    page cache, so a later open never gets an earlier open's token.
 */
import Fuse from 'fuse-native';
import { detachMount, mountedPaths } from './mount-table.js';

let unmountPatched = false;

export function loadFuseNative(): typeof Fuse {
  if (!unmountPatched) {
    Fuse.unmount = (mountpoint, cb) => {
      // Idempotent: a mount we already detached (graceful shutdown) is done.
      if (!mountedPaths().includes(mountpoint)) {
        process.nextTick(cb, null);
        return;
      }
      detachMount(mountpoint).then(
        () => cb(null),
        (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
      );
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
