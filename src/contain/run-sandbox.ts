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
import { basename, join, relative, isAbsolute } from 'node:path';
import { realpathSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { caFiles } from '../intercept/ca-files.js';
import { MintfsError, describeError } from '../errors.js';
import { requireRoot, startMount, type RunningMount } from '../daemon/mount-daemon.js';
import type { BackendName } from '../fuse/backend.js';
import { selectBackend } from '../fuse/select-backend.js';
import { startGateway, type RunningGateway } from '../gateway/server.js';
import type { Logger } from '../log/logger.js';
import { sdkEndpointEnv } from '../aws/index.js';
import { bwrapArgs, GATEWAY_PORT, type HostRoot } from './bwrap.js';
import { createRunCgroup, type RunLimits } from './cgroup.js';
import { allocateRunUid, processUsingUid, type RunUid } from './run-uid.js';
import { fileURLToPath } from 'node:url';
import { seccompBpf, seccompProfileJson } from './seccomp-policy.js';
import { startDockerRun } from './docker.js';
import { BRIDGE_LIMITS, type ContainerRun } from './gateway-bridge.js';
import { startRuncRun } from './runc.js';
import { choosePlatform, runscFlags, type GvisorPlatform } from './gvisor.js';
import { LinkFarm, runningMountView, type SecretsView } from './secrets-view.js';
import { mountRunStage, type RunStage } from './run-stage.js';
import { sandboxStdio } from './sandbox-stdio.js';

export const RUN_DIR = '/run/mintfs-run';
const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
];

/** How long the command gets after a forwarded SIGINT or SIGTERM before everything is killed. */
export const STOP_GRACE_MS = 5_000;

export interface RunRequest {
  /** Serve this profile on a private mount... */
  readonly profileFile?: string | undefined;
  /** ...or bind this running mount. */
  readonly mountDir?: string | undefined;
  /** Run a private gateway with this config... */
  readonly gatewayConfig?: string | undefined;
  /** ...or bridge to this running gateway's unix socket. */
  readonly gatewaySocket?: string | undefined;
  /**
   * The interception CA certificate the sandbox trusts (with --gateway-socket;
   * a private gateway's comes from its config's intercept.ca).
   */
  readonly caCert?: string | undefined;
  readonly keysDir: string;
  /** The backend of the private mount (default: native where built). */
  readonly backend?: BackendName | undefined;
  /** Run as this uid; by default a fresh one from the run range (run-uid.ts). */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly workdir?: string | undefined;
  readonly limits: RunLimits;
  readonly command: readonly string[];
  readonly logger: Logger;
  /** bubblewrap (the default), a Docker container of `image`, or an OCI container of `rootfs`. */
  readonly runtime?: RunRuntime | undefined;
  readonly image?: string | undefined;
  readonly rootfs?: string | undefined;
  /** With runsc: gVisor's platform (default: systrap where runsc has it, else ptrace). */
  readonly gvisorPlatform?: GvisorPlatform | undefined;
  /** With runsc: how long the sandbox may take to start (default RUNSC_START_DEADLINE_MS). */
  readonly gvisorStartTimeoutMs?: number | undefined;
}

export const RUN_RUNTIMES = ['bwrap', 'docker', 'runc', 'runsc'] as const;
export type RunRuntime = (typeof RUN_RUNTIMES)[number];

/** Runs the command; resolves to the exit status to leave with (128+N for signal N). */
export async function runInSandbox(request: RunRequest): Promise<number> {
  // Once the run has a directory, every line (the mount's and gateway's too) names it.
  let logger = request.logger;
  // Signals are ours from the first moment: one that comes during start-up
  // stops it and cleans up (no mount, directory or process left behind).
  const stopper = new Stopper();
  const cleanups: Array<() => Promise<void> | void> = [];
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
    requireRoot('run');
    refuseSandboxWritableConfig(request);
    const bpf = await seccompBpf();
    stopper.check();
    // Traversable, not listable: each run's directory is its own uid's alone.
    mkdirSync(RUN_DIR, { recursive: true, mode: 0o711 });
    chmodSync(RUN_DIR, 0o711);
    const identity = runIdentity(request);
    cleanups.push(() => identity.release());
    const { uid, gid } = identity;
    const runtime = request.runtime ?? 'bwrap';
    // Checked before anything is made for the run: a refusal leaves nothing to clean.
    const runtimePath = runtime === 'runc' || runtime === 'runsc' ? ociRuntime(runtime) : '';
    const runtimeFlags =
      runtime === 'runsc' ? runscFlags(choosePlatform(runtimePath, request.gvisorPlatform)) : [];
    if (runtime !== 'runsc' && request.gvisorPlatform !== undefined)
      throw new MintfsError('ERR_INPUT_INVALID', '--gvisor-platform: only with --runtime runsc');
    if (runtime !== 'runsc' && request.gvisorStartTimeoutMs !== undefined)
      throw new MintfsError(
        'ERR_INPUT_INVALID',
        '--gvisor-start-timeout: only with --runtime runsc',
      );
    const rootfs = request.rootfs === undefined ? undefined : rootfsDir(request.rootfs);
    const workdir = request.workdir === undefined ? undefined : workdirDir(request.workdir);
    const work = mkdtempSync(join(RUN_DIR, 'run-'));
    cleanups.push(() => removeWorkDir(work));
    logger = logger.child({ run: basename(work) });
    // The run's name, before anything else is made for it: its directory,
    // container (mintfs-<run>) and cgroup carry it, so an operator (or a
    // test) can tell this run's leftovers from another's.
    logger.info({ event: 'run-prepared', runtime, uid }, 'prepared the run directory');
    chownSync(work, uid, gid);
    chmodSync(work, 0o700);
    // What the sandbox gets of the run is bound from here (run-stage.ts), so its
    // mountinfo names neither the run directory nor where mintfs is installed.
    const stage = mountRunStage(join(work, 'stage'));
    cleanups.push(() => stage.remove());
    const init = stageInit(stage);

    const secretsDir = request.mountDir ?? join(work, 'secrets');
    // A running mount is checked before anything is started for the run.
    if (request.mountDir !== undefined)
      await requireReachable(request.mountDir, 'directory', '--mount', identity);
    const secrets: SecretsView =
      request.mountDir === undefined
        ? { kind: 'bind', dir: secretsDir }
        : runningMountView(request.mountDir, stage.path('links'), logger);
    if (request.profileFile !== undefined) {
      const backend = selectBackend(request.backend, logger);
      const mount: RunningMount = await startMount({
        profileFile: request.profileFile,
        mountpoint: secretsDir,
        keysDir: request.keysDir,
        backend,
        logger,
        fileOwner: { uid, gid },
        // gVisor's sentry reads one host handle per file for the sandbox's
        // processes: each read from the start mints (gvisor.ts). The native
        // backend does so for gVisor's gofer whatever the mount; fuse-native
        // cannot see the gofer and is told here.
        mintPerRead: runtime === 'runsc',
      });
      cleanups.push(() => mount.unmount({ drainMs: 1_000 }));
      stopper.check();
    }
    let gatewaySocket = request.gatewaySocket;
    let caSource = request.caCert;
    // The AWS SDKs' endpoint variables, for a gateway whose routes this run knows (its own).
    let awsEnv: Record<string, string> = {};
    if (request.gatewayConfig !== undefined) {
      gatewaySocket = stage.path('gateway.sock');
      const gateway: RunningGateway = await startGateway({
        configFile: request.gatewayConfig,
        keysDir: request.keysDir,
        logger,
        listen: [{ kind: 'unix', path: gatewaySocket, text: `unix:${gatewaySocket}` }],
      });
      cleanups.push(() => gateway.close());
      const intercept = gateway.config.intercept;
      if (intercept !== undefined) caSource = caFiles(intercept.ca).certPath;
      awsEnv = sdkEndpointEnv(`http://127.0.0.1:${GATEWAY_PORT}`, gateway.config.upstreams);
      // The socket is the sandbox user's alone (the gateway makes it 0660).
      chownSync(gatewaySocket, uid, gid);
      stopper.check();
    }
    if (gatewaySocket === undefined || !isSocket(gatewaySocket))
      throw new MintfsError(
        'ERR_INPUT_INVALID',
        `--gateway-socket: ${gatewaySocket} is not a socket`,
      );
    if (request.gatewaySocket !== undefined)
      await requireReachable(request.gatewaySocket, 'socket', '--gateway-socket', identity);

    // A copy in the run directory: the sandbox sees neither the CA's directory nor its key.
    const caCertFile = caSource === undefined ? undefined : stage.path('ca.crt');
    if (caSource !== undefined && caCertFile !== undefined) copyCaCertificate(caSource, caCertFile);

    if (secrets.kind === 'follow' && runtime !== 'bwrap') {
      const links = new LinkFarm(secretsDir, secrets);
      cleanups.push(() => links.remove());
      links.create();
      links.follow();
    }

    if (runtime === 'runc' || runtime === 'runsc') {
      stopper.check();
      const platform = runtimeFlags.find((flag) => flag.startsWith('--platform='))?.slice(11);
      logger.info(
        {
          event: 'sandbox-start',
          runtime,
          uid,
          command: request.command[0],
          ...(platform === undefined ? {} : { platform }),
        },
        'starting the container',
      );
      // gVisor's bridge runs inside, under the sandbox's limits (gvisor.ts).
      const bridgeCgroup = runtime === 'runc' ? createBridgeCgroup(work, cleanups) : [];
      const run = await startRuncRun(
        {
          runtime,
          name: `mintfs-${basename(work)}`,
          bundleDir: join(work, 'bundle'),
          bridgeCgroup,
          runtimeFlags,
          startDeadlineMs: request.gvisorStartTimeoutMs,
          config: {
            rootfs: rootfs ?? '',
            secrets,
            init,
            uid,
            gid,
            memoryBytes: request.limits.memoryBytes,
            pids: request.limits.pids,
            cpus: request.limits.cpus,
            caCert: caCertFile,
            workdir,
            env: { ...passThroughEnv(), ...awsEnv },
            args: [...request.command],
          },
        },
        gatewaySocket,
        runtimePath,
        logger,
        (cleanup) => cleanups.push(cleanup),
      );
      return await superviseContainer(run, stopper);
    }

    if (runtime === 'docker') {
      const seccompFile = join(work, 'seccomp.json');
      writeFileSync(seccompFile, seccompProfileJson(), { mode: 0o644 });
      stopper.check();
      logger.info(
        { event: 'sandbox-start', runtime: 'docker', uid, command: request.command[0] },
        'starting the container',
      );
      const run = await startDockerRun(
        {
          name: `mintfs-${basename(work)}`,
          image: request.image ?? '',
          secrets,
          uid,
          gid,
          workdir,
          caCertFile,
          seccompFile,
          initFile: init,
          limits: request.limits,
          env: { ...passThroughEnv(), ...awsEnv },
          command: request.command,
        },
        gatewaySocket,
        createBridgeCgroup(work, cleanups),
        logger,
        (cleanup) => cleanups.push(cleanup),
      );
      return await superviseContainer(run, stopper);
    }

    const cgroup = createRunCgroup(`mintfs-${basename(work)}`, request.limits);
    cleanups.push(() => cgroup.remove());
    const bpfFile = join(work, 'seccomp.bpf');
    writeFileSync(bpfFile, bpf, { mode: 0o600 });
    const infoFile = join(work, 'info.json');
    const args = bwrapArgs({
      secrets,
      gatewaySocket,
      uid,
      gid,
      workdir,
      init,
      command: request.command,
      seccompFd: 3,
      infoFd: 4,
      hostRoot: readHostRoot(),
      env: { ...passThroughEnv(), ...awsEnv },
      caCertFile,
    });
    // The options are handed over on a descriptor (--args 5), the command on
    // the command line: no host path is on bubblewrap's command line (outside
    // the sandbox); pid 1 inside is mintfs-run-init (`--as-pid-1`).
    const split = args.indexOf('--');
    const argsFile = join(work, 'bwrap.args');
    writeFileSync(argsFile, `${args.slice(0, split).join('\0')}\0`, { mode: 0o600 });
    const fds = [openSync(bpfFile, 'r'), openSync(infoFile, 'w', 0o600), openSync(argsFile, 'r')];
    cleanups.push(() => fds.forEach((fd) => closeSync(fd)));
    stopper.check();
    logger.info(
      { event: 'sandbox-start', uid, command: request.command[0] },
      'starting the sandbox',
    );
    return await supervise(args.slice(split), fds, infoFile, identity, cgroup, stopper, logger);
  } catch (err) {
    if (err instanceof Interrupted) return 128 + constants.signals[err.signal];
    throw err;
  } finally {
    await cleanUp();
    stopper.close();
  }
}

/**
 * The cgroup of a runc or Docker run's gateway bridge (gateway-bridge.ts),
 * named after the run; removed, with anything left in it, at the end.
 */
function createBridgeCgroup(
  work: string,
  cleanups: Array<() => Promise<void> | void>,
): readonly string[] {
  const cgroup = createRunCgroup(`mintfs-${basename(work)}-bridge`, BRIDGE_LIMITS);
  cleanups.push(() => cgroup.remove());
  return cgroup.procsFiles;
}

/** Signals go to the container's init; a stop signal is followed by a kill after STOP_GRACE_MS. */
async function superviseContainer(run: ContainerRun, stopper: Stopper): Promise<number> {
  let killer: NodeJS.Timeout | undefined;
  stopper.route((signal) => {
    run.signal(signal);
    if (STOPPING.includes(signal)) killer ??= setTimeout(() => void run.kill(), STOP_GRACE_MS);
  });
  const status = await run.exited;
  clearTimeout(killer);
  return status;
}

/** The runtime's binary; runsc (gVisor) is often not installed. */
function ociRuntime(name: 'runc' | 'runsc'): string {
  const path = findOnPath(name);
  if (path === undefined)
    throw new MintfsError(
      'ERR_SANDBOX_FAILED',
      name === 'runsc'
        ? '--runtime runsc: runsc (gVisor) is not installed; install it or use --runtime runc'
        : '--runtime runc: runc is not installed (scripts/install-system-packages.sh installs it)',
    );
  return path;
}

/** The root file system for runc: an existing directory, never the host's root. */
function rootfsDir(path: string): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (err) {
    throw new MintfsError('ERR_INPUT_INVALID', `--rootfs ${path}: ${describeError(err)}`);
  }
  if (!lstatSync(real).isDirectory())
    throw new MintfsError('ERR_INPUT_INVALID', `--rootfs ${path}: not a directory`);
  if (real === '/')
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      "--rootfs /: the host's root is not a container image; use --runtime bwrap for the host's programs",
    );
  return real;
}

/** A signal that came before the sandbox existed: start-up stops, cleanup runs. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

/** Holds the process's signal handlers for the whole run. */
class Stopper {
  #signal: NodeJS.Signals | undefined;
  #onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  readonly #handler = (signal: NodeJS.Signals) => {
    this.#signal ??= signal;
    this.#onSignal?.(signal);
  };

  constructor() {
    for (const signal of FORWARDED_SIGNALS) process.on(signal, this.#handler);
  }

  /** Throws Interrupted when a stop signal has come. */
  check(): void {
    if (this.#signal !== undefined && STOPPING.includes(this.#signal))
      throw new Interrupted(this.#signal);
  }

  /** From now on, signals go here (the sandbox is running). */
  route(onSignal: (signal: NodeJS.Signals) => void): void {
    this.#onSignal = onSignal;
    if (this.#signal !== undefined) onSignal(this.#signal);
  }

  close(): void {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, this.#handler);
  }
}

const STOPPING: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

function runIdentity(request: RunRequest): RunUid {
  if (request.uid === undefined) return allocateRunUid(RUN_DIR);
  const user = processUsingUid(request.uid);
  if (user !== undefined)
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `--uid ${request.uid}: host process ${user} runs as this uid and could reach the run's tokens; leave --uid out to get a fresh one`,
    );
  return { uid: request.uid, gid: request.gid ?? request.uid, release: () => undefined };
}

/**
 * Copies a CA certificate for the sandbox, refusing anything that is not
 * one certificate in PEM, and anything with a private key in it.
 */
function copyCaCertificate(source: string, target: string): void {
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new MintfsError('ERR_INPUT_INVALID', `--ca-cert: ${source}: ${describeError(err)}`);
  }
  if (/PRIVATE KEY/.test(text))
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `--ca-cert: ${source} holds a private key; a sandbox gets the certificate only`,
    );
  try {
    new X509Certificate(text);
  } catch {
    throw new MintfsError('ERR_INPUT_INVALID', `--ca-cert: ${source} is not a PEM certificate`);
  }
  writeFileSync(target, text, { mode: 0o644 });
}

/**
 * A profile, gateway config or keyring inside --workdir is one the sandbox
 * can rewrite, widening its own scope on the next reload: refused.
 */
function refuseSandboxWritableConfig(request: RunRequest): void {
  if (request.workdir === undefined) return;
  const workdir = realpathOr(request.workdir);
  const inputs: Array<[string, string | undefined]> = [
    ['--profile', request.profileFile],
    ['--gateway', request.gatewayConfig],
    ['--keys', request.keysDir],
  ];
  for (const [flag, path] of inputs) {
    if (path === undefined) continue;
    const rel = relative(workdir, realpathOr(path));
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel)))
      throw new MintfsError(
        'ERR_INPUT_INVALID',
        `${flag} ${path} is inside --workdir ${request.workdir}, which the sandbox can write; keep it outside`,
      );
  }
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Checks, as the sandbox user, that it can reach a running mount (every
 * directory enterable, every token file readable: access(2), no open, so
 * nothing is minted) or a gateway socket; names the fix if not.
 */
async function requireReachable(
  path: string,
  kind: 'directory' | 'socket',
  flag: string,
  identity: RunUid,
): Promise<void> {
  const probe =
    kind === 'directory'
      ? [
          '/usr/bin/find',
          path,
          '-maxdepth',
          '16',
          '(',
          '-type',
          'd',
          '!',
          '-executable',
          '-o',
          '-type',
          'f',
          '!',
          '-readable',
          ')',
          '-print',
          '-quit',
        ]
      : ['/usr/bin/test', '-S', path, '-a', '-w', path];
  const result = await new Promise<{ ok: boolean; first: string }>((resolve) => {
    const child = spawn(
      SETPRIV,
      [`--reuid=${identity.uid}`, `--regid=${identity.gid}`, '--clear-groups', ...probe],
      // From /: find must be able to come back to its starting directory,
      // and the caller's (a private checkout, a home) may be closed to that uid.
      { stdio: ['ignore', 'pipe', 'ignore'], env: {}, cwd: '/' },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.once('error', () => resolve({ ok: false, first: '' }));
    child.once('close', (code) => resolve({ ok: code === 0 && out === '', first: out.trim() }));
  });
  if (!result.ok) {
    const what =
      kind === 'socket'
        ? 'connect to it'
        : result.first === '' || result.first === path
          ? 'read it'
          : `read ${result.first}`;
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `${flag} ${path}: the sandbox user (uid ${identity.uid}) cannot ${what}; give it to that uid (the profile's uid/gid, or --uid to match them), or use ${kind === 'directory' ? '--profile' : '--gateway'} for a private one`,
    );
  }
}

const SETPRIV = '/usr/bin/setpriv';

/**
 * Joins the run's cgroup, then becomes the sandbox user and execs bubblewrap:
 * every process of the sandbox is inside the limits from its first
 * instruction, and none of the operator's environment or working directory
 * reaches it (the spawn's environment is empty and its directory /).
 */
const ENTER = `
setpriv=$1 uid=$2 gid=$3 bwrap=$4 groups=$5; shift 5
while [ "$groups" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; groups=$((groups - 1)); done
exec "$setpriv" --reuid="$uid" --regid="$gid" --clear-groups "$bwrap" --args 5 "$@"
`;

function supervise(
  command: readonly string[],
  fds: number[],
  infoFile: string,
  user: RunUid,
  cgroup: ReturnType<typeof createRunCgroup>,
  stopper: Stopper,
  logger: Logger,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const io = sandboxStdio();
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        ENTER,
        'mintfs-run',
        SETPRIV,
        String(user.uid),
        String(user.gid),
        BWRAP,
        String(cgroup.procsFiles.length),
        ...cgroup.procsFiles,
        ...command,
      ],
      // From /, with nothing of ours in the environment: the shell exports
      // PWD, and bubblewrap hands its environment to the sandbox's pid 1.
      { stdio: [...io.stdio, ...fds], env: {}, cwd: '/' },
    );
    io.relay(child);
    let killer: NodeJS.Timeout | undefined;
    let sweeper: NodeJS.Timeout | undefined;
    // A signal reaches every process of the agent (not bubblewrap's own,
    // whose death would SIGKILL the rest at once). A stop signal is then
    // delivered again to every process that appears later, or that has since
    // exec'd another program (a shell that waited out its child's SIGINT and
    // went on to exec the command), until the sandbox ends; after
    // STOP_GRACE_MS everything in the cgroup is killed.
    const delivered = new Set<string>();
    const deliver = (signal: NodeJS.Signals): number => {
      const own = new Set([child.pid, bwrapInit(infoFile)]);
      let reached = 0;
      for (const pid of cgroup.pids()) {
        if (own.has(pid)) continue;
        const identity = `${pid}:${programOf(pid)}:${signal}`;
        if (delivered.has(identity)) continue;
        try {
          process.kill(pid, signal);
          delivered.add(identity);
          reached++;
        } catch {
          // Already gone.
        }
      }
      return reached;
    };
    stopper.route((signal) => {
      if (deliver(signal) === 0 && delivered.size === 0) child.kill(signal);
      if (STOPPING.includes(signal)) {
        sweeper ??= setInterval(() => deliver(signal), 50);
        killer ??= setTimeout(() => cgroup.signalAll('SIGKILL'), STOP_GRACE_MS);
      }
    });
    child.once('error', (err) => {
      clearTimeout(killer);
      clearInterval(sweeper);
      reject(new MintfsError('ERR_SANDBOX_FAILED', `bwrap: ${describeError(err)}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      clearInterval(sweeper);
      const status = code ?? 128 + (signal ? constants.signals[signal] : 0);
      logger.info({ event: 'sandbox-exit', status }, 'the sandboxed command ended');
      resolve(status);
    });
  });
}

const BWRAP = findOnPath('bwrap') ?? '/usr/bin/bwrap';
/** pid 1 of every sandbox (native/helpers/run-init.c, built static by scripts/build-native-helpers.sh). */
const RUN_INIT = fileURLToPath(new URL('../../native/mintfs-run-init', import.meta.url));

/** mintfs-run-init's copy on the stage (bound from there, so no sandbox sees the install path). */
function stageInit(stage: RunStage): string {
  try {
    return stage.copy(RUN_INIT, 'init', 0o555);
  } catch (err) {
    throw new MintfsError(
      'ERR_SANDBOX_FAILED',
      `${RUN_INIT}: ${describeError(err)} (npm run build compiles it; it needs a C compiler and a static libc)`,
      { cause: err },
    );
  }
}

/**
 * --workdir as an absolute, real directory: runtimes resolve a relative path
 * against their own working directory (/ for bubblewrap), not the caller's.
 */
function workdirDir(path: string): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (err) {
    throw new MintfsError('ERR_INPUT_INVALID', `--workdir ${path}: ${describeError(err)}`);
  }
  if (!lstatSync(real).isDirectory())
    throw new MintfsError('ERR_INPUT_INVALID', `--workdir ${path}: not a directory`);
  return real;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = join(dir, name);
    try {
      if (lstatSync(candidate).isFile() || lstatSync(candidate).isSymbolicLink()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The program a process runs now (its exe link), '' when it cannot be read. */
function programOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

/** bubblewrap's pid-1 helper, as its info file reports it. */
function bwrapInit(infoFile: string): number | undefined {
  try {
    return (JSON.parse(readFileSync(infoFile, 'utf8')) as { 'child-pid'?: number })['child-pid'];
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

/**
 * The only things of the caller's environment a sandbox gets: its terminal
 * type (for a person at a terminal), if it looks like one. Nothing else of
 * the operator's environment may be visible inside, since it can hold
 * credentials (`credential: { env: NAME }`).
 */
function passThroughEnv(): Record<string, string> {
  const term = process.env.TERM;
  return {
    LANG: 'C.UTF-8',
    ...(term !== undefined && /^[A-Za-z0-9._+-]{1,64}$/.test(term) ? { TERM: term } : {}),
  };
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
  for (const name of [
    'seccomp.bpf',
    'seccomp.json',
    'info.json',
    'bwrap.args',
    'gateway.sock',
    'ca.crt',
  ])
    rmSync(join(work, name), { force: true });
  try {
    rmdirSync(join(work, 'secrets'));
  } catch {
    // Not created (a running mount was used) or still mounted: leave it.
  }
  rmdirSync(work);
}
