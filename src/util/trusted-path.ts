/**
 * Whether a file that configures mintfs could have been written by someone
 * other than root or the user mintfs runs as, the way ssh's StrictModes
 * judges authorized_keys. A keyring, profile, gateway config, credential or
 * CA key that another user can replace (itself, or by renaming an entry in a
 * directory on its path) is refused: a profile an agent can edit widens its
 * own scope on the next reload, and a keyring owned by another user signs
 * with that user's key.
 *
 * Trusted: every directory from / to the file, and the file, is owned by root
 * or by this process's user; none is writable by group or others, except a
 * directory with the sticky bit (such as /tmp), where others cannot rename or
 * delete entries they do not own. Symbolic links are followed, and both the
 * path as written and the path it resolves to are held to this.
 */
import { lstatSync, realpathSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { MintfsError } from '../errors.js';

const STICKY = 0o1000;

/** Why `path` is not trusted, or undefined. `what` names it in the message ("profile"). */
export function untrustedPathProblem(
  path: string,
  uid = process.geteuid?.() ?? 0,
): string | undefined {
  const absolute = resolve(path);
  let real: string;
  try {
    real = realpathSync(absolute);
  } catch {
    // Missing files are the reader's to report (with its own wording).
    return undefined;
  }
  return chainProblem(absolute, uid) ?? (real === absolute ? undefined : chainProblem(real, uid));
}

/** Throws ERR_PATH_UNSAFE naming the path when it is not trusted. */
export function assertTrustedPath(path: string, what: string): void {
  const problem = untrustedPathProblem(path);
  if (problem !== undefined)
    throw new MintfsError('ERR_PATH_UNSAFE', `${what} ${path}: ${problem}`);
}

function chainProblem(path: string, uid: number): string | undefined {
  let current = path;
  let isLeaf = true;
  for (;;) {
    let info: Stats;
    try {
      info = lstatSync(current);
    } catch {
      return undefined;
    }
    // A link in the written path: its owner could repoint it; the target chain is checked separately.
    if (info.uid !== 0 && info.uid !== uid)
      return `${describe(current, isLeaf)} is owned by uid ${info.uid}, not root or uid ${uid}`;
    const writable = (info.mode & 0o022) !== 0;
    if (writable && !info.isSymbolicLink()) {
      const sticky = info.isDirectory() && (info.mode & STICKY) !== 0;
      if (isLeaf || !sticky)
        return `${describe(current, isLeaf)} is writable by ${writers(info.mode)} (mode ${(info.mode & 0o7777).toString(8)})`;
    }
    const parent = dirname(current);
    if (parent === current) return undefined;
    current = parent;
    isLeaf = false;
  }
}

function writers(mode: number): string {
  const group = (mode & 0o020) !== 0;
  const others = (mode & 0o002) !== 0;
  return group && others ? 'group and others' : group ? 'group' : 'others';
}

function describe(path: string, isLeaf: boolean): string {
  return isLeaf ? 'it' : `directory ${path}`;
}
