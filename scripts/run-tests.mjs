#!/usr/bin/env node
// Runs the compiled tests with node's test runner: `unit`, `integration`,
// `conformance` (every backend held to the same behaviour), or all of them.
// Lists the files itself because Node 20 takes no globs on `node --test`.
//
// The tests run with TMPDIR set to a directory of their own, which must be
// empty when they finish: a test that leaves a temp file behind (tokens, keys,
// sockets) fails the run, naming what it left.
//
// Two files run at a time (MINTFS_TEST_CONCURRENCY to change it): most of a
// file's time is spent waiting on processes it started, so on two cores this
// takes a third less time than one file at a time; and it makes the suite
// run several daemons, gateways and sandboxes on one host at once, as
// production does (it found mount daemons breaking each other's start).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const suites = process.argv.slice(2);
const wanted = suites.length > 0 ? suites : ['unit', 'integration', 'conformance'];
const files = wanted.flatMap((suite) => findTests(join('dist', 'test', suite)));
if (files.length === 0) {
  console.error(`no compiled tests under dist/test/{${wanted.join(',')}}; run npm run build`);
  process.exit(1);
}
const concurrency = process.env.MINTFS_TEST_CONCURRENCY ?? '2';
if (!/^[1-9][0-9]*$/.test(concurrency)) {
  console.error(`MINTFS_TEST_CONCURRENCY: a whole number of files at a time, not ${concurrency}`);
  process.exit(2);
}
// A backstop, not a pace: no test and no file takes near this long (the
// longest file, CSI in a container, about a minute on a slow host), but one
// that hangs, or finishes yet leaves its process running (a FUSE thread left
// reading a connection did), fails here instead of using up CI's 90 minutes.
const TEST_TIMEOUT_MS = 10 * 60 * 1000;
const scratch = mkdtempSync(join(tmpdir(), 'mintfs-tests-'));
// As /tmp is: sandbox users and dropped-privilege helpers write here too.
chmodSync(scratch, 0o1777);
const result = spawnSync(
  process.execPath,
  [
    '--test',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${TEST_TIMEOUT_MS}`,
    '--test-reporter=spec',
    ...files,
  ],
  {
    stdio: 'inherit',
    env: { ...process.env, TMPDIR: scratch },
  },
);
const left = readdirSync(scratch);
rmSync(scratch, { recursive: true, force: true });
if (left.length > 0) {
  console.error(
    `the tests left ${left.length} entries in their temporary directory (each test must remove what it makes): ${left.slice(0, 20).join(', ')}`,
  );
  process.exit(1);
}
process.exit(result.status ?? 1);

function findTests(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return findTests(path);
    return entry.name.endsWith('.test.js') ? [path] : [];
  });
}
