/**
 * What is mounted where, read from /proc/self/mountinfo, and recovery of a
 * mount whose daemon died (every access then fails with ENOTCONN).
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MintfsError } from '../errors.js';

const run = promisify(execFile);

export type MountpointState = 'unmounted' | 'live' | 'stale';

export interface MountEntry {
  readonly id: number;
  readonly parentId: number;
  /** The file system's device, `major:minor`: a FUSE mount's connection is /sys/fs/fuse/connections/<minor>. */
  readonly device: string;
  readonly mountpoint: string;
  readonly fstype: string;
  /** Propagation: `shared:N` (peer group) and `master:N` (slave of) optional fields. */
  readonly shared: boolean;
  readonly slave: boolean;
}

/** Every mount in the namespace, in mountinfo order (which is not stacking order). */
export function readMountTable(
  mountinfo = readFileSync('/proc/self/mountinfo', 'utf8'),
): MountEntry[] {
  return mountinfo
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const fields = line.split(' ');
      const separator = fields.indexOf('-');
      const optional = fields.slice(6, separator);
      return {
        id: Number(fields[0]),
        parentId: Number(fields[1]),
        device: fields[2] ?? '',
        mountpoint: unescapeMountinfo(fields[4] ?? ''),
        fstype: fields[separator + 1] ?? '',
        shared: optional.some((field) => field.startsWith('shared:')),
        slave: optional.some((field) => field.startsWith('master:')),
      };
    });
}

/**
 * The mount path lookups reach at `path`, if something is mounted exactly
 * there: of the mounts stacked on that path, the one no other is mounted on.
 * (A mount moved beneath another is listed after it, so list order says nothing.)
 */
export function topMountAt(path: string, table = readMountTable()): MountEntry | undefined {
  const stacked = table.filter((entry) => entry.mountpoint === path);
  return stacked.find((entry) => !stacked.some((other) => other.parentId === entry.id));
}

export function mountById(id: number, table = readMountTable()): MountEntry | undefined {
  return table.find((entry) => entry.id === id);
}

/** Mount points in /proc/self/mountinfo, with its octal escapes (\040 for space) undone. */
export function mountedPaths(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  return mountinfo
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => unescapeMountinfo(line.split(' ')[4] ?? ''));
}

function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

export function mountpointState(mountpoint: string): MountpointState {
  if (!mountedPaths().includes(mountpoint)) return 'unmounted';
  try {
    // readdir has to reach the daemon; stat of the root may come from the kernel's cache.
    readdirSync(mountpoint);
    return 'live';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOTCONN' ? 'stale' : 'live';
  }
}

/** Lazily detaches whatever is mounted at `mountpoint`. No shell is involved. */
export async function detachMount(mountpoint: string): Promise<void> {
  try {
    await run('fusermount3', ['-u', '-z', '--', mountpoint]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new MintfsError('ERR_MOUNT_FAILED', stderr || `fusermount3 -u -z ${mountpoint} failed`, {
      cause: err,
    });
  }
}

const FUSECTL = '/sys/fs/fuse/connections';

/** A handle on one FUSE connection's abort switch, taken while the connection is surely ours. */
export interface FuseAbortHandle {
  /**
   * Aborts the connection (fusectl): every request in flight and every later
   * one fails with ENOTCONN, and the daemon's loop ends. For a mount that can
   * no longer be unmounted (a reader's cwd holds it after a lazy detach), this
   * is the only way to end it. Does nothing once the connection is gone.
   * Closes the handle; safe to call twice.
   */
  abort(): void;
}

/**
 * Opens the abort file of the connection behind `device` (a mount's
 * `major:minor`), mounting fusectl when it is not. Call it right after
 * mounting, while the mount holds the connection.
 *
 * Why a file held open, not a path written later: when the last reference to
 * a detached mount goes, its minor number is free, and the next FUSE mount on
 * the host (another daemon's, a test's) may get it. Writing to
 * connections/<minor>/abort then would kill that stranger's connection
 * (seen: `mintfs run`'s fresh mount answering ENOTCONN). A file opened while
 * the connection was ours stays bound to it: fusectl forgets the connection
 * when it goes, and a write then fails instead of reaching the new one.
 */
export async function openFuseAbort(device: string): Promise<FuseAbortHandle> {
  const minor = device.split(':')[1];
  let fd: number | undefined;
  if (minor !== undefined && /^\d+$/.test(minor)) {
    if (!existsSync(join(FUSECTL, minor)))
      await run('mount', ['-t', 'fusectl', 'fusectl', FUSECTL]).catch(() => undefined);
    try {
      fd = openSync(join(FUSECTL, minor, 'abort'), 'w');
    } catch {
      // No fusectl here: nothing can be aborted, and nothing foreign either.
    }
  }
  return {
    abort: () => {
      if (fd === undefined) return;
      const held = fd;
      fd = undefined;
      try {
        writeSync(held, '1');
      } catch {
        // The connection has gone (ENOTCONN): nothing left to abort.
      } finally {
        closeSync(held);
      }
    },
  };
}
