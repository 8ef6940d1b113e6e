/**
 * test/fixtures/sandbox-probe.c, compiled static into a directory of the
 * test's own (bound at /work by `mintfs run --workdir`, so every runtime runs
 * the same binary, a busybox image included).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './paths.js';

export const PROBE_NAME = 'mintfs-sandbox-probe';

/** Compiles the probe into `dir` (made readable for the sandbox user); returns `dir`. */
export function buildSandboxProbe(dir: string): string {
  execFileSync(
    'cc',
    ['-O2', '-static', '-pthread', '-o', join(dir, PROBE_NAME), join(FIXTURES, 'sandbox-probe.c')],
    { stdio: 'pipe', timeout: 60_000 },
  );
  chmodSync(dir, 0o755);
  chmodSync(join(dir, PROBE_NAME), 0o755);
  return dir;
}
