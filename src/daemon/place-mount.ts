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

export interface Placement {
  readonly mountpoint: string;
  readonly backend: FuseBackend;
  readonly fs: MintFs;
  readonly logger: Logger;
  /** A live mintfs mount is at the mountpoint: slide in beneath it and detach it. */
  readonly takeover: boolean;
}

export async function placeMount(placement: Placement): Promise<MountedFileSystem> {
  const { mountpoint, logger } = placement;
  const staging = await ensurePrivateStaging();
  removeLeftoverStages(staging);
  const stage = mkdtempSync(join(staging, 'm-'));
  let mounted: MountedFileSystem;
  try {
    mounted = await placement.backend.mount(stage, placement.fs, { allowOther: true, logger });
  } catch (err) {
    rmdirSync(stage);
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
    rmdirSync(stage);
  }
  return mounted;
}

/** Empty stage directories a killed daemon left behind. */
function removeLeftoverStages(staging: string): void {
  for (const name of readdirSync(staging)) {
    if (!name.startsWith('m-') || topMountAt(join(staging, name))) continue;
    try {
      rmdirSync(join(staging, name));
    } catch {
      // Another daemon's stage in use, or not empty: leave it.
    }
  }
}
