/**
 * Serving a profile at a mountpoint: everything is validated before the
 * mount exists (profile, keyring, mountpoint), so a bad input never leaves a
 * partial mount behind. Once serving, the profile and the keyring are
 * watched: edits and rotations apply to the next open, and an invalid edit
 * keeps the last good state serving.
 */
import { mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { MintfsError, describeError } from '../errors.js';
import { MintFs } from '../fs/mint-fs.js';
import {
  buildTree,
  fileNeedingReaderIdentity,
  withOwner,
  type VirtualTree,
} from '../fs/virtual-tree.js';
import type { FuseBackend, MountedFileSystem } from '../fuse/backend.js';
import type { FuseTransport } from '../fuse/transport.js';
import { detachMount, mountById, mountpointState, topMountAt } from '../mounts/mount-table.js';
import { STAGING_DIR, checkSharedParent, ensureSharedParent } from '../mounts/propagation.js';
import { watchKeyring } from '../keys/watch-keyring.js';
import type { Logger } from '../log/logger.js';
import { loadProfile } from '../profile/load-profile.js';
import { newTokenId } from '../token/identifier.js';
import { Reloadable, fileFingerprint } from '../util/reloadable.js';
import { placeMount } from './place-mount.js';

export interface MountRequest {
  readonly profileFile: string;
  readonly mountpoint: string;
  readonly keysDir: string;
  readonly backend: FuseBackend;
  /** How the native backend receives requests (fuse/transport.ts); default classic. */
  readonly transport?: FuseTransport | undefined;
  readonly logger: Logger;
  /** Take over from a live daemon at the mountpoint, without a gap for readers. */
  readonly takeover?: boolean;
  /** Make the mountpoint's parent a shared mount, so rslave containers follow restarts. */
  readonly sharedParent?: boolean;
  /** Own every file as this user, whatever the profile says (mintfs run's sandbox user). */
  readonly fileOwner?: { readonly uid: number; readonly gid: number };
  /** Hears the outcome of every open of a token file (metrics). */
  readonly observeMint?:
    ((file: string, outcome: 'minted' | 'denied' | 'failed') => void) | undefined;
  readonly clock?: () => Date;
  /** Every read from offset 0 mints afresh (MintFsSources.mintPerRead): a mount for gVisor. */
  readonly mintPerRead?: boolean;
}

export interface RunningMount {
  readonly mountpoint: string;
  readonly fs: MintFs;
  /** Resolves when the mount leaves the mount table without unmount() (a takeover). */
  readonly lost: Promise<void>;
  /** Re-reads the profile and the keyring now (SIGHUP); they are also polled. */
  reload(reason: string): void;
  /** Token files open right now (readers between open and close). */
  openHandles(): number;
  /**
   * Graceful stop: detach so no new opens arrive, let readers that already
   * hold a token file open finish (up to `drainMs`), then stop serving.
   */
  unmount(options?: { drainMs?: number }): Promise<void>;
}

export const DEFAULT_DRAIN_MS = 10_000;
const DRAIN_IDLE_MS = 1_000;
const LOST_POLL_MS = 250;

export async function startMount(request: MountRequest): Promise<RunningMount> {
  const { logger } = request;
  requireRoot('mount');
  const profileFile = request.profileFile;
  const owner = request.fileOwner;
  const loadTree = () => {
    const built = buildTree(loadProfile(profileFile));
    requireReaderIdentity(built, request.backend, profileFile);
    return owner ? withOwner(built, owner) : built;
  };
  const tree = new Reloadable(loadTree(), {
    name: 'profile',
    load: loadTree,
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
    observeMint: request.observeMint,
    mintPerRead: request.mintPerRead === true,
    subscribe: (listener) => {
      const stops = [tree.onReload(listener), keyring.onReload(listener)];
      return () => stops.forEach((stop) => stop());
    },
  });
  let takeover: boolean;
  try {
    if (request.sharedParent) checkSharedParent(request.mountpoint);
    ({ mountpoint, takeover } = await prepareMountpoint(request.mountpoint, logger, request));
    if (request.sharedParent) {
      const parent = await ensureSharedParent(mountpoint);
      logger.info({ event: 'shared-parent', parent }, 'mountpoint parent is a shared mount');
    }
    mounted = await placeMount({
      mountpoint,
      backend: request.backend,
      fs,
      logger,
      takeover,
      transport: request.transport,
    });
  } catch (err) {
    stopWatching();
    throw err;
  }
  // Gone from the mount table without us detaching it: a newer daemon took over
  // (or an admin ran umount). Either way this daemon drains and stops.
  let stopping = false;
  let unmounting: Promise<void> | undefined;
  const lost = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (stopping) return clearInterval(timer);
      if (mountById(mounted.mountId)) return;
      clearInterval(timer);
      logger.info(
        { event: 'mount-lost', mountpoint, mountId: mounted.mountId },
        'our mount was detached (taken over by a newer daemon?); draining and stopping',
      );
      resolve();
    }, LOST_POLL_MS);
    timer.unref();
  });
  logger.info(
    {
      event: 'mounted',
      mountpoint,
      profile: profileFile,
      agent: tree.current.agent,
      files: [...tree.current.files.keys()],
      keyId: keyring.current.current.id,
      backend: request.backend.name,
      transport: mounted.transport,
    },
    'mintfs is serving',
  );
  return {
    mountpoint,
    fs,
    openHandles: () => mounted.activity().openHandles,
    reload: (reason) => {
      tree.reload(reason);
      keyring.reload(reason);
    },
    lost,
    unmount: ({ drainMs = DEFAULT_DRAIN_MS } = {}) => (unmounting ??= drain(drainMs)),
  };

  async function drain(drainMs: number): Promise<void> {
    stopping = true;
    stopWatching();
    try {
      await mounted.detach();
    } catch (err) {
      // Still drain and stop: close() tries the detach again and stops serving regardless.
      logger.warn(
        { event: 'detach-failed', mountpoint, detail: describeError(err) },
        'could not detach the mount; stopping anyway',
      );
    }
    const deadline = Date.now() + drainMs;
    // fuse-native does not deliver the release of a file closed after the
    // detach, so a handle can look open forever: a reader idle for a second
    // is taken as done.
    const busy = () => {
      const { openHandles, idleMs } = mounted.activity();
      return openHandles > 0 && idleMs < DRAIN_IDLE_MS;
    };
    while (busy() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (busy())
      logger.warn(
        { event: 'drain-timeout', openHandles: mounted.activity().openHandles },
        'readers still hold files open; stopping anyway',
      );
    await mounted.close();
    logger.info({ event: 'unmounted', mountpoint }, 'mintfs unmounted');
  }
}

/**
 * Fail closed: a profile that restricts readers (or stamps them into tokens)
 * on a backend that cannot tell who reads would serve tokens to anyone.
 */
function requireReaderIdentity(tree: VirtualTree, backend: FuseBackend, source: string): void {
  if (backend.readerIdentity) return;
  const file = fileNeedingReaderIdentity(tree);
  if (!file) return;
  const field = file.readers ? 'readers' : 'readerCaveat';
  throw new MintfsError(
    'ERR_PROFILE_INVALID',
    `${source}: files.${file.path}.${field} needs the native backend, which knows who reads; the ${backend.name} backend does not (mintfs mount --backend native)`,
  );
}

/**
 * An absolute, canonical mountpoint that exists and is free. A mount left by
 * a killed daemon is detached; one still served by a live daemon is refused.
 */
async function prepareMountpoint(
  requested: string,
  logger: Logger,
  options: { takeover?: boolean | undefined },
): Promise<{ mountpoint: string; takeover: boolean }> {
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
  if (state === 'live') {
    if (!options.takeover)
      throw new MintfsError(
        'ERR_MOUNTPOINT_BUSY',
        `${mountpoint} is already mounted by a running file system (--takeover replaces a running mintfs without a gap)`,
      );
    if (topMountAt(mountpoint)?.fstype !== 'fuse.mintfs')
      throw new MintfsError(
        'ERR_MOUNTPOINT_BUSY',
        `${mountpoint} is mounted by something other than mintfs; refusing to take it over`,
      );
    return { mountpoint, takeover: true };
  }
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
  return { mountpoint, takeover: false };
}

/**
 * Mounting stages the file system under /run/mintfs-staging and moves it into
 * place (so a restart can take over without a gap), which needs root:
 * refuse at once with the reason, not with an EACCES from somewhere inside.
 */
export function requireRoot(what: string): void {
  const euid = process.geteuid?.() ?? 0;
  if (euid !== 0)
    throw new MintfsError(
      'ERR_MOUNT_FAILED',
      `${what} needs root (it stages each mount under ${STAGING_DIR} and moves it into place; uid ${euid} cannot): run it as root, for example from a system service`,
    );
}
