/**
 * Putting a new mount at its mountpoint. Every mount is made at a private
 * staging directory and then moved into place: a takeover has to (the new
 * mount goes beneath the running one), and doing it always keeps one code
 * path, and means the path libfuse remembers for its own unmount-at-exit is
 * never a path another daemon serves. Moving in is either a plain move onto
 * a free mountpoint, or, for a takeover, a move beneath the running daemon's
 * mount followed by detaching that one, so readers never find the path empty.
 */
import { mkdtempSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MintFs } from '../fs/mint-fs.js';
import type { FuseBackend, MountedFileSystem } from '../fuse/backend.js';
import { detachMount, topMountAt } from '../mounts/mount-table.js';
import { ensurePrivateStaging, mountCommand, moveMountBeneath } from '../mounts/propagation.js';
import type { Logger } from '../log/logger.js';
import type { FuseTransport } from '../fuse/transport.js';
import { processAlive } from '../util/process-alive.js';

export interface Placement {
  readonly mountpoint: string;
  readonly backend: FuseBackend;
  readonly fs: MintFs;
  readonly logger: Logger;
  /** A live mintfs mount is at the mountpoint: slide in beneath it and detach it. */
  readonly takeover: boolean;
  /** How the native backend receives requests (fuse/transport.ts). */
  readonly transport?: FuseTransport | undefined;
}

export async function placeMount(placement: Placement): Promise<MountedFileSystem> {
  const { mountpoint, logger } = placement;
  const staging = await ensurePrivateStaging();
  removeLeftoverStages(staging);
  const stage = mkdtempSync(join(staging, `${STAGE_PREFIX}${process.pid}-`));
  let mounted: MountedFileSystem;
  try {
    mounted = await placement.backend.mount(stage, placement.fs, {
      allowOther: true,
      logger,
      transport: placement.transport,
    });
  } catch (err) {
    removeStage(stage, logger);
    throw err;
  }
  try {
    if (placement.takeover) {
      const previous = topMountAt(mountpoint);
      await moveMountBeneath(stage, mountpoint);
      // The old daemon's mount is on top of ours: detaching it reveals ours.
      if (previous && previous.id !== mounted.mountId && topMountAt(mountpoint)?.id === previous.id)
        await detachMount(mountpoint);
      logger.info(
        { event: 'takeover', mountpoint, previousMountId: previous?.id, mountId: mounted.mountId },
        'took the mountpoint over from the running daemon',
      );
    } else {
      await mountCommand(['--move', stage, mountpoint], mountpoint);
    }
  } catch (err) {
    await mounted.close().catch(() => undefined);
    throw err;
  } finally {
    removeStage(stage, logger);
  }
  return mounted;
}

/** A stage is `m-<pid of its daemon>-<random>`: whose it is, so no daemon removes a live one's. */
const STAGE_PREFIX = 'm-';
const STAGE_NAME = new RegExp(`^${STAGE_PREFIX}(\\d+)-[A-Za-z0-9]+$`);

/**
 * Empty stage directories of daemons that are gone (killed between making
 * one and removing it). A live daemon's stage is left alone: removing it
 * between its mkdtemp and its mount failed that daemon's start.
 */
function removeLeftoverStages(staging: string): void {
  for (const name of readdirSync(staging)) {
    const pid = STAGE_NAME.exec(name)?.[1];
    if (pid === undefined || processAlive(Number(pid)) || topMountAt(join(staging, name))) continue;
    try {
      rmdirSync(join(staging, name));
    } catch {
      // Not empty, or removed by another daemon's sweep at the same moment: leave it.
    }
  }
}

/** Our stage, once the mount left it (or never came): a failure here must not undo a placed mount. */
function removeStage(stage: string, logger: Logger): void {
  try {
    rmdirSync(stage);
  } catch (err) {
    logger.warn(
      { event: 'stage-cleanup-failed', stage, code: (err as NodeJS.ErrnoException).code },
      'could not remove the staging directory; the next mount removes it',
    );
  }
}
