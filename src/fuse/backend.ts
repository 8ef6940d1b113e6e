/**
 * What mintfs needs from a FUSE binding. The file system (fs/) knows nothing
 * of any binding; each backend adapts FsOperations to its binding and maps
 * errors with errnoFor().
 */
import type { FsOperations } from '../fs/mint-fs.js';
import type { Logger } from '../log/logger.js';

export interface MountOptions {
  /** Let other users (the container's) reach the mount; permissions still apply. */
  readonly allowOther: boolean;
  readonly logger: Logger;
}

export interface MountedFileSystem {
  readonly mountpoint: string;
  /**
   * Lazily detaches the mount: no new path lookups reach it, while files
   * already open keep being served. Safe to call twice.
   */
  detach(): Promise<void>;
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
