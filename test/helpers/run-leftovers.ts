/**
 * What a `mintfs run` may leave behind, for the runs one test made. Each run
 * names itself on its stderr (`run-prepared`, with `run: run-XXXXXX`), and its
 * directory, cgroup, container and bridge carry that name; runs other test
 * files make at the same moment are not this test's business.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { RUN_DIR } from '../../src/contain/run-sandbox.js';
import { mountedPaths } from '../../src/mounts/mount-table.js';

/** The runs `mintfs run` said it prepared, from its stderr (JSON log lines). */
export function runsIn(stderr: string): string[] {
  return stderr.split('\n').flatMap((line) => {
    if (!line.includes('"event":"run-prepared"')) return [];
    const run = (JSON.parse(line) as { run?: unknown }).run;
    return typeof run === 'string' && /^run-[A-Za-z0-9]+$/.test(run) ? [run] : [];
  });
}

/** The cgroups of runs (bubblewrap's; runc and Docker name their containers the same way). */
export function runCgroups(): string[] {
  const root = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? '/sys/fs/cgroup'
    : '/sys/fs/cgroup/pids';
  return readdirSync(root).filter((name) => name.startsWith('mintfs-run-'));
}

/** The run directories under RUN_DIR (beside them, `uids/` holds the uid claims). */
export function runDirEntries(): string[] {
  return existsSync(RUN_DIR) ? readdirSync(RUN_DIR).filter((name) => name.startsWith('run-')) : [];
}

/** Host processes bridging to a gateway socket in a run directory: `pid args`. */
export function bridges(): string[] {
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .flatMap((pid) => {
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return args[0]?.endsWith('socat') && args.some((a) => a.includes(RUN_DIR))
          ? [`${pid} ${args.join(' ')}`]
          : [];
      } catch {
        return [];
      }
    });
}

export interface RunLeftovers {
  readonly containers: string[];
  /** Cgroups named after a run (bubblewrap's, and the bridge's of runc and Docker). */
  readonly cgroups: string[];
  readonly runDirs: string[];
  readonly mounts: string[];
  readonly bridges: string[];
}

export const NOTHING_LEFT: RunLeftovers = {
  containers: [],
  cgroups: [],
  runDirs: [],
  mounts: [],
  bridges: [],
};

/**
 * What is left of `runs`: `containers` lists the runtime's containers (or
 * cgroups) by name, and those of these runs count.
 */
export function runLeftovers(
  runs: readonly string[],
  containers: () => string[] = runCgroups,
): RunLeftovers {
  const ours = (text: string) => runs.some((run) => text.includes(run));
  return {
    containers: containers().filter(ours),
    cgroups: runCgroups().filter(ours),
    runDirs: runDirEntries().filter(ours),
    mounts: mountedPaths().filter((path) => path.startsWith(RUN_DIR) && ours(path)),
    bridges: bridges().filter(ours),
  };
}
