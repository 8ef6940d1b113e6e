/**
 * What mintfs needs from a FUSE binding. The file system (fs/) knows nothing
 * of any binding: fuse-native adapts MintFs's FsOperations to its binding and
 * maps errors with errnoFor(); the native backend serves MintFs's tree and
 * key from C and writes MintFs's audit lines.
 */
import type { MintFs } from '../fs/mint-fs.js';
import type { Logger } from '../log/logger.js';
import type { FuseConnection } from '../mounts/mount-table.js';
import { detachMountById, type DetachOutcome } from '../mounts/propagation.js';
import type { ActiveTransport, FuseTransport } from './transport.js';

export interface MountOptions {
  /** Let other users (the container's) reach the mount; permissions still apply. */
  readonly allowOther: boolean;
  readonly logger: Logger;
  /** How the native backend receives requests (transport.ts); default `classic`. */
  readonly transport?: FuseTransport | undefined;
}

export interface MountedFileSystem {
  /** Where it was mounted; a takeover moves it (see mounts/propagation.ts). */
  readonly mountpoint: string;
  /** Its id in /proc/self/mountinfo, which follows it when it is moved. */
  readonly mountId: number;
  /** What carries its requests: /dev/fuse reads, or io_uring (native backend, when asked for). */
  readonly transport: ActiveTransport;
  /**
   * Lazily detaches the mount, wherever it now is: no new path lookups reach
   * it, while files already open keep being served. Safe to call twice; a
   * mount already detached by someone else (a takeover) is left as it is.
   */
  detach(): Promise<DetachOutcome>;
  /** Stops serving (detaching first if needed). Safe to call twice. */
  close(): Promise<void>;
  /** Files open now, and how long since the last open, read or release (for draining). */
  activity(): { openHandles: number; idleMs: number };
}

export type BackendName = 'native' | 'fuse-native';

export interface FuseBackend {
  readonly name: BackendName;
  /** Whether it learns who reads a file: `readers` rules and `readerCaveat` need it. */
  readonly readerIdentity: boolean;
  mount(mountpoint: string, fs: MintFs, options: MountOptions): Promise<MountedFileSystem>;
}

/**
 * The MountedFileSystem both backends return: detach by mount id (once), and
 * close = detach, then stop serving whatever the detach did (a stale mount
 * is recovered by the next start; a daemon that cannot stop is not).
 */
export function mountedFileSystem(parts: {
  readonly mountpoint: string;
  readonly mountId: number;
  /** The mount's device (major:minor) when mounted: with the id, what makes it ours. */
  readonly device: string;
  /** Its FUSE connection, opened right after mounting: what tells ours from a later mount with the same id and device. */
  readonly connection: FuseConnection;
  readonly transport: ActiveTransport;
  readonly stopServing: () => void | Promise<void>;
  readonly activity: () => { openHandles: number; idleMs: number };
}): MountedFileSystem {
  let detaching: Promise<DetachOutcome> | undefined;
  let closing: Promise<void> | undefined;
  // One detach at a time; a failed one is tried again by the next call (close after drain).
  const detach = () =>
    (detaching ??= detachMountById(parts.mountId, parts.device, () =>
      parts.connection.alive(),
    ).catch((err: unknown) => {
      detaching = undefined;
      throw err;
    }));
  return {
    mountpoint: parts.mountpoint,
    mountId: parts.mountId,
    transport: parts.transport,
    detach,
    close: () =>
      (closing ??= (async () => {
        try {
          await detach();
        } finally {
          try {
            await parts.stopServing();
          } finally {
            parts.connection.release();
          }
        }
      })()),
    activity: () => (closing ? { openHandles: 0, idleMs: Infinity } : parts.activity()),
  };
}
