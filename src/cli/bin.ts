#!/usr/bin/env node
/**
 * The `mintfs` executable (package.json "bin", bundled by
 * scripts/bundle-cli.mjs): turns on V8's compile cache in a directory only
 * this user can write (compile-cache.ts), then loads the command line.
 * Nothing else may be imported statically here: modules loaded before
 * enableCompileCache are compiled without the cache.
 */
// The module object: enableCompileCache is read as a property (Node 22.1+; absent before).
import nodeModule from 'node:module';
import { compileCacheDir } from './compile-cache.js';

// node:module gained enableCompileCache in 22.1; engines asks for 22.12, but
// an older node should still start (slowly) rather than fail here.
const enable = (nodeModule as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache;
if (enable !== undefined && process.env.NODE_DISABLE_COMPILE_CACHE === undefined) {
  const dir = compileCacheDir();
  if (dir !== undefined) enable(dir);
}
// inspect, verify and attenuate in their plain forms skip yargs (fast-path.ts).
// No top-level await: the bundle builds this file as CommonJS (scripts/bundle-cli.mjs).
void import('./fast-path.js').then(async ({ runFastPath }) => {
  if (!(await runFastPath(process.argv.slice(2)))) await import('./main.js');
});
