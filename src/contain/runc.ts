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
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MintfsError } from '../errors.js';
import type { Logger } from '../log/logger.js';
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
  /** The cgroup.procs files of the bridge's cgroup (gateway-bridge.ts). */
  readonly bridgeCgroup: readonly string[];
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
  const netns = await ownNetworkNamespace(bridge, () => bridgeError);

  mkdirSync(spec.bundleDir, { mode: 0o700 });
  const configFile = join(spec.bundleDir, 'config.json');
  onCleanup(() => {
    rmSync(configFile, { force: true });
    rmdirSync(spec.bundleDir);
  });
  writeFileSync(configFile, JSON.stringify(ociConfig({ ...spec.config, netns })), {
    mode: 0o600,
  });

  // Its own process group: a terminal's Ctrl-C reaches mintfs, which
  // delivers it to the container's init with `runc kill`.
  const container = spawn(runtimePath, ['run', '--bundle', spec.bundleDir, spec.name], {
    stdio: ['inherit', 'inherit', 'inherit'],
    env: HOST_TOOLS_ENV,
    cwd: '/',
    detached: true,
  });
  onCleanup(async () => {
    await runtime(runtimePath, ['delete', '--force', spec.name]);
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
  return {
    exited,
    signal: (signal) => {
      if (!done) void runtime(runtimePath, ['kill', spec.name, signal]);
    },
    kill: async () => {
      if (!done) await runtime(runtimePath, ['kill', spec.name, 'SIGKILL']);
    },
  };
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
