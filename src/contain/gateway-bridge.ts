/**
 * The bridge from a container's loopback to the gateway: socat listening on
 * 127.0.0.1:8787 inside the container's network namespace, started from the
 * host side (so the gateway's socket is never in the container), forwarding
 * each connection to the gateway's unix socket. Docker and runc both use it.
 *
 * socat forks a process per connection, on the host, outside the
 * container's limits, so the agent could make it fork without end. It is
 * bounded three ways: at most BRIDGE_CONNECTIONS connections at once
 * (socat's max-children: more wait, unaccepted, in the listen queue), a
 * cgroup of the run's own with pids and memory limits (BRIDGE_LIMITS) that
 * the bridge joins before it starts, and the run's uid instead of root (the
 * uid `mintfs run` has already checked can reach the gateway socket).
 */
import { MintfsError } from '../errors.js';
import { GATEWAY_PORT } from './bwrap.js';
import type { RunLimits } from './cgroup.js';

/** Connections the bridge serves at once; an agent's HTTP clients pool far fewer. */
export const BRIDGE_CONNECTIONS = 64;

/** The bridge's cgroup: its listener, a child per connection and a little slack. */
export const BRIDGE_LIMITS: RunLimits = {
  pids: BRIDGE_CONNECTIONS + 8,
  memoryBytes: 256 * 1024 * 1024,
};

/**
 * socat reads ',' ':' '!' and quotes in an address as syntax: a socket path
 * holding them would connect somewhere else, or carry options.
 */
const SOCAT_SAFE_PATH = /^\/[A-Za-z0-9._/@+-]+$/;

/** Refuses a gateway socket path socat would misread (before anything is made for the run). */
export function checkBridgeSocket(gatewaySocket: string): void {
  if (!SOCAT_SAFE_PATH.test(gatewaySocket))
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `--gateway-socket ${gatewaySocket}: use a path of letters, digits and ._/@+- only (the bridge's socat reads others as syntax)`,
    );
}

export interface BridgeUser {
  readonly uid: number;
  readonly gid: number;
}

/** socat and its arguments, run as `user`; the gateway socket's path must be plain. */
export function socatBridge(gatewaySocket: string, user: BridgeUser): string[] {
  checkBridgeSocket(gatewaySocket);
  return [
    'setpriv',
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    '--clear-groups',
    '--no-new-privs',
    'socat',
    `TCP-LISTEN:${GATEWAY_PORT},bind=127.0.0.1,reuseaddr,fork,max-children=${BRIDGE_CONNECTIONS}`,
    `UNIX-CONNECT:${gatewaySocket}`,
  ];
}

/**
 * `command`, run by a shell that first moves itself into the cgroup (each
 * of `procsFiles`), so the command and everything it forks is inside from
 * its first instruction.
 */
export function inCgroup(procsFiles: readonly string[], command: readonly string[]): string[] {
  return [
    '/bin/sh',
    '-c',
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done; exec "$@"',
    'mintfs-bridge',
    String(procsFiles.length),
    ...procsFiles,
    ...command,
  ];
}

/** PATH for the host-side helpers (nsenter, unshare, ip, socat, setpriv). */
export const HOST_TOOLS_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } as const;

/** A container started by `mintfs run`, as run-sandbox.ts supervises it. */
export interface ContainerRun {
  /** Exit status to leave with (128+N for signal N). */
  readonly exited: Promise<number>;
  /** Delivers a signal to the container's init, which passes it to the command. */
  signal(signal: NodeJS.Signals): void;
  /** Kills the container (after the stop grace). */
  kill(): Promise<void>;
}
