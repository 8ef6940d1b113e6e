/**
 * A run's stage: a small tmpfs of its own, mounted in the run directory,
 * from which every file of the run a sandbox gets is bound (the private
 * gateway's socket, the CA certificate, mintfs-run-init, the link farm of a
 * followed mount). A bind shows in the sandbox's /proc/self/mountinfo as
 * its path inside the file system it comes from: from the stage that is
 * `/gateway.sock`, where a bind from the run directory showed
 * `/run/mintfs-run/run-XXXXXX/gateway.sock` and one of the installed
 * mintfs-run-init showed where mintfs is installed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { MintfsError } from '../errors.js';
import { HOST_TOOLS_ENV } from './gateway-bridge.js';

/** Room for mintfs-run-init (about 1 MB), a certificate, a socket and a few links. */
const STAGE_OPTIONS = 'mode=0755,size=8m,nr_inodes=4096,nosuid,nodev';

export interface RunStage {
  readonly dir: string;
  /** The path of `name` on the stage. */
  path(name: string): string;
  /** Copies a file onto the stage with `mode`; returns its stage path. */
  copy(source: string, name: string, mode: number): string;
  /** Unmounts the stage and removes its mount point. */
  remove(): void;
}

/** Mounts the stage at `dir` (made here); the caller registers remove() at once. */
export function mountRunStage(dir: string): RunStage {
  mkdirSync(dir, { mode: 0o755 });
  const mounted = tool('mount', ['-t', 'tmpfs', '-o', STAGE_OPTIONS, 'tmpfs', dir]);
  if (mounted !== '') {
    rmdirSync(dir);
    throw new MintfsError('ERR_SANDBOX_FAILED', `cannot mount the run's stage: ${mounted}`);
  }
  return {
    dir,
    path: (name) => join(dir, name),
    copy: (source, name, mode) => {
      const target = join(dir, name);
      copyFileSync(source, target);
      chmodSync(target, mode);
      return target;
    },
    remove: () => {
      // A sandbox's runtime that still holds a bind of it (it should not by
      // now) keeps the tmpfs alive: then detach it; it goes with the last user.
      if (tool('umount', [dir]) !== '') {
        const lazy = tool('umount', ['--lazy', dir]);
        if (lazy !== '')
          throw new MintfsError('ERR_SANDBOX_FAILED', `cannot unmount the run's stage: ${lazy}`);
      }
      rmdirSync(dir);
    },
  };
}

/** Runs a host tool; '' when it succeeded, else what it said. */
function tool(command: string, args: string[]): string {
  const result = spawnSync(command, args, {
    env: HOST_TOOLS_ENV,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 10_000,
  });
  if (result.status === 0) return '';
  return (
    result.stderr?.trim().split('\n').at(-1) ||
    result.error?.message ||
    `${command} exited ${result.status ?? result.signal}`
  );
}
