/**
 * A private Docker engine for tests: Debian's dockerd with its own data
 * root, exec root and socket in a temporary directory (no iptables, no
 * bridge: containers get `--network none` anyway), and a busybox image
 * imported from a rootfs built here (busybox-rootfs.ts; no registry is needed). Stopped, and
 * its directories removed, at the end of the test, even when it fails. If
 * dockerd cannot start, this throws with its last log lines: nothing is
 * skipped.
 *
 * dockerd logs to a file, not a pipe: a pipe nobody reads while a blocking
 * `docker` call runs fills up, dockerd stops on its next log line, and the
 * call waits for it forever. Every `docker` call has a timeout and, when it
 * fails, says what it waited for and what dockerd logged last.
 *
 * dockerd gets a TMPDIR inside the engine's directory. When a loaded machine
 * makes containerd miss its health checks, dockerd restarts it, and first
 * sends it SIGUSR1 for a stack trace, which containerd writes to
 * $TMPDIR/containerd.PID.stacks.log: in the tests' shared TMPDIR, that file
 * outlived the test and failed the run.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildBusyboxRootfs } from './busybox-rootfs.js';
import { pollUntil } from './poll.js';
import { runSync, tail } from './spawn.js';
import { tempDir, type Teardown } from './temp.js';

export const TEST_IMAGE = 'mintfs-test-busybox:1';

/** How long one docker CLI call may take (an image import included). */
const DOCKER_TIMEOUT_MS = 120_000;
/** How long dockerd gets to answer its first `docker version`. */
const START_TIMEOUT_MS = 60_000;

export interface DockerEngine {
  /** unix:///…/docker.sock, for DOCKER_HOST. */
  readonly host: string;
  readonly image: string;
  /** Runs the docker CLI against this engine (with a timeout); its stdout. */
  docker(args: readonly string[]): string;
}

export async function startDockerEngine(teardown: Teardown): Promise<DockerEngine> {
  const dir = tempDir(teardown);
  const socket = join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const logFile = join(dir, 'dockerd.log');
  const log = openSync(logFile, 'a');
  const daemonTemp = join(dir, 'tmp');
  mkdirSync(daemonTemp, { mode: 0o700 });
  const daemon = spawn(
    'dockerd',
    [
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '-H',
      host,
    ],
    { stdio: ['ignore', log, log], env: { ...process.env, TMPDIR: daemonTemp } },
  );
  // dockerd has its own copy; ours is not needed.
  closeSync(log);
  const lastLog = (): string => {
    try {
      return tail(readFileSync(logFile, 'utf8'));
    } catch {
      return '(no log)';
    }
  };
  teardown.add(async () => {
    if (daemon.exitCode !== null || daemon.signalCode !== null) return;
    const exited = new Promise((resolve) => daemon.once('exit', resolve));
    daemon.kill('SIGTERM');
    const timer = setTimeout(() => daemon.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  });
  const docker = (args: readonly string[], timeoutMs = DOCKER_TIMEOUT_MS): string => {
    try {
      return runSync('docker', ['-H', host, ...args], `docker ${args[0]} (private dockerd)`, {
        timeoutMs,
      });
    } catch (err) {
      throw new Error(`${(err as Error).message}; dockerd last logged: ${lastLog()}`, {
        cause: err,
      });
    }
  };
  let lastError = '';
  await pollUntil(
    'dockerd to answer `docker version`',
    () => {
      if (daemon.exitCode !== null || daemon.signalCode !== null)
        throw new Error(`dockerd exited ${daemon.exitCode ?? daemon.signalCode}: ${lastLog()}`);
      try {
        docker(['version', '--format', '{{.Server.Version}}'], 10_000);
        return true;
      } catch (err) {
        lastError = (err as Error).message;
        return undefined;
      }
    },
    START_TIMEOUT_MS,
    () => `(last try: ${lastError})`,
  );
  const rootfs = buildBusyboxRootfs(join(dir, 'rootfs'));
  const tarball = join(dir, 'rootfs.tar');
  runSync('tar', ['-C', rootfs, '-cf', tarball, '.'], 'the image tarball');
  docker(['import', tarball, TEST_IMAGE]);
  return { host, image: TEST_IMAGE, docker: (args) => docker(args) };
}
