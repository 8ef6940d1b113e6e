/**
 * The uid a `mintfs run` sandbox runs as: one no host process has, so nothing
 * on the host shares its identity (the former default, 65534, is the host's
 * `nobody`, and a host daemon running as nobody could read the run's tokens
 * and use its gateway socket).
 *
 * Allocated per run from a dedicated range above systemd's container ranges
 * (which end at 0x6FFFFFFF): RUN_UID_FIRST .. RUN_UID_FIRST + RUN_UID_COUNT - 1.
 * A claim file under RUN_DIR/uids makes concurrent runs pick different uids;
 * a claim whose owner process has gone is taken over.
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { MintfsError } from '../errors.js';
import { processAlive } from '../util/process-alive.js';

export const RUN_UID_FIRST = 0x7000_0000;
export const RUN_UID_COUNT = 0x1_0000;

export interface RunUid {
  readonly uid: number;
  readonly gid: number;
  release(): void;
}

/** A fresh uid (and the same gid) from the range, claimed until release(). */
export function allocateRunUid(runDir: string): RunUid {
  const claims = join(runDir, 'uids');
  mkdirSync(claims, { recursive: true, mode: 0o700 });
  const busy = uidsInUse();
  for (let attempt = 0; attempt < 64; attempt++) {
    const uid = RUN_UID_FIRST + randomInt(RUN_UID_COUNT);
    if (busy.has(uid)) continue;
    const claim = join(claims, String(uid));
    if (!tryClaim(claim)) continue;
    return { uid, gid: uid, release: () => rmSync(claim, { force: true }) };
  }
  throw new MintfsError(
    'ERR_SANDBOX_FAILED',
    `no free uid in ${RUN_UID_FIRST}..${RUN_UID_FIRST + RUN_UID_COUNT - 1}`,
  );
}

/** A pid of a host process running as `uid` (real, effective, saved or file-system uid), if any. */
export function processUsingUid(uid: number): number | undefined {
  for (const [pid, uids] of processUids()) if (uids.includes(uid)) return pid;
  return undefined;
}

function uidsInUse(): Set<number> {
  const used = new Set<number>();
  for (const [, uids] of processUids()) for (const uid of uids) used.add(uid);
  return used;
}

function* processUids(): Generator<[number, number[]]> {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${name}/status`, 'utf8');
    } catch {
      continue; // exited
    }
    const line = /^Uid:\s+(.*)$/m.exec(status)?.[1];
    if (line !== undefined) yield [Number(name), line.trim().split(/\s+/).map(Number)];
  }
}

function tryClaim(file: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Taken over only when the run that claimed it is gone.
      let owner = NaN;
      try {
        owner = Number(readFileSync(file, 'utf8'));
      } catch {
        return false;
      }
      if (processAlive(owner)) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}
