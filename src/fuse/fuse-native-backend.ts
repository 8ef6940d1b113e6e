/**
 * The fuse-native backend: libfuse 2's high-level API, one JS round trip per
 * FUSE request. Portable, and the fallback for the native backend to come.
 */
import type { FuseOps, FuseStat } from 'fuse-native';
import type { FileAttributes, FsOperations } from '../fs/mint-fs.js';
import type { Logger } from '../log/logger.js';
import { MintfsError, describeError } from '../errors.js';
import { mountedFileSystem, type FuseBackend } from './backend.js';
import { EIO, EROFS, errnoFor } from './errno.js';
import { fsnameWithOptions, loadFuseNative } from './fuse-native-workarounds.js';
import { detachMount, openFuseConnection, topMountAt } from '../mounts/mount-table.js';

// Everything that would change the tree answers EROFS.
const WRITE_OPS = [
  'write',
  'create',
  'unlink',
  'mkdir',
  'rmdir',
  'rename',
  'link',
  'symlink',
  'mknod',
  'chmod',
  'chown',
  'truncate',
  'ftruncate',
  'utimens',
  'setxattr',
  'removexattr',
] as const;

export const fuseNativeBackend: FuseBackend = {
  name: 'fuse-native',
  readerIdentity: false,
  async mount(mountpoint, operations, options) {
    const Fuse = loadFuseNative();
    const fuse = new Fuse(mountpoint, adapt(operations, options.logger), {
      allowOther: options.allowOther,
      // The kernel enforces the files' mode and owner from the profile.
      defaultPermissions: true,
      // A zero attribute timeout: a profile edit can change a token's size,
      // and a reader that trusts a cached size (Node's readFileSync reads
      // exactly st_size bytes) would get a cut token. Entries keep libfuse's
      // 1 s cache (negative entries are not cached): a removed file may stay
      // listed for a second, but opening it fails at once, and each read
      // saves two lookups (zero entry timeouts made reads 2-4x slower).
      fsname: fsnameWithOptions('mintfs', ['ro', 'direct_io', 'subtype=mintfs', 'attr_timeout=0']),
      // A mint never takes long; a stuck one should fail the read, not hang it.
      timeout: 10_000,
    });
    await new Promise<void>((resolve, reject) => {
      fuse.mount((err) =>
        err
          ? reject(
              new MintfsError('ERR_MOUNT_FAILED', `mount ${mountpoint}: ${describeError(err)}`, {
                cause: err,
              }),
            )
          : resolve(),
      );
    });
    const entry = topMountAt(mountpoint);
    if (entry?.fstype !== 'fuse.mintfs') {
      await detachMount(mountpoint).catch(() => undefined);
      throw new MintfsError('ERR_MOUNT_FAILED', `mount ${mountpoint}: not in the mount table`);
    }
    // Taken now, while the connection is surely ours (openFuseConnection says why).
    const connection = await openFuseConnection(entry.device);
    const mounted = mountedFileSystem({
      mountpoint,
      mountId: entry.id,
      device: entry.device,
      connection,
      // libfuse 2's own loop: /dev/fuse reads, whatever transport was asked for (the CLI refuses `uring` here).
      transport: 'classic',
      // Our Fuse.unmount detaches nothing, and fuse-native's own stops nothing:
      // its FUSE thread serves on while anything (a reader's cwd) holds the
      // detached mount, and the process exiting under it crashed (SIGSEGV on
      // Node 24). Aborting the connection ends that thread's loop first.
      stopServing: async () => {
        connection.abort();
        await new Promise<void>((resolve, reject) => {
          fuse.unmount((err) => (err ? reject(err) : resolve()));
        });
      },
      activity: () => ({
        openHandles: operations.openHandles,
        idleMs: performance.now() - operations.lastActivity,
      }),
    });
    return mounted;
  },
};

function adapt(ops: FsOperations, logger: Logger): FuseOps {
  // fuse-native calls back into native code; a throw here would crash the daemon.
  const guard = <T>(
    op: string,
    path: string,
    work: () => T,
    reply: (errno: number, value?: T) => void,
  ) => {
    let value: T;
    try {
      value = work();
    } catch (err) {
      const errno = errnoFor(err);
      if (errno === EIO)
        logger.error({ event: 'fs-error', op, path, err: describeError(err) }, 'file system error');
      reply(errno);
      return;
    }
    reply(0, value);
  };

  const adapted: FuseOps = {
    getattr: (path, cb) => guard('getattr', path, () => toStat(ops.getattr(path)), cb),
    fgetattr: (path, fd, cb) => guard('fgetattr', path, () => toStat(ops.fgetattr(path, fd)), cb),
    readdir: (path, cb) => guard('readdir', path, () => [...ops.readdir(path)], cb),
    open: (path, flags, cb) => guard('open', path, () => ops.open(path, flags), cb),
    read: (path, fd, buf, len, pos, cb) =>
      guard(
        'read',
        path,
        () => ops.read(fd, len, pos).copy(buf),
        (errno, copied) => cb(errno < 0 ? errno : (copied ?? 0)),
      ),
    release: (path, fd, cb) =>
      guard(
        'release',
        path,
        () => ops.release(fd),
        (errno) => cb(errno),
      ),
    statfs: (_path, cb) =>
      cb(0, {
        bsize: 4096,
        frsize: 4096,
        blocks: 0,
        bfree: 0,
        bavail: 0,
        files: 0,
        ffree: 0,
        favail: 0,
        fsid: 0,
        flag: 1,
        namemax: 255,
      }),
  };
  for (const op of WRITE_OPS) {
    adapted[op] = (...args: never[]) => {
      const cb = args[args.length - 1] as unknown as (errno: number) => void;
      cb(EROFS);
    };
  }
  return adapted;
}

function toStat(attrs: FileAttributes): FuseStat {
  return {
    mode: attrs.mode,
    uid: attrs.uid,
    gid: attrs.gid,
    size: attrs.size,
    nlink: attrs.nlink,
    mtime: attrs.mtime,
    atime: attrs.mtime,
    ctime: attrs.mtime,
  };
}
