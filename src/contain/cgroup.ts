/**
 * A cgroup for one `mintfs run`: memory, pids and cpu limits on everything
 * the sandbox starts, and a way to find and kill every one of its processes
 * (bubblewrap has no cgroup support of its own). Works on the unified
 * hierarchy (cgroup v2) and on v1's memory, pids and cpu controllers.
 */
import { existsSync, readFileSync, rmdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MintfsError, describeError } from '../errors.js';

const ROOT = '/sys/fs/cgroup';

export interface RunLimits {
  /** Bytes of memory for the whole sandbox (swap included where the kernel counts it). */
  readonly memoryBytes: number;
  /** Processes and threads at once. */
  readonly pids: number;
  /** CPUs' worth of time (1.5 = one and a half), or undefined for no limit. */
  readonly cpus?: number | undefined;
}

export interface RunCgroup {
  /** The cgroup.procs files a process joins by writing its pid to each. */
  readonly procsFiles: readonly string[];
  /** Every pid in the cgroup now. */
  pids(): number[];
  /** Sends a signal to every process in it; returns how many it reached. */
  signalAll(signal: NodeJS.Signals): number;
  /** Kills what is left and removes the cgroup. */
  remove(): Promise<void>;
}

type Layout =
  { kind: 'v2'; dir: string } | { kind: 'v1'; dirs: Record<'memory' | 'pids' | 'cpu', string> };

export function createRunCgroup(name: string, limits: RunLimits): RunCgroup {
  const layout = layoutFor(name);
  try {
    if (layout.kind === 'v2') {
      mkdirSync(layout.dir);
      write(join(layout.dir, 'memory.max'), String(limits.memoryBytes));
      write(join(layout.dir, 'memory.swap.max'), '0', true);
      write(join(layout.dir, 'pids.max'), String(limits.pids));
      if (limits.cpus !== undefined)
        write(join(layout.dir, 'cpu.max'), `${Math.round(limits.cpus * 100_000)} 100000`);
    } else {
      for (const dir of Object.values(layout.dirs)) mkdirSync(dir);
      write(join(layout.dirs.memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      write(
        join(layout.dirs.memory, 'memory.memsw.limit_in_bytes'),
        String(limits.memoryBytes),
        true,
      );
      write(join(layout.dirs.pids, 'pids.max'), String(limits.pids));
      if (limits.cpus !== undefined) {
        write(join(layout.dirs.cpu, 'cpu.cfs_period_us'), '100000');
        write(join(layout.dirs.cpu, 'cpu.cfs_quota_us'), String(Math.round(limits.cpus * 100_000)));
      }
    }
  } catch (err) {
    removeDirs(layout);
    throw new MintfsError(
      'ERR_SANDBOX_FAILED',
      `cannot set up the run's cgroup: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
  return cgroupOf(layout);
}

/**
 * The cgroup a runtime made for a container (runc and runsc name it after
 * the container), to kill and remove what a runtime that was itself killed
 * left there: a gVisor sandbox stuck starting on a platform that cannot run.
 * On cgroup v1, only the controllers that exist for it.
 */
export function containerCgroup(name: string): RunCgroup {
  return cgroupOf(layoutFor(name));
}

function cgroupOf(layout: Layout): RunCgroup {
  const procsFiles =
    layout.kind === 'v2'
      ? [join(layout.dir, 'cgroup.procs')]
      : Object.values(layout.dirs).map((dir) => join(dir, 'cgroup.procs'));
  // The pids controller (v1) or the one cgroup (v2) sees every process.
  const listFile =
    layout.kind === 'v2'
      ? join(layout.dir, 'cgroup.procs')
      : join(layout.dirs.pids, 'cgroup.procs');
  const pids = (): number[] => {
    try {
      return readFileSync(listFile, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const signalAll = (signal: NodeJS.Signals): number => {
    let reached = 0;
    for (const pid of pids()) {
      try {
        process.kill(pid, signal);
        reached++;
      } catch {
        // Exited between the listing and the signal.
      }
    }
    return reached;
  };
  return {
    procsFiles,
    pids,
    signalAll,
    remove: async () => {
      // Nothing the sandbox started may outlive the run.
      for (let round = 0; round < 200 && pids().length > 0; round++) {
        signalAll('SIGKILL');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // A killed process leaves its cgroup once reaped: rmdir waits on that (bounded).
      for (let round = 0; round < 200 && !removeDirs(layout); round++)
        await new Promise((resolve) => setTimeout(resolve, 10));
    },
  };
}

function layoutFor(name: string): Layout {
  if (existsSync(join(ROOT, 'cgroup.controllers'))) return { kind: 'v2', dir: join(ROOT, name) };
  const dirs = {
    memory: join(ROOT, 'memory', name),
    pids: join(ROOT, 'pids', name),
    cpu: join(ROOT, 'cpu', name),
  };
  for (const controller of ['memory', 'pids', 'cpu'])
    if (!existsSync(join(ROOT, controller, 'cgroup.procs')))
      throw new MintfsError(
        'ERR_SANDBOX_FAILED',
        `mintfs run needs cgroup v2, or cgroup v1's ${controller} controller at ${join(ROOT, controller)}`,
      );
  return { kind: 'v1', dirs };
}

function write(file: string, value: string, optional = false): void {
  try {
    writeFileSync(file, value);
  } catch (err) {
    // Swap accounting is off on many kernels: its limit is best effort.
    if (!optional || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Removes the cgroup's directories; whether none is left (busy ones stay). */
function removeDirs(layout: Layout): boolean {
  const dirs = layout.kind === 'v2' ? [layout.dir] : Object.values(layout.dirs);
  let gone = true;
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch (err) {
      // Not created, or already gone, is done; busy (a process not yet reaped) is not.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') gone = false;
    }
  }
  return gone;
}
