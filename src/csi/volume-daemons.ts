/**
 * One `mintfs mount` process per published volume, started by the plugin
 * but not part of it: each runs in its own session (and, with
 * `daemonCgroup`, its own cgroup, outside the plugin container's), so
 * killing or upgrading the plugin leaves every pod's mount served. The
 * plugin remembers each volume in a record under the state directory (a
 * hostPath, so a restarted plugin finds them): the daemon's pid and start
 * time (so a recycled pid is never signalled), the target and the pod.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  rmdirSync,
} from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { MintfsError, describeError } from '../errors.js';
import { writeFileAtomic } from '../keys/atomic-write.js';
import type { Logger } from '../log/logger.js';
import { moveToCgroups } from './daemon-cgroup.js';
import { detachMount, mountpointState, topMountAt } from '../mounts/mount-table.js';

export interface DaemonOptions {
  /** The command that runs mintfs: [node, script] (the plugin's own). */
  readonly mintfs: readonly string[];
  readonly keysDir: string;
  readonly stateDir: string;
  /** Cgroup directories each daemon is moved to, outside the plugin's container (daemon-cgroup.ts). */
  readonly daemonCgroups: readonly string[];
  readonly logger: Logger;
  /** How long a daemon may take to mount (ms). */
  readonly startTimeoutMs?: number;
  /** How long a daemon may take to drain and exit after SIGTERM (ms). */
  readonly stopTimeoutMs?: number;
}

export const VolumeRecordSchema = z.strictObject({
  volumeId: z.string(),
  targetPath: z.string(),
  pid: z.number().int().positive(),
  /** /proc/PID/stat start time: the pid names this daemon only while it matches. */
  start: z.string(),
  profile: z.string(),
  agent: z.string(),
  pod: z.strictObject({
    uid: z.string(),
    name: z.string(),
    namespace: z.string(),
    serviceAccount: z.string(),
  }),
});
export type VolumeRecord = z.infer<typeof VolumeRecordSchema>;

const MOUNTED_FSTYPE = 'fuse.mintfs';

export class VolumeDaemons {
  readonly #options: DaemonOptions;
  readonly #dir: string;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#dir = join(options.stateDir, 'volumes');
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
  }

  /** Every recorded volume (a record that does not parse is logged and skipped). */
  records(): VolumeRecord[] {
    const out: VolumeRecord[] = [];
    for (const name of readdirSync(this.#dir)) {
      if (!name.endsWith('.json')) continue;
      const record = this.#read(name.slice(0, -'.json'.length));
      if (record) out.push(record);
    }
    return out;
  }

  record(volumeId: string): VolumeRecord | undefined {
    return this.#read(volumeId);
  }

  /** Whether the recorded daemon still runs and its mount is live at the target. */
  serving(record: VolumeRecord): boolean {
    return (
      isSameProcess(record.pid, record.start) &&
      topMountAt(record.targetPath)?.fstype === MOUNTED_FSTYPE &&
      mountpointState(record.targetPath) === 'live'
    );
  }

  /**
   * Starts a daemon serving `profileText` at the target and resolves once
   * its mount is there. On any failure nothing is left: no daemon, no
   * mount, no record.
   */
  async start(
    volume: Omit<VolumeRecord, 'pid' | 'start'>,
    profileText: string,
  ): Promise<VolumeRecord> {
    const { logger } = this.#options;
    const profileFile = this.#path(volume.volumeId, 'profile.yaml');
    const logFile = this.#path(volume.volumeId, 'log');
    writeFileAtomic(profileFile, profileText, { mode: 0o600 });
    const log = openSync(logFile, 'w', 0o600);
    const [command, ...prefix] = this.#options.mintfs;
    let child;
    try {
      child = spawn(
        command as string,
        [
          ...prefix,
          'mount',
          profileFile,
          volume.targetPath,
          '--keys',
          this.#options.keysDir,
          '--backend',
          'native',
        ],
        {
          // Its own session: a signal to the plugin's process group is not its.
          detached: true,
          stdio: ['ignore', log, log],
          env: { ...process.env, MINTFS_LOG_FORMAT: 'json' },
        },
      );
    } finally {
      closeSync(log);
    }
    child.unref();
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.once('error', () => undefined);
    const pid = child.pid;
    const start = pid === undefined ? undefined : processStart(pid);
    if (pid === undefined || start === undefined) {
      this.#forget(volume.volumeId);
      throw new MintfsError(
        'ERR_MOUNT_FAILED',
        `could not start the mount daemon for ${volume.volumeId}`,
      );
    }
    const record: VolumeRecord = { ...volume, pid, start };
    try {
      moveToCgroups(pid, this.#options.daemonCgroups);
      // Recorded before it mounts: a plugin killed now still finds it at unpublish.
      writeFileAtomic(this.#path(volume.volumeId, 'json'), JSON.stringify(record), { mode: 0o600 });
      await this.#waitMounted(record, exited, logFile);
    } catch (err) {
      await this.stop(record).catch((stopErr: unknown) =>
        logger.warn(
          {
            event: 'volume-cleanup-failed',
            volumeId: volume.volumeId,
            detail: describeError(stopErr),
          },
          'could not clean up after a failed publish',
        ),
      );
      throw err;
    }
    return record;
  }

  /** Replaces a volume's profile (its daemon reloads it); false when it is unchanged. */
  updateProfile(volumeId: string, profileText: string): boolean {
    const file = this.#path(volumeId, 'profile.yaml');
    let current: string | undefined;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === profileText) return false;
    writeFileAtomic(file, profileText, { mode: 0o600 });
    return true;
  }

  /**
   * Stops the daemon (SIGTERM: it detaches, lets open reads finish and
   * exits; SIGKILL after stopTimeoutMs), detaches a mount it left, removes
   * the target directory and the record. Safe to repeat.
   */
  async stop(record: VolumeRecord): Promise<void> {
    const { logger } = this.#options;
    const timeout = this.#options.stopTimeoutMs ?? 20_000;
    if (isSameProcess(record.pid, record.start)) {
      signal(record.pid, 'SIGTERM');
      const deadline = Date.now() + timeout;
      while (isSameProcess(record.pid, record.start) && Date.now() < deadline) await delay(20);
      if (isSameProcess(record.pid, record.start)) {
        logger.warn(
          { event: 'volume-daemon-killed', volumeId: record.volumeId, pid: record.pid },
          'the mount daemon did not stop in time; killing it',
        );
        signal(record.pid, 'SIGKILL');
        while (isSameProcess(record.pid, record.start)) await delay(20);
      }
    }
    // A daemon that died (or was killed) leaves its mount behind, dead.
    if (topMountAt(record.targetPath)?.fstype === MOUNTED_FSTYPE)
      await detachMount(record.targetPath);
    try {
      rmdirSync(record.targetPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        throw new MintfsError(
          'ERR_MOUNT_FAILED',
          `could not remove ${record.targetPath} after unmounting (${code ?? describeError(err)})`,
          { cause: err },
        );
    }
    this.#forget(record.volumeId);
  }

  async #waitMounted(
    record: VolumeRecord,
    exited: Promise<number | null>,
    logFile: string,
  ): Promise<void> {
    const deadline = Date.now() + (this.#options.startTimeoutMs ?? 30_000);
    let status: number | null | undefined;
    void exited.then((code) => (status = code));
    for (;;) {
      if (status !== undefined)
        throw new MintfsError(
          'ERR_MOUNT_FAILED',
          `the mount daemon exited (${status ?? 'signal'}): ${lastDiagnostic(logFile)}`,
        );
      if (topMountAt(record.targetPath)?.fstype === MOUNTED_FSTYPE) return;
      if (Date.now() > deadline)
        throw new MintfsError(
          'ERR_MOUNT_FAILED',
          `the mount daemon did not mount in time: ${lastDiagnostic(logFile)}`,
        );
      await delay(20);
    }
  }

  #read(volumeId: string): VolumeRecord | undefined {
    let text: string;
    try {
      text = readFileSync(this.#path(volumeId, 'json'), 'utf8');
    } catch {
      return undefined;
    }
    try {
      return VolumeRecordSchema.parse(JSON.parse(text));
    } catch (err) {
      this.#options.logger.error(
        { event: 'volume-record-invalid', volumeId, detail: describeError(err) },
        'a volume record does not parse; leaving it for an operator',
      );
      return undefined;
    }
  }

  #forget(volumeId: string): void {
    for (const suffix of ['json', 'profile.yaml', 'log'])
      rmSync(this.#path(volumeId, suffix), { force: true });
  }

  #path(volumeId: string, suffix: string): string {
    return join(this.#dir, `${volumeId}.${suffix}`);
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or undefined when gone. */
export function processStart(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // A zombie has exited: it serves nothing.
  if (fields[0] === 'Z') return undefined;
  return fields[19];
}

/** A signal to a process that may have exited a moment ago. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function isSameProcess(pid: number, start: string): boolean {
  return processStart(pid) === start;
}

/** The daemon's one-line error (`mintfs: …`), or its last log message, for the CO's error. */
function lastDiagnostic(logFile: string): string {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return 'no log';
  }
  const lines = text.split('\n').filter((line) => line !== '');
  const diagnostic = [...lines].reverse().find((line) => line.startsWith('mintfs: '));
  if (diagnostic !== undefined) return diagnostic.slice('mintfs: '.length);
  const last = lines.at(-1);
  if (last === undefined) return 'no output';
  try {
    const parsed = JSON.parse(last) as { msg?: unknown };
    return typeof parsed.msg === 'string' ? parsed.msg : 'see the volume log';
  } catch {
    return 'see the volume log';
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
