/**
 * What is mounted where, read from /proc/self/mountinfo, and recovery of a
 * mount whose daemon died (every access then fails with ENOTCONN).
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type MountpointState = 'unmounted' | 'live' | 'stale';

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
  await run('fusermount3', ['-u', '-z', '--', mountpoint]);
}
