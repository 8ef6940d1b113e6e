/**
 * What is mounted where, read from /proc/self/mountinfo, and recovery of a
 * mount whose daemon died (every access then fails with ENOTCONN).
 */
import { execFile } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  readdirSync,
  writeSync,
} from 'node:fs';
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

/** A handle on one FUSE connection, taken while the connection is surely ours. */
export interface FuseConnection {
  /**
   * Aborts the connection (fusectl): every request in flight and every later
   * one fails with ENOTCONN, and the daemon's loop ends. For a mount that can
   * no longer be unmounted (a reader's cwd holds it after a lazy detach), this
   * is the only way to end it. Does nothing once the connection is gone.
   * Safe to call twice.
   */
  abort(): void;
  /**
   * Whether the connection still exists: false once its superblock has gone
   * (detached with nothing holding it), whatever mount now has its device
   * number; undefined where fusectl could not be opened.
   */
  alive(): boolean | undefined;
  /** Lets go of the handle (after abort or stop). Safe to call twice. */
  release(): void;
}

/**
 * Opens the fusectl directory and abort file of the connection behind
 * `device` (a mount's `major:minor`), mounting fusectl when it is not. Call it
 * right after mounting, while the mount holds the connection.
 *
 * Why files held open, not paths used later: when the last reference to a
 * detached mount goes, its minor number is free, and the next FUSE mount on
 * the host (another daemon's, a test's) may get it, and its mount id too.
 * Writing to connections/<minor>/abort then would kill that stranger's
 * connection (seen: `mintfs run`'s fresh mount answering ENOTCONN), and a
 * stop that matched the mount table by id and device would detach it (seen
 * in CI). Files opened while the connection was ours stay bound to it: when
 * it goes, fusectl removes its directory (the held one's link count drops to
 * 0) and forgets it (a write to the held abort file then reaches nothing).
 */
export async function openFuseConnection(device: string): Promise<FuseConnection> {
  const minor = device.split(':')[1];
  let abortFd: number | undefined;
  let dirFd: number | undefined;
  if (minor !== undefined && /^\d+$/.test(minor)) {
    if (!existsSync(join(FUSECTL, minor)))
      await run('mount', ['-t', 'fusectl', 'fusectl', FUSECTL]).catch(() => undefined);
    try {
      dirFd = openSync(join(FUSECTL, minor), 'r');
      abortFd = openSync(join(FUSECTL, minor, 'abort'), 'w');
    } catch {
      // No fusectl here: nothing can be aborted, and nothing foreign either.
    }
  }
  const closeQuietly = (fd: number | undefined) => {
    if (fd !== undefined) closeSync(fd);
  };
  return {
    abort: () => {
      if (abortFd === undefined) return;
      try {
        writeSync(abortFd, '1');
      } catch {
        // The connection has gone (ENOTCONN): nothing left to abort.
      }
    },
    alive: () => (dirFd === undefined ? undefined : fstatSync(dirFd).nlink > 0),
    release: () => {
      closeQuietly(abortFd);
      closeQuietly(dirFd);
      abortFd = undefined;
      dirFd = undefined;
    },
  };
}
