/**
 * Where the `mintfs` executable keeps V8's compile cache: start-up is mostly
 * compiling modules, and the one-shot commands (inspect, verify, attenuate)
 * run often from git credential helpers and agent scripts.
 *
 * A compile cache is code: whoever can write it decides what the next
 * `mintfs` runs. So it lives in the user's own cache directory
 * ($XDG_CACHE_HOME or ~/.cache, then mintfs/v8), created 0700, and is used
 * only when that directory and every one above it pass the same ownership
 * check as keyrings and profiles (trusted-path.ts). Never Node's default,
 * which is a shared directory under /tmp. Anything unusual (no home, a
 * read-only home, a home owned by someone else as under `sudo -E`) means no
 * cache, never an error: start-up is then slower, nothing else changes.
 */
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { untrustedPathProblem } from '../util/trusted-path.js';

export function compileCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  home: () => string = homedir,
): string | undefined {
  let base = env.XDG_CACHE_HOME;
  if (base === undefined || !isAbsolute(base)) {
    let dir: string;
    try {
      dir = home();
    } catch {
      return undefined;
    }
    if (!isAbsolute(dir)) return undefined;
    base = join(dir, '.cache');
  }
  const dir = join(base, 'mintfs', 'v8');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return undefined;
  }
  return untrustedPathProblem(dir) === undefined ? dir : undefined;
}
