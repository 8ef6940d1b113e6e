/**
 * `mintfs run`: an agent command in a bubblewrap sandbox with its own token
 * mount and gateway (or running ones), cleaned up when it ends. The
 * command's exit status is ours; signals sent to us go to it.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { MintfsError, describeError } from '../errors.js';
import { startMount, type RunningMount } from '../daemon/mount-daemon.js';
import type { BackendName } from '../fuse/backend.js';
import { selectBackend } from '../fuse/select-backend.js';
import { startGateway, type RunningGateway } from '../gateway/server.js';
import type { Logger } from '../log/logger.js';
import { bwrapArgs, type HostRoot } from './bwrap.js';
import { seccompBpf } from './seccomp-policy.js';

export const RUN_DIR = '/run/mintfs-run';
const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
];

export interface RunRequest {
  /** Serve this profile on a private mount... */
  readonly profileFile?: string | undefined;
  /** ...or bind this running mount. */
  readonly mountDir?: string | undefined;
  /** Run a private gateway with this config... */
  readonly gatewayConfig?: string | undefined;
  /** ...or bridge to this running gateway's unix socket. */
  readonly gatewaySocket?: string | undefined;
  readonly keysDir: string;
  /** The backend of the private mount (default: native where built). */
  readonly backend?: BackendName | undefined;
  readonly uid: number;
  readonly gid: number;
  readonly workdir?: string | undefined;
  readonly command: readonly string[];
  readonly logger: Logger;
}

/** Runs the command; resolves to the exit status to leave with (128+N for signal N). */
export async function runInSandbox(request: RunRequest): Promise<number> {
  const { logger } = request;
  const bpf = await seccompBpf();
  // Traversable, not listable: the sandbox user must reach its mount and socket by name.
  mkdirSync(RUN_DIR, { recursive: true, mode: 0o711 });
  chmodSync(RUN_DIR, 0o711);
  const work = mkdtempSync(join(RUN_DIR, 'run-'));
  chmodSync(work, 0o711);
  const cleanups: Array<() => Promise<void> | void> = [() => removeWorkDir(work)];
  const cleanUp = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        logger.warn({ event: 'run-cleanup-failed', detail: describeError(err) }, 'cleanup failed');
      }
    }
  };
  try {
    const secretsDir = request.mountDir ?? join(work, 'secrets');
    if (request.profileFile !== undefined) {
      const mount: RunningMount = await startMount({
        profileFile: request.profileFile,
        mountpoint: secretsDir,
        keysDir: request.keysDir,
        backend: selectBackend(request.backend, logger),
        logger,
        fileOwner: { uid: request.uid, gid: request.gid },
      });
      cleanups.push(() => mount.unmount({ drainMs: 1_000 }));
    }
    let gatewaySocket = request.gatewaySocket;
    if (request.gatewayConfig !== undefined) {
      gatewaySocket = join(work, 'gateway.sock');
      const gateway: RunningGateway = await startGateway({
        configFile: request.gatewayConfig,
        keysDir: request.keysDir,
        logger,
        listen: [{ kind: 'unix', path: gatewaySocket, text: `unix:${gatewaySocket}` }],
      });
      cleanups.push(() => gateway.close());
      // The socket is the sandbox user's alone (the gateway makes it 0660).
      chownSync(gatewaySocket, request.uid, request.gid);
    }
    if (gatewaySocket === undefined || !isSocket(gatewaySocket))
      throw new MintfsError(
        'ERR_INPUT_INVALID',
        `--gateway-socket: ${gatewaySocket} is not a socket`,
      );

    const bpfFile = join(work, 'seccomp.bpf');
    writeFileSync(bpfFile, bpf, { mode: 0o600 });
    const infoFile = join(work, 'info.json');
    const bpfFd = openSync(bpfFile, 'r');
    const infoFd = openSync(infoFile, 'w', 0o600);
    cleanups.push(() => {
      closeSync(bpfFd);
      closeSync(infoFd);
    });
    const args = bwrapArgs({
      secretsDir,
      gatewaySocket,
      uid: request.uid,
      gid: request.gid,
      workdir: request.workdir,
      command: request.command,
      seccompFd: 3,
      infoFd: 4,
      hostRoot: readHostRoot(),
      env: passThroughEnv(),
    });
    logger.info(
      { event: 'sandbox-start', uid: request.uid, command: request.command[0] },
      'starting the sandbox',
    );
    return await supervise(args, [bpfFd, infoFd], infoFile, request, logger);
  } finally {
    await cleanUp();
  }
}

function supervise(
  args: string[],
  fds: [number, number],
  infoFile: string,
  user: { uid: number; gid: number },
  logger: Logger,
): Promise<number> {
  return new Promise((resolve, reject) => {
    // bubblewrap starts as the sandbox user: run as root, its --uid would be
    // root on the host behind a user namespace; this way the command really is
    // that user to the kernel (file owners, FUSE permissions, signals).
    const child = spawn('bwrap', args, {
      stdio: ['inherit', 'inherit', 'inherit', ...fds],
      uid: user.uid,
      gid: user.gid,
    });
    const forward = (signal: NodeJS.Signals) => {
      const target = commandPid(infoFile);
      try {
        if (target !== undefined) process.kill(target, signal);
        else child.kill(signal);
      } catch {
        // Already gone.
      }
    };
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    const done = () => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
    };
    child.once('error', (err) => {
      done();
      reject(new MintfsError('ERR_SANDBOX_FAILED', `bwrap: ${describeError(err)}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      done();
      const status = code ?? 128 + (signal ? constants.signals[signal] : 0);
      logger.info({ event: 'sandbox-exit', status }, 'the sandboxed command ended');
      resolve(status);
    });
  });
}

/**
 * The command's pid on the host: bubblewrap reports its pid-1 helper, whose
 * one child is the command.
 */
function commandPid(infoFile: string): number | undefined {
  try {
    const init = (JSON.parse(readFileSync(infoFile, 'utf8')) as { 'child-pid'?: number })[
      'child-pid'
    ];
    if (init === undefined) return undefined;
    const children = readFileSync(`/proc/${init}/task/${init}/children`, 'utf8')
      .trim()
      .split(/\s+/);
    const first = Number(children[0]);
    return Number.isInteger(first) && first > 0 ? first : undefined;
  } catch {
    return undefined;
  }
}

function readHostRoot(): HostRoot {
  const root = new Map<string, { symlink?: string; directory?: boolean }>();
  for (const name of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
    try {
      const info = lstatSync(`/${name}`);
      if (info.isSymbolicLink()) root.set(name, { symlink: readlinkSync(`/${name}`) });
      else if (info.isDirectory()) root.set(name, { directory: true });
    } catch {
      // Not on this host.
    }
  }
  return root;
}

function passThroughEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['TERM', 'LANG', 'LC_ALL', 'TZ']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Removes what run created, entry by entry: never a recursive delete into a mount. */
function removeWorkDir(work: string): void {
  for (const name of ['seccomp.bpf', 'info.json', 'gateway.sock'])
    rmSync(join(work, name), { force: true });
  try {
    rmdirSync(join(work, 'secrets'));
  } catch {
    // Not created (a running mount was used) or still mounted: leave it.
  }
  rmdirSync(work);
}
