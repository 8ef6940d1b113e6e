/**
 * Atomic file writes: a temporary file in the same directory, created
 * exclusively with the final mode, fsynced, renamed into place, and the
 * directory fsynced. A reader sees the old file or the whole new one, never
 * a half-written one; a crash leaves at most a `.tmp-*` file readers ignore.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const TEMP_PREFIX = '.tmp-';

export interface AtomicWriteOptions {
  readonly mode: number;
  /** Fail with EEXIST instead of replacing an existing file. */
  readonly exclusive?: boolean;
}

export function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions,
): void {
  const dir = dirname(path);
  const temp = join(dir, `${TEMP_PREFIX}${basename(path)}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(temp, 'wx', options.mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    // link() fails when the target exists, which rename() would silently replace.
    if (options.exclusive) linkSync(temp, path);
    else renameSync(temp, path);
  } finally {
    if (options.exclusive) unlinkSync(temp);
    else tryUnlink(temp);
  }
  syncDirectory(dir);
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already renamed into place.
  }
}

export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
