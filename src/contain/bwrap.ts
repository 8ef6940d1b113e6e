/**
 * The bubblewrap command line for an agent sandbox, built from a spec (pure:
 * what exists on the host is passed in, so tests can check the arguments).
 *
 * Inside: the host's /usr read-only (with the merged-/usr symlinks), a few
 * /etc files a program needs to start, fresh /proc, /dev and /tmp, the
 * token mount at /secrets read-only, the gateway's unix socket, and a
 * workspace at /work. Every namespace is unshared: the network namespace has
 * only loopback, where a socat bridge on 127.0.0.1:8787 leads to the gateway
 * and nowhere else. No capabilities, a non-root uid, no new privileges
 * (bubblewrap always sets it), the seccomp filter, a new session (no TIOCSTI
 * into the caller's terminal), and death with the parent. pid 1 is
 * mintfs-run-init (`--as-pid-1`), not bubblewrap: it makes itself
 * non-dumpable and closes every inherited descriptor, so the agent (the same
 * uid) can neither read nor steer its supervisor, nor use what the
 * operator's process had open.
 */
import { SANDBOX_CA_FILE, sandboxProxyEnv } from './sandbox-env.js';
import { followedPath, SANDBOX_MOUNT_PARENT, type SecretsView } from './secrets-view.js';

export const GATEWAY_PORT = 8787;
export const SANDBOX_GATEWAY_SOCKET = '/run/mintfs/gateway.sock';
export const SANDBOX_SECRETS = '/secrets';
export const SANDBOX_WORK = '/work';
/** Where mintfs-run-init, every sandbox's pid 1, is bound (in the sandbox's own /run). */
export const SANDBOX_INIT = '/run/mintfs/init';

/** How the top-level directories of the host look: merged-/usr symlinks or real directories. */
export type HostRoot = ReadonlyMap<
  string,
  { readonly symlink?: string; readonly directory?: boolean }
>;

export interface SandboxSpec {
  readonly secrets: SecretsView;
  readonly gatewaySocket: string;
  readonly uid: number;
  readonly gid: number;
  /** A host directory bound read-write at /work; a fresh tmpfs when absent. */
  readonly workdir?: string | undefined;
  /** mintfs-run-init (its copy on the run's stage), run as pid 1. */
  readonly init: string;
  readonly command: readonly string[];
  /** File descriptor (in bwrap) carrying the seccomp BPF program. */
  readonly seccompFd: number;
  /** File descriptor bwrap writes its JSON info (child-pid) to. */
  readonly infoFd: number;
  readonly hostRoot: HostRoot;
  /** Extra environment (TERM, LANG) passed from the caller. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * HTTPS interception: the CA certificate (a copy in the run directory),
   * bound as the sandbox's only trust bundle in place of the host's /etc/ssl.
   */
  readonly caCertFile?: string | undefined;
}

const ROOT_ENTRIES = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
const ETC_FILES = [
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
  '/etc/ld.so.cache',
  '/etc/localtime',
  '/etc/alternatives',
  '/etc/ssl',
  '/etc/ca-certificates',
];
/** The host's trust store: left out when the interception CA is the only trust. */
const TRUST_STORE_DIRS = ['/etc/ssl', '/etc/ca-certificates'];

// Waits (up to 5 s) for the bridge to listen, so the command's first request cannot race it.
// A stop signal during the wait ends the launcher at once: bash would otherwise
// carry on after a child that did not die of it, and loop for the whole wait
// while mintfs run delivers the signal to every short-lived child (socat
// included), so the command would be killed only by the 5 s grace (137, not
// 130). Trapped signals are reset by exec: the command gets the defaults.
const LAUNCHER = `
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP; trap 'exit 131' QUIT
socat TCP-LISTEN:${GATEWAY_PORT},bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:${SANDBOX_GATEWAY_SOCKET} &
for _ in $(seq 500); do (exec 3<>/dev/tcp/127.0.0.1/${GATEWAY_PORT}) 2>/dev/null && break; sleep 0.01; done
exec "$@"
`;

export function bwrapArgs(spec: SandboxSpec): string[] {
  const args = [
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--uid',
    String(spec.uid),
    '--gid',
    String(spec.gid),
    '--hostname',
    'agent',
    '--ro-bind',
    '/usr',
    '/usr',
  ];
  for (const name of ROOT_ENTRIES) {
    const entry = spec.hostRoot.get(name);
    if (entry?.symlink !== undefined) args.push('--symlink', entry.symlink, `/${name}`);
    else if (entry?.directory) args.push('--ro-bind', `/${name}`, `/${name}`);
  }
  const intercepting = spec.caCertFile !== undefined;
  for (const file of ETC_FILES)
    if (!intercepting || !TRUST_STORE_DIRS.includes(file)) args.push('--ro-bind-try', file, file);
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--tmpfs', '/run');
  if (spec.secrets.kind === 'bind') args.push('--ro-bind', spec.secrets.dir, SANDBOX_SECRETS);
  else
    // bubblewrap's mounts are slaves already: the parent's later mounts show through.
    args.push(
      '--ro-bind',
      spec.secrets.parent,
      SANDBOX_MOUNT_PARENT,
      '--symlink',
      followedPath(spec.secrets),
      SANDBOX_SECRETS,
    );
  args.push('--bind', spec.gatewaySocket, SANDBOX_GATEWAY_SOCKET);
  if (spec.caCertFile !== undefined) args.push('--ro-bind', spec.caCertFile, SANDBOX_CA_FILE);
  if (spec.workdir !== undefined) args.push('--bind', spec.workdir, SANDBOX_WORK);
  else args.push('--tmpfs', SANDBOX_WORK);
  args.push('--chdir', SANDBOX_WORK, '--clearenv');
  const env: Record<string, string> = {
    ...spec.env,
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: SANDBOX_WORK,
    ...sandboxProxyEnv(`http://127.0.0.1:${GATEWAY_PORT}`, intercepting),
  };
  for (const [name, value] of Object.entries(env)) args.push('--setenv', name, value);
  args.push('--ro-bind', spec.init, SANDBOX_INIT, '--as-pid-1');
  args.push('--seccomp', String(spec.seccompFd), '--info-fd', String(spec.infoFd));
  args.push('--', SANDBOX_INIT, '--no-wait', '--');
  args.push('/usr/bin/bash', '-c', LAUNCHER, 'mintfs-run', ...spec.command);
  return args;
}
