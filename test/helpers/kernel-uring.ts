/**
 * Holds the fuse module's enable_uring parameter at a value for a while and
 * restores it after, for the tests and the bench that need FUSE over io_uring
 * on (or off). The parameter is host-wide and two test files run at once, so
 * holds are shared: holders of one value coexist, a holder of the other value
 * waits for them to finish (polled), and the value found before the first
 * hold is restored when the last one ends. The record lives in /run (root's,
 * outside the tests' TMPDIR); holders whose process died are ignored, so a
 * crashed run cannot pin the parameter. Synchronous (the bench is), waiting
 * with Atomics.wait between polls.
 *
 * Product code never flips this parameter: the operator does (docs/fuse-transport.md).
 */
import {
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { ENABLE_URING_PARAMETER } from '../../src/fuse/transport.js';
import { processAlive } from '../../src/util/process-alive.js';

const STATE = '/run/mintfs-tests-enable-uring';
const LOCK = `${STATE}.lock`;
const ORIGINAL = join(STATE, 'original');
/** A lock older than this was left by a process that died holding it. */
const STALE_LOCK_MS = 10_000;

export type UringParameter = 'Y' | 'N';

export interface UringHold {
  readonly value: UringParameter;
  /** Ends this hold; the last one restores the parameter. Safe to call twice. */
  release(): void;
}

let sequence = 0;

/** Holds enable_uring at `value`, waiting (polled, up to `timeoutMs`) for holders of the other. */
export function holdKernelUring(value: UringParameter, timeoutMs = 180_000): UringHold {
  try {
    statSync(ENABLE_URING_PARAMETER);
  } catch {
    throw new Error(
      `${ENABLE_URING_PARAMETER} is missing: FUSE over io_uring needs Linux 6.14+ with the fuse module loaded`,
    );
  }
  const name = `${process.pid}-${++sequence}-${value}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const taken = locked(() => {
      const holders = liveHolders();
      if (holders.some((h) => !h.endsWith(`-${value}`))) return false;
      if (holders.length === 0) {
        // The first hold records what to restore (a crashed run's record stays the truth).
        if (!exists(ORIGINAL)) writeFileSync(ORIGINAL, readParameter());
      }
      writeFileSync(join(STATE, name), '');
      writeFileSync(ENABLE_URING_PARAMETER, value);
      return true;
    });
    if (taken) break;
    if (Date.now() > deadline)
      throw new Error(`enable_uring: other holders kept it from ${value} for ${timeoutMs} ms`);
    sleep(100);
  }
  let released = false;
  return {
    value,
    release: () => {
      if (released) return;
      released = true;
      locked(() => {
        rmSync(join(STATE, name), { force: true });
        if (liveHolders().length === 0 && exists(ORIGINAL)) {
          writeFileSync(ENABLE_URING_PARAMETER, readFileSync(ORIGINAL, 'utf8').trim());
          rmSync(ORIGINAL);
        }
      });
    },
  };
}

export function readParameter(): UringParameter {
  return readFileSync(ENABLE_URING_PARAMETER, 'utf8').trim() === 'Y' ? 'Y' : 'N';
}

/** Holder names (`pid-n-value`) of processes still alive; the dead ones' files are removed. */
function liveHolders(): string[] {
  mkdirSync(STATE, { recursive: true, mode: 0o700 });
  return readdirSync(STATE).filter((entry) => {
    const match = /^(\d+)-\d+-[YN]$/.exec(entry);
    if (match === null) return false;
    if (processAlive(Number(match[1]))) return true;
    rmSync(join(STATE, entry), { force: true });
    return false;
  });
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs `work` holding a mkdir lock (atomic on one host); a stale lock is broken. */
function locked<T>(work: () => T): T {
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmdirSync(LOCK);
      } catch {
        // Released meanwhile: try again.
      }
      sleep(10);
    }
  }
  try {
    return work();
  } finally {
    rmdirSync(LOCK);
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
