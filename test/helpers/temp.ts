import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, type TestContext } from 'node:test';

/** Cleanups that run last-registered-first (unmount before deleting the mountpoint). */
export interface Teardown {
  add(fn: () => unknown): void;
}

/**
 * Every cleanup runs even when one before it throws (a directory still busy
 * must not leave a daemon running behind it); the failures are thrown
 * together at the end, so the test still fails and says why.
 */
function stack(register: (run: () => Promise<void>) => void): Teardown {
  const fns: Array<() => unknown> = [];
  register(async () => {
    const failures: unknown[] = [];
    for (const fn of fns.reverse())
      try {
        await fn();
      } catch (err) {
        failures.push(err);
      }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, 'several cleanups failed');
  });
  return { add: (fn) => fns.push(fn) };
}

const perTest = new WeakMap<TestContext, Teardown>();

/** Cleanups for one test; they run when it ends, pass or fail. */
export function teardownOf(t: TestContext): Teardown {
  let teardown = perTest.get(t);
  if (!teardown) {
    teardown = stack((run) => t.after(run));
    perTest.set(t, teardown);
  }
  return teardown;
}

/** Cleanups for the enclosing describe(); call it in the describe body. */
export function suiteTeardown(): Teardown {
  return stack((run) => after(run));
}

/** A temporary directory removed at teardown. */
export function tempDir(owner: TestContext | Teardown, prefix = 'mintfs-test-'): string {
  const teardown = 'add' in owner ? owner : teardownOf(owner);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  teardown.add(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
