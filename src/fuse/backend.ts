/**
 * What mintfs needs from a FUSE binding. The file system (fs/) knows nothing
 * of any binding; each backend adapts FsOperations to its binding and maps
 * errors with errnoFor().
 */
import type { FsOperations } from '../fs/mint-fs.js';
import type { Logger } from '../log/logger.js';
import type { DetachOutcome } from './propagation.js';

export interface MountOptions {
  /** Let other users (the container's) reach the mount; permissions still apply. */
  readonly allowOther: boolean;
  readonly logger: Logger;
}

export interface MountedFileSystem {
  /** Where it was mounted; a takeover moves it (see fuse/propagation.ts). */
  readonly mountpoint: string;
  /** Its id in /proc/self/mountinfo, which follows it when it is moved. */
  readonly mountId: number;
  /**
   * Lazily detaches the mount, wherever it now is: no new path lookups reach
   * it, while files already open keep being served. Safe to call twice; a
   * mount already detached by someone else (a takeover) is left as it is.
   */
  detach(): Promise<DetachOutcome>;
  /** Stops serving (detaching first if needed). Safe to call twice. */
  close(): Promise<void>;
}

export interface FuseBackend {
  readonly name: string;
  mount(
    mountpoint: string,
    operations: FsOperations,
    options: MountOptions,
  ): Promise<MountedFileSystem>;
}
