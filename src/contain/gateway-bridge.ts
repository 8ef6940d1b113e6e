/**
 * The bridge from a container's loopback to the gateway: socat listening on
 * 127.0.0.1:8787 inside the container's network namespace, started from the
 * host side (so the gateway's socket is never in the container), forwarding
 * each connection to the gateway's unix socket. Docker and runc both use it.
 */
import { MintfsError } from '../errors.js';
import { GATEWAY_PORT } from './bwrap.js';

/**
 * socat reads ',' ':' '!' and quotes in an address as syntax: a socket path
 * holding them would connect somewhere else, or carry options.
 */
const SOCAT_SAFE_PATH = /^\/[A-Za-z0-9._/@+-]+$/;

/** socat and its arguments; the gateway socket's path must be plain. */
export function socatBridge(gatewaySocket: string): string[] {
  if (!SOCAT_SAFE_PATH.test(gatewaySocket))
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `--gateway-socket ${gatewaySocket}: use a path of letters, digits and ._/@+- only (the bridge's socat reads others as syntax)`,
    );
  return [
    'socat',
    `TCP-LISTEN:${GATEWAY_PORT},bind=127.0.0.1,reuseaddr,fork`,
    `UNIX-CONNECT:${gatewaySocket}`,
  ];
}

/** PATH for the host-side helpers (nsenter, unshare, ip, socat). */
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
