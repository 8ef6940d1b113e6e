#!/usr/bin/env node
// Runs the compiled tests with node's test runner: `unit`, `integration`,
// `conformance` (every backend held to the same behaviour), or all of them.
// Lists the files itself because Node 20 takes no globs on `node --test`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const suites = process.argv.slice(2);
const wanted = suites.length > 0 ? suites : ['unit', 'integration', 'conformance'];
const files = wanted.flatMap((suite) => findTests(join('dist', 'test', suite)));
if (files.length === 0) {
  console.error(`no compiled tests under dist/test/{${wanted.join(',')}}; run npm run build`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
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
