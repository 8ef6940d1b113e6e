/**
 * scripts/test.sh runs the suite once per supported Node.js version. A few
 * tests hold something other than mintfs's Node.js code to its promises: the
 * image (which carries its own Node.js 22, whatever runs the tests); runc,
 * Docker and gVisor isolating a run (the `mintfs run` code that drives them
 * is the same on every runtime, and runs on every pass through the
 * bubblewrap tests); the approvers' page as Chromium runs its script (the
 * gateway serving it and the approvals it posts to are approval.test.ts's,
 * on every pass); and the README's examples, which hold the text to the
 * commands (the commands themselves are the CLI tests', on every pass).
 * Those run on the first pass only; test.sh marks the others with
 * MINTFS_TEST_PASS=repeat. Anywhere else (`npm test`, one file run by hand)
 * every test runs.
 */
import { describe } from 'node:test';

const pass = process.env.MINTFS_TEST_PASS ?? 'first';
if (pass !== 'first' && pass !== 'repeat')
  throw new Error(`MINTFS_TEST_PASS: first or repeat, not ${pass}`);
export const FIRST_NODE_PASS = pass === 'first';

/** `describe`, on the first Node.js pass only (see above): not registered at all on the others, so never reported as skipped. */
export function describeOnFirstPass(name: string, fn: () => void): void {
  if (FIRST_NODE_PASS) describe(name, fn);
}
