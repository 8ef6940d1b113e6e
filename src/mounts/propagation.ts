/**
 * Mount propagation, so that containers survive a daemon restart, and the
 * takeover that makes a restart seamless.
 *
 * A container that bind-mounts the FUSE mount itself holds that mount: when
 * the daemon restarts, the container keeps the dead one. A container that
 * bind-mounts its *parent* directory as a slave (`rslave`) instead sees every
 * later mount and unmount under it, so it follows the daemon across
 * restarts. `ensureSharedParent` makes the parent a shared mount for that.
 *
 * Takeover: the new daemon mounts at a private staging directory, moves that
 * mount underneath the running one (MOVE_MOUNT_BENEATH), and detaches the
 * old top. Path lookups always find a live mount, in this namespace and in
 * every slave, so readers never see a gap. The old daemon sees its mount
 * gone and drains and exits on its own.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MintfsError, describeError } from '../errors.js';
import {
  detachMount,
  mountById,
  readMountTable,
  topMountAt,
  type MountEntry,
} from './mount-table.js';

const run = promisify(execFile);

/** Where a daemon mounts before moving its mount into place: a private mount, so nothing propagates from it. */
export const STAGING_DIR = '/run/mintfs-staging';

const MOVE_BENEATH_HELPER = fileURLToPath(
  new URL('../../native/mintfs-move-beneath', import.meta.url),
);

/**
 * Makes the mountpoint's parent directory a shared mount (a recursive bind of
 * itself if it is not a mount: recursive, so mounts already below it stay
 * visible). Meant for a directory dedicated to one agent, such as
 * /run/mintfs/agent1; the root directory is refused.
 */
export async function ensureSharedParent(mountpoint: string): Promise<string> {
  checkSharedParent(mountpoint);
  const parent = dirname(mountpoint);
  if (!topMountAt(parent)) await mountCommand(['--rbind', parent, parent], parent);
  if (!topMountAt(parent)?.shared) await mountCommand(['--make-shared', parent], parent);
  return parent;
}

/** Refuses a mountpoint whose parent must not become a shared bind mount (checked before mounting). */
export function checkSharedParent(mountpoint: string): void {
  if (dirname(resolve(mountpoint)) === '/')
    throw new MintfsError(
      'ERR_MOUNTPOINT_INVALID',
      `--shared-parent: ${mountpoint} is directly under /; use a directory per agent, such as /run/mintfs/agent1/secrets`,
    );
}

/**
 * The staging directory, as a private mount of its own. Set up under a lock
 * (flock(1), released by the kernel if we die): two daemons starting at once
 * would otherwise each see no mount and stack two binds, and the second
 * hides the stage the first is about to mount on.
 */
export async function ensurePrivateStaging(dir = STAGING_DIR): Promise<string> {
  if (isPrivateMount(dir)) return dir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    await run('flock', [
      `${dir}.lock`,
      'sh',
      '-c',
      'set -e; mountpoint -q "$1" || mount --bind "$1" "$1"; mount --make-private "$1"',
      'sh',
      dir,
    ]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new MintfsError(
      'ERR_MOUNT_FAILED',
      `making ${dir} a private mount: ${stderr || describeError(err)}`,
      { cause: err },
    );
  }
  return dir;
}

function isPrivateMount(dir: string): boolean {
  const top = topMountAt(dir);
  return top !== undefined && !top.shared && !top.slave;
}

/** Moves the mount at `source` underneath the top mount at `target`. */
export async function moveMountBeneath(source: string, target: string): Promise<void> {
  try {
    accessSync(MOVE_BENEATH_HELPER, constants.X_OK);
  } catch {
    throw new MintfsError(
      'ERR_MOUNT_FAILED',
      `takeover needs ${MOVE_BENEATH_HELPER}; build it with npm run build (needs a C compiler)`,
    );
  }
  try {
    await run(MOVE_BENEATH_HELPER, [source, target]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new MintfsError('ERR_MOUNT_FAILED', stderr || describeError(err), { cause: err });
  }
}

export type DetachOutcome = 'detached' | 'already-gone' | 'covered';

/**
 * Lazily detaches mount `id` wherever it now is. A mount that is gone was
 * taken over; one with another mount on top is left alone, since detaching
 * by path would remove the one on top. There is no form without the device:
 * a bare id, once its mount is gone, names whatever mount gets it next.
 */
export async function detachMountById(
  id: number,
  device: string,
  connectionAlive: () => boolean | undefined = () => undefined,
): Promise<DetachOutcome> {
  const table = readMountTable();
  const entry = mountById(id, table);
  // Mount ids are reused: once ours is gone, the next mount anywhere may get
  // its id, and its device number too (both come from small pools: seen in a
  // test, a tmpfs took both; seen in CI, another daemon's FUSE mount took
  // both). Ours is a mintfs mount with that id and device whose FUSE
  // connection is still the one we mounted (see openFuseConnection).
  const ours = (now: MountEntry) => isOurs(now, device) && connectionAlive() !== false;
  if (!entry || !ours(entry)) return 'already-gone';
  if (topMountAt(entry.mountpoint, table)?.id !== id) return 'covered';
  try {
    await detachMount(entry.mountpoint);
  } catch (err) {
    // Someone else (an admin's fusermount -u -z, a takeover) detached it
    // between our look and our umount: fusermount3 then fails with EINVAL,
    // and the table may show the mount for a moment longer.
    const gone = await pollFor(DETACH_SETTLE_MS, () => {
      const now = mountById(id);
      return !now || !ours(now);
    });
    if (gone) return 'already-gone';
    throw err;
  }
  return 'detached';
}

/** How long a detach that failed waits for someone else's detach to show in the table. */
const DETACH_SETTLE_MS = 1_000;

async function pollFor(ms: number, done: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function isOurs(entry: MountEntry, device: string): boolean {
  return entry.device === device && entry.fstype === 'fuse.mintfs';
}

/** Runs mount(8) with these arguments (no shell); a failure names what it was for. */
export async function mountCommand(args: string[], path: string): Promise<void> {
  try {
    await run('mount', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new MintfsError(
      'ERR_MOUNT_FAILED',
      `mount ${args.join(' ')} (for ${path}): ${stderr || describeError(err)}`,
      { cause: err },
    );
  }
}
