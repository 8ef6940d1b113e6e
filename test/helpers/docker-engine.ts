/**
 * A private Docker engine for tests: Debian's dockerd with its own data
 * root, exec root and socket in a temporary directory (no iptables, no
 * bridge: containers get `--network none` anyway), and a busybox image
 * imported from a rootfs built here (busybox-rootfs.ts; no registry is needed). Stopped, and
 * its directories removed, at the end of the test, even when it fails. If
 * dockerd cannot start, this throws with its last log lines: nothing is
 * skipped.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildBusyboxRootfs } from './busybox-rootfs.js';
import { pollUntil } from './poll.js';
import { tempDir, type Teardown } from './temp.js';

export const TEST_IMAGE = 'mintfs-test-busybox:1';

export interface DockerEngine {
  /** unix:///…/docker.sock, for DOCKER_HOST. */
  readonly host: string;
  readonly image: string;
  /** Runs the docker CLI against this engine. */
  docker(args: readonly string[]): string;
}

export async function startDockerEngine(teardown: Teardown): Promise<DockerEngine> {
  const dir = tempDir(teardown);
  const socket = join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const logFile = join(dir, 'dockerd.log');
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
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  daemon.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    log += chunk;
    if (log.length > 200_000) log = log.slice(-100_000);
  });
  teardown.add(async () => {
    if (daemon.exitCode !== null || daemon.signalCode !== null) return;
    const exited = new Promise((resolve) => daemon.once('exit', resolve));
    daemon.kill('SIGTERM');
    const timer = setTimeout(() => daemon.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  });
  const docker = (args: readonly string[]) =>
    execFileSync('docker', ['-H', host, ...args], { encoding: 'utf8', stdio: 'pipe' });
  await pollUntil(
    'dockerd to answer',
    () => {
      if (daemon.exitCode !== null)
        throw new Error(
          `dockerd exited ${daemon.exitCode}: ${log.trim().split('\n').slice(-5).join(' | ')}`,
        );
      try {
        docker(['version', '--format', '{{.Server.Version}}']);
        return true;
      } catch {
        return undefined;
      }
    },
    60_000,
  );
  writeFileSync(logFile, '');
  const rootfs = buildBusyboxRootfs(join(dir, 'rootfs'));
  const tarball = join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tarball, '.']);
  docker(['import', tarball, TEST_IMAGE]);
  return { host, image: TEST_IMAGE, docker };
}
