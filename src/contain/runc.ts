/**
 * `mintfs run --runtime runc` (or runsc, gVisor's runtime, which reads the
 * same bundle): the agent in an OCI container of a root file system the
 * caller names, with the guarantees of the other runtimes (oci-config.ts).
 *
 * The network namespace comes first, owned by the bridge: in its own
 * cgroup, `unshare --net` brings loopback up and becomes socat (bounded, as
 * the run's uid: gateway-bridge.ts) on 127.0.0.1:8787, forwarding to the
 * gateway's socket from the host's mount namespace. The container joins that
 * namespace (/proc/PID/ns/net), so it has loopback and the bridge and
 * nothing else, and nothing named is left to clean up: the namespace goes
 * with its last process. mintfs-run-init, the container's first process,
 * waits for the bridge, forwards signals and leaves with the command's status,
 * which `runc run` (in the foreground) returns.
 *
 * runsc (gVisor) differs in the network alone: its sandbox gets a namespace
 * and a network stack of its own with loopback only, the gateway's socket is
 * bound in, and mintfs-run-init bridges 127.0.0.1:8787 to it from inside
 * (gvisor.ts says why). runsc's own flags come first on its command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MintfsError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { containerCgroup } from './cgroup.js';
import { HOST_TOOLS_ENV, inCgroup, socatBridge, type ContainerRun } from './gateway-bridge.js';
import { ociConfig, type OciOptions } from './oci-config.js';

export type OciRuntime = 'runc' | 'runsc';

export interface RuncSpec {
  readonly runtime: OciRuntime;
  /** The container id (also the cgroup's name). */
  readonly name: string;
  /** A directory of the run's own for config.json. */
  readonly bundleDir: string;
  /** Everything of the config but the network namespace, which is made here. */
  readonly config: Omit<OciOptions, 'netns'>;
  /** The cgroup.procs files of the bridge's cgroup (gateway-bridge.ts); runc only. */
  readonly bridgeCgroup: readonly string[];
  /** runsc's global flags (gvisor.ts); none for runc. */
  readonly runtimeFlags?: readonly string[];
  /** runsc: how long the sandbox may take to start (default RUNSC_START_DEADLINE_MS). */
  readonly startDeadlineMs?: number | undefined;
}

/**
 * The host's pids cgroup of a gVisor sandbox counts the sentry's and
 * gofer's threads, not the agent's processes: about 200 for an idle sandbox
 * on ptrace, and 4 to 5 more per agent process (each address space is a
 * host stub process). The agent's processes are limited inside, where
 * gVisor counts them (RLIMIT_NPROC of its uid, enforced by the sentry); the
 * host limit, scaled from it, bounds what the sentry can make on the host.
 */
export function gvisorHostPids(agentPids: number): number {
  return 512 + 8 * agentPids;
}

/** Brings loopback up in the new namespace, then becomes the bridge. */
const BRIDGE_SCRIPT = 'ip link set lo up && exec "$@"';

export async function startRuncRun(
  spec: RuncSpec,
  gatewaySocket: string,
  runtimePath: string,
  logger: Logger,
  onCleanup: (cleanup: () => Promise<void> | void) => void,
): Promise<ContainerRun> {
  const route =
    spec.runtime === 'runsc'
      ? { gatewaySocket }
      : { netns: await startHostBridge(spec, gatewaySocket, onCleanup) };

  mkdirSync(spec.bundleDir, { mode: 0o700 });
  const configFile = join(spec.bundleDir, 'config.json');
  onCleanup(() => {
    rmSync(configFile, { force: true });
    rmdirSync(spec.bundleDir);
  });
  const limits =
    spec.runtime === 'runsc'
      ? {
          pids: gvisorHostPids(spec.config.pids),
          nproc: spec.config.pids,
          kernel: 'gvisor' as const,
        }
      : {};
  writeFileSync(configFile, JSON.stringify(ociConfig({ ...spec.config, ...route, ...limits })), {
    mode: 0o600,
  });

  // Its own process group: a terminal's Ctrl-C reaches mintfs, which
  // delivers it to the container's init with `runc kill`.
  const flags = spec.runtimeFlags ?? [];
  const container = spawn(runtimePath, [...flags, 'run', '--bundle', spec.bundleDir, spec.name], {
    stdio: ['inherit', 'inherit', 'inherit'],
    env: HOST_TOOLS_ENV,
    cwd: '/',
    detached: true,
  });
  onCleanup(async () => {
    await runtime(runtimePath, [...flags, 'delete', '--force', spec.name]);
    // runsc killed at its start deadline never removed its cgroup, and its
    // sandbox may still be in it: nothing of the run may outlive it.
    if (spec.runtime === 'runsc') await containerCgroup(spec.name).remove();
  });
  const exited = new Promise<number>((resolve) => {
    container.once('error', (err) => {
      logger.error({ event: 'run-runtime-failed', detail: err.message }, `${spec.runtime} failed`);
      resolve(125);
    });
    container.once('close', (code, signal) =>
      resolve(code ?? (signal ? 128 + constants.signals[signal] : 125)),
    );
  });
  let done = false;
  void exited.then(() => (done = true));
  const started =
    spec.runtime === 'runsc'
      ? startDeadline(
          runtimePath,
          flags,
          spec.name,
          spec.startDeadlineMs ?? RUNSC_START_DEADLINE_MS,
          () => done,
          container,
        )
      : Promise.resolve();
  return {
    exited: started.then(() => exited),
    signal: (signal) => {
      if (!done) void runtime(runtimePath, [...flags, 'kill', spec.name, signal]);
    },
    kill: async () => {
      if (!done) await runtime(runtimePath, [...flags, 'kill', spec.name, 'SIGKILL']);
    },
  };
}

/** How long gVisor gets to start a sandbox by default (ptrace: about a second; a stuck platform: never). */
export const RUNSC_START_DEADLINE_MS = 30_000;

/**
 * Resolves once runsc reports the container running (or it ended on its
 * own); rejects, after killing it, when it has not started by the deadline:
 * a platform that cannot run here (Debian's runsc on KVM hangs) is named,
 * not waited on for ever.
 */
async function startDeadline(
  runtimePath: string,
  flags: readonly string[],
  name: string,
  deadlineMs: number,
  ended: () => boolean,
  container: ChildProcess,
): Promise<void> {
  // By the clock: each `runsc state` takes a while of its own on a busy host.
  const deadline = performance.now() + deadlineMs;
  while (performance.now() < deadline) {
    if (ended() || (await runtimeState(runtimePath, flags, name)) === 'running') return;
    await sleep(100);
  }
  if (ended()) return;
  if (container.pid !== undefined) process.kill(-container.pid, 'SIGKILL');
  const platform = flags.find((flag) => flag.startsWith('--platform='))?.slice(11) ?? 'default';
  throw new MintfsError(
    'ERR_SANDBOX_FAILED',
    `runsc did not start the sandbox within ${deadlineMs / 1000} s on the ${platform} platform; this host cannot run it (try --gvisor-platform ptrace, or a longer --gvisor-start-timeout on a slow host)`,
  );
}

/** The container's status as the runtime's `state` reports it ('' when it knows none yet). */
function runtimeState(path: string, flags: readonly string[], name: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(path, [...flags, 'state', name], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: HOST_TOOLS_ENV,
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.once('error', () => resolve(''));
    child.once('close', () => {
      try {
        const state = JSON.parse(out) as { status?: unknown };
        resolve(typeof state.status === 'string' ? state.status : '');
      } catch {
        resolve('');
      }
    });
  });
}

/**
 * runc's bridge: a network namespace of its own (loopback up) in which socat,
 * in the bridge's cgroup and as the run's uid, listens on 127.0.0.1:8787;
 * resolves to the namespace's /proc path for the container to join.
 */
async function startHostBridge(
  spec: RuncSpec,
  gatewaySocket: string,
  onCleanup: (cleanup: () => Promise<void> | void) => void,
): Promise<string> {
  const [shell, ...args] = inCgroup(spec.bridgeCgroup, [
    'unshare',
    '--net',
    '--',
    '/bin/sh',
    '-c',
    BRIDGE_SCRIPT,
    'mintfs-bridge',
    ...socatBridge(gatewaySocket, { uid: spec.config.uid, gid: spec.config.gid }),
  ]);
  const bridge = spawn(shell as string, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: HOST_TOOLS_ENV,
    cwd: '/',
  });
  let bridgeError = '';
  bridge.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    if (bridgeError.length < 4096) bridgeError += chunk;
  });
  onCleanup(() => {
    bridge.kill('SIGKILL');
  });
  return ownNetworkNamespace(bridge, () => bridgeError);
}

/**
 * /proc/PID/ns/net of the bridge once unshare has made its namespace (until
 * then it is the host's, which the container must never join).
 */
async function ownNetworkNamespace(bridge: ChildProcess, stderr: () => string): Promise<string> {
  const host = readlinkSync('/proc/self/ns/net');
  for (let waited = 0; waited < 5_000; waited += 5) {
    if (bridge.exitCode !== null || bridge.signalCode !== null || bridge.pid === undefined) break;
    const path = `/proc/${bridge.pid}/ns/net`;
    let ns: string | undefined;
    try {
      ns = readlinkSync(path);
    } catch {
      ns = undefined;
    }
    if (ns !== undefined && ns !== host) return path;
    await sleep(5);
  }
  const detail = stderr().trim().split('\n').at(-1);
  throw new MintfsError(
    'ERR_SANDBOX_FAILED',
    `the gateway bridge did not start${detail ? `: ${detail}` : ''} (it needs unshare, ip and socat)`,
  );
}

function runtime(path: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(path, args, { stdio: 'ignore', env: HOST_TOOLS_ENV });
    child.once('error', () => resolve(127));
    child.once('close', (code) => resolve(code ?? 1));
  });
}
