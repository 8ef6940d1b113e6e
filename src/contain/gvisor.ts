/**
 * What `mintfs run --runtime runsc` asks of gVisor beyond the OCI bundle it
 * shares with runc: runsc's own flags, and the platform (how the sentry
 * traps the agent's system calls).
 *
 * - `--network=none`: the sandbox gets gVisor's own network stack with
 *   loopback alone; the agent never touches a host network stack. runsc's
 *   `--network=sandbox` copies the interfaces of a namespace the caller made
 *   (runc's way), but Debian's runsc (2022) refuses that on kernels since 6.x
 *   ("cannot run with network enabled in root network namespace": it tells
 *   the root namespace by /proc/sys/net/core/rmem_default, which newer
 *   kernels show in every namespace, gVisor issue 10704), and netstack would
 *   answer 127.0.0.1 itself anyway, out of reach of a host-side bridge. So
 *   the bridge runs inside (mintfs-run-init --bridge, native/helpers/run-bridge.c).
 * - `--host-uds=open`: the gofer may connect the sandbox to host unix
 *   sockets bound into it: the gateway's, the one way out. (Without it runsc
 *   refuses to bind a socket at all.) No socket can be created on the host.
 * - `--oci-seccomp`: runsc ignores the bundle's seccomp profile unless told;
 *   with it, the sentry applies the profile to the agent's system calls.
 * - `--dcache=0`: gVisor keeps one host file handle per cached path and
 *   reads it for every process whose open it joined there (docs/containment.md,
 *   "Tokens through gVisor's gofer"), so the mount mints per read for gVisor
 *   (src/fs/token-reads.ts). Fewer shared handles still help: the native
 *   backend shows runsc's gofer a new inode number per lookup
 *   (native/addon/session.c), which makes gVisor drop the cached path and
 *   open afresh, and without a dentry cache a path nobody holds open is
 *   looked up afresh.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { MintfsError } from '../errors.js';
import { HOST_TOOLS_ENV } from './gateway-bridge.js';

/** Platforms some runsc knows; which this one knows is asked of it (gvisorPlatforms). */
export const GVISOR_PLATFORMS = ['systrap', 'ptrace', 'kvm'] as const;
export type GvisorPlatform = (typeof GVISOR_PLATFORMS)[number];

/** runsc's global flags for a run on `platform`. */
export function runscFlags(platform: GvisorPlatform): string[] {
  return [
    `--platform=${platform}`,
    '--network=none',
    '--host-uds=open',
    '--oci-seccomp',
    '--dcache=0',
  ];
}

/**
 * The platforms this runsc supports, from its own flag help ("specifies which
 * platform to use: ptrace (default), kvm").
 */
export function gvisorPlatforms(runsc: string): GvisorPlatform[] {
  const result = spawnSync(runsc, ['flags'], {
    env: HOST_TOOLS_ENV,
    encoding: 'utf8',
    timeout: 10_000,
  });
  const help = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  const line = /specifies which platform to use:([^\n]*)/.exec(help)?.[1] ?? '';
  return GVISOR_PLATFORMS.filter((name) => new RegExp(`\\b${name}\\b`).test(line));
}

/**
 * The platform to run on: the operator's choice when this runsc has it and
 * the host can give it, else a refusal that says what would work. By
 * default the fastest that needs nothing of the host: systrap where runsc
 * has it (2023 on), else ptrace. KVM is never a default: it needs /dev/kvm,
 * and Debian's runsc (2022) hangs starting a sandbox on a current kernel
 * although /dev/kvm is there (run-sandbox.ts's start deadline reports it).
 */
export function choosePlatform(
  runsc: string,
  requested: GvisorPlatform | undefined,
  kvmDevice = '/dev/kvm',
): GvisorPlatform {
  const known = gvisorPlatforms(runsc);
  if (known.length === 0)
    throw new MintfsError(
      'ERR_SANDBOX_FAILED',
      `${runsc} did not name its platforms (runsc flags); is it gVisor's runsc?`,
    );
  if (requested === undefined) return known.includes('systrap') ? 'systrap' : 'ptrace';
  if (!known.includes(requested))
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `--gvisor-platform ${requested}: this runsc supports ${known.join(', ')}`,
    );
  if (requested === 'kvm') {
    try {
      accessSync(kvmDevice, constants.R_OK | constants.W_OK);
    } catch {
      throw new MintfsError(
        'ERR_INPUT_INVALID',
        `--gvisor-platform kvm: ${kvmDevice} is missing or not usable here (no hardware virtualisation, or nested virtualisation is off); use ${known.includes('systrap') ? 'systrap' : 'ptrace'}`,
      );
    }
  }
  return requested;
}
