/**
 * Serving a profile at a mountpoint: everything is validated before the
 * mount exists (profile, keyring, mountpoint), so a bad input never leaves a
 * partial mount behind. Once serving, the profile and the keyring are
 * watched: edits and rotations apply to the next open, and an invalid edit
 * keeps the last good state serving.
 */
import { mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { MintfsError } from '../errors.js';
import { MintFs } from '../fs/mint-fs.js';
import { buildTree } from '../fs/virtual-tree.js';
import type { FuseBackend, MountedFileSystem } from '../fuse/backend.js';
import { detachMount, mountpointState } from '../fuse/mount-table.js';
import { watchKeyring } from '../keys/watch-keyring.js';
import type { Logger } from '../log/logger.js';
import { loadProfile } from '../profile/load-profile.js';
import { newTokenId } from '../token/identifier.js';
import { Reloadable, fileFingerprint } from '../util/reloadable.js';

export interface MountRequest {
  readonly profileFile: string;
  readonly mountpoint: string;
  readonly keysDir: string;
  readonly backend: FuseBackend;
  readonly logger: Logger;
  readonly clock?: () => Date;
}

export interface RunningMount {
  readonly mountpoint: string;
  readonly fs: MintFs;
  /** Re-reads the profile and the keyring now (SIGHUP); they are also polled. */
  reload(reason: string): void;
  /**
   * Graceful stop: detach so no new opens arrive, let readers that already
   * hold a token file open finish (up to `drainMs`), then stop serving.
   */
  unmount(options?: { drainMs?: number }): Promise<void>;
}

export const DEFAULT_DRAIN_MS = 10_000;
const DRAIN_IDLE_MS = 1_000;

export async function startMount(request: MountRequest): Promise<RunningMount> {
  const { logger } = request;
  const profileFile = request.profileFile;
  const tree = new Reloadable(buildTree(loadProfile(profileFile)), {
    name: 'profile',
    load: () => buildTree(loadProfile(profileFile)),
    fingerprint: () => fileFingerprint(profileFile),
    describe: (next) => ({ profile: profileFile, files: [...next.files.keys()] }),
    logger,
  });
  let keyring;
  try {
    keyring = watchKeyring(request.keysDir, logger);
  } catch (err) {
    tree.close();
    throw err;
  }
  const stopWatching = () => {
    tree.close();
    keyring.close();
  };
  let mountpoint: string;
  let mounted: MountedFileSystem;
  const fs = new MintFs({
    tree: () => tree.current,
    keyring: () => keyring.current,
    clock: request.clock ?? (() => new Date()),
    newTokenId,
    logger,
  });
  try {
    mountpoint = await prepareMountpoint(request.mountpoint, logger);
    mounted = await request.backend.mount(mountpoint, fs, { allowOther: true, logger });
  } catch (err) {
    stopWatching();
    throw err;
  }
  logger.info(
    {
      event: 'mounted',
      mountpoint,
      profile: profileFile,
      agent: tree.current.agent,
      files: [...tree.current.files.keys()],
      keyId: keyring.current.current.id,
      backend: request.backend.name,
    },
    'mintfs is serving',
  );
  return {
    mountpoint,
    fs,
    reload: (reason) => {
      tree.reload(reason);
      keyring.reload(reason);
    },
    unmount: async ({ drainMs = DEFAULT_DRAIN_MS } = {}) => {
      stopWatching();
      await mounted.detach();
      const deadline = Date.now() + drainMs;
      // fuse-native does not deliver the release of a file closed after the
      // detach, so a handle can look open forever: a reader idle for a second
      // is taken as done.
      const busy = () => fs.openHandles > 0 && performance.now() - fs.lastActivity < DRAIN_IDLE_MS;
      while (busy() && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      if (busy())
        logger.warn(
          { event: 'drain-timeout', openHandles: fs.openHandles },
          'readers still hold files open; stopping anyway',
        );
      await mounted.close();
      logger.info({ event: 'unmounted', mountpoint }, 'mintfs unmounted');
    },
  };
}

/**
 * An absolute, canonical mountpoint that exists and is free. A mount left by
 * a killed daemon is detached; one still served by a live daemon is refused.
 */
async function prepareMountpoint(requested: string, logger: Logger): Promise<string> {
  const absolute = resolve(requested);
  // realpath of a stale FUSE mount fails with ENOTCONN: canonicalise the parent.
  let parent: string;
  try {
    parent = realpathSync(dirname(absolute));
  } catch {
    mkdirSync(dirname(absolute), { recursive: true, mode: 0o755 });
    parent = realpathSync(dirname(absolute));
  }
  const mountpoint = join(parent, basename(absolute));
  const state = mountpointState(mountpoint);
  if (state === 'live')
    throw new MintfsError(
      'ERR_MOUNTPOINT_BUSY',
      `${mountpoint} is already mounted by a running file system`,
    );
  if (state === 'stale') {
    logger.warn(
      { event: 'stale-mount', mountpoint },
      'recovering a mount left by a daemon that died',
    );
    await detachMount(mountpoint);
  }
  let info;
  try {
    info = statSync(mountpoint);
  } catch {
    mkdirSync(mountpoint, { mode: 0o755 });
    info = statSync(mountpoint);
  }
  if (!info.isDirectory())
    throw new MintfsError('ERR_MOUNTPOINT_INVALID', `${mountpoint} is not a directory`);
  // Mounting over files would hide them, and an agent could mistake them for tokens.
  if (readdirSync(mountpoint).length > 0)
    throw new MintfsError('ERR_MOUNTPOINT_INVALID', `${mountpoint} is not empty`);
  return mountpoint;
}
