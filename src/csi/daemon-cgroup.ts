/**
 * Where the volumes' mount daemons live: a cgroup outside the plugin
 * container's, so the container runtime's kill of the container (every
 * process of its cgroup) does not reach them. On cgroup v2 that is one
 * directory; on v1 a process is in one cgroup per hierarchy, and runtimes
 * find a container's processes through any of them, so the daemon is moved
 * in every hierarchy.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { MintfsError, describeError } from '../errors.js';

/**
 * The cgroup directories `dir` stands for: itself, when its parent is a
 * hierarchy (v2, or one v1 hierarchy); else the same name in every v1
 * hierarchy mounted beside each other in its parent (/sys/fs/cgroup/<h>/).
 * Made if missing.
 */
export function daemonCgroupDirs(dir: string): string[] {
  const parent = dirname(dir);
  const dirs = existsSync(join(parent, 'cgroup.procs'))
    ? [dir]
    : readdirSync(parent)
        .filter((entry) => {
          const path = join(parent, entry);
          // cpu,cpuacct and its cpu and cpuacct links name one hierarchy once.
          return !lstatSync(path).isSymbolicLink() && existsSync(join(path, 'cgroup.procs'));
        })
        .map((hierarchy) => join(parent, hierarchy, basename(dir)));
  if (dirs.length === 0)
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `--daemon-cgroup: ${parent} is neither a cgroup hierarchy nor a directory of them`,
    );
  for (const cgroup of dirs) {
    // In a cgroup hierarchy, making the directory makes the cgroup.
    mkdirSync(cgroup, { recursive: true });
    if (!existsSync(join(cgroup, 'cgroup.procs')))
      throw new MintfsError('ERR_INPUT_INVALID', `--daemon-cgroup: ${cgroup} is not a cgroup`);
    inheritCpuset(cgroup);
  }
  return dirs;
}

/**
 * v1's cpuset refuses processes (ENOSPC) into a cgroup whose cpus and mems
 * are empty, as a new one's are: give it its parent's.
 */
function inheritCpuset(cgroup: string): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    const path = join(cgroup, file);
    if (!existsSync(path) || readFileSync(path, 'utf8').trim() !== '') continue;
    writeFileSync(path, readFileSync(join(dirname(cgroup), file), 'utf8').trim());
  }
}

export function moveToCgroups(pid: number, dirs: readonly string[]): void {
  for (const dir of dirs)
    try {
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    } catch (err) {
      throw new MintfsError(
        'ERR_MOUNT_FAILED',
        `could not move the mount daemon into ${dir}: ${describeError(err)}`,
        { cause: err },
      );
    }
}
