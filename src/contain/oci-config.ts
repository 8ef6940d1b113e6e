/**
 * The OCI runtime config (config.json) `mintfs run --runtime runc` (or
 * runsc, gVisor) writes for an agent container: the token mount at
 * /secrets read-only (or followed through its shared parent:
 * secrets-view.ts), a non-root user, no capabilities, no new privileges,
 * the mintfs seccomp profile, cgroup limits, a read-only root with scratch
 * /tmp and /work, masked /proc paths, a network namespace the caller
 * prepared (loopback plus the gateway bridge) or, for gVisor, the gateway's
 * socket bridged from inside, and mintfs-run-init as the first process. Pure: what exists on the host is passed in.
 */
import * as z from 'zod';
import { SANDBOX_GATEWAY_SOCKET, SANDBOX_INIT, SANDBOX_SECRETS, SANDBOX_WORK } from './bwrap.js';
import { ociSeccompProfile } from './seccomp-policy.js';
import { SANDBOX_CA_FILE, sandboxProxyEnv } from './sandbox-env.js';
import { SANDBOX_MOUNT_PARENT } from './secrets-view.js';

export const CONTAINER_GATEWAY = 'http://127.0.0.1:8787';
/** Where mintfs-run-init is bound: in the container's own /run tmpfs, not the image. */
export const OCI_INIT = SANDBOX_INIT;

const HostPath = z.string().startsWith('/', 'must be an absolute path');

export const OciOptions = z
  .strictObject({
    rootfs: HostPath,
    secrets: z.discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('bind'), dir: HostPath }),
      z.strictObject({
        kind: z.literal('follow'),
        parent: HostPath,
        entry: z.string().min(1),
        links: HostPath,
      }),
    ]),
    /**
     * The network namespace to join, e.g. /proc/PID/ns/net of the host-side
     * bridge (runc)...
     */
    netns: HostPath.optional(),
    /**
     * ...or the gateway's socket, bound into the container and bridged to
     * 127.0.0.1:8787 from inside by mintfs-run-init (gVisor, whose loopback
     * the host side cannot reach); the container then gets a namespace of its own.
     */
    gatewaySocket: HostPath.optional(),
    /** mintfs-run-init (its copy on the run's stage). */
    init: HostPath,
    uid: z.number().int().min(1, 'must not be root (0)'),
    gid: z.number().int().min(1, 'must not be root (0)'),
    memoryBytes: z
      .number()
      .int()
      .min(4 * 1024 * 1024, 'is below 4 MiB'),
    /** The container's cgroup pids limit (on the host: for gVisor, the sentry's and gofer's threads). */
    pids: z.number().int().min(1),
    /**
     * RLIMIT_NPROC of the agent's uid, counted by the kernel that runs it:
     * gVisor's sentry enforces it on the agent's own processes and threads,
     * which the host's pids cgroup never sees (they are goroutines there).
     */
    nproc: z.number().int().min(1).optional(),
    /** CPUs, such as 0.5 or 2; no limit when absent. */
    cpus: z.number().positive().optional(),
    /** HTTPS interception: the CA certificate, bound as the container's only trust bundle. */
    caCert: HostPath.optional(),
    /** A host directory bound read-write at /work; a tmpfs owned by the uid when absent. */
    workdir: HostPath.optional(),
    /** Extra environment (LANG, TERM). */
    env: z.record(z.string(), z.string()).default({}),
    args: z.array(z.string()).min(1, 'name the command'),
    /** The kernel the agent's system calls reach: the host's (runc) or gVisor's sentry (runsc). */
    kernel: z.enum(['linux', 'gvisor']).default('linux'),
    hostname: z
      .string()
      .regex(/^[a-z0-9-]{1,63}$/)
      .default('agent'),
  })
  // Exactly one way to the gateway: a prepared namespace or a socket to bridge from inside.
  .refine((o) => (o.netns === undefined) !== (o.gatewaySocket === undefined), {
    message: 'give netns or gatewaySocket, not both',
    path: ['netns'],
  });
export type OciOptions = z.input<typeof OciOptions>;

const CPU_PERIOD_US = 100_000;

export function ociConfig(input: OciOptions): Record<string, unknown> {
  const o = OciOptions.parse(input);
  const initOptions = o.gatewaySocket === undefined ? [] : ['--bridge', SANDBOX_GATEWAY_SOCKET];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: o.uid, gid: o.gid, additionalGids: [] },
      // "--": a command that starts with "-" is never read as an option of the init.
      args: [OCI_INIT, ...initOptions, '--', ...o.args],
      env: Object.entries({
        ...o.env,
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: SANDBOX_WORK,
        ...sandboxProxyEnv(CONTAINER_GATEWAY, o.caCert !== undefined),
      }).map(([name, value]) => `${name}=${value}`),
      cwd: SANDBOX_WORK,
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 },
        ...(o.nproc === undefined ? [] : [{ type: 'RLIMIT_NPROC', hard: o.nproc, soft: o.nproc }]),
      ],
      noNewPrivileges: true,
    },
    root: { path: o.rootfs, readonly: true },
    hostname: o.hostname,
    mounts: [
      {
        destination: '/proc',
        type: 'proc',
        source: 'proc',
        options: ['nosuid', 'noexec', 'nodev'],
      },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      {
        destination: '/sys',
        type: 'sysfs',
        source: 'sysfs',
        options: ['nosuid', 'noexec', 'nodev', 'ro'],
      },
      {
        // runc gives a tmpfs the mode of the image's directory (often 0755):
        // owned by the uid, it stays writable for the agent whatever that is.
        destination: '/tmp',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k', `uid=${o.uid}`, `gid=${o.gid}`],
      },
      {
        destination: '/run',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'mode=755'],
      },
      {
        destination: OCI_INIT,
        type: 'bind',
        source: o.init,
        options: ['bind', 'ro', 'nosuid', 'nodev'],
      },
      ...secretsMounts(o.secrets),
      ...(o.gatewaySocket === undefined
        ? []
        : [
            {
              destination: SANDBOX_GATEWAY_SOCKET,
              type: 'bind',
              source: o.gatewaySocket,
              options: ['bind', 'rw', 'nosuid', 'nodev', 'noexec'],
            },
          ]),
      o.workdir === undefined
        ? {
            destination: SANDBOX_WORK,
            type: 'tmpfs',
            source: 'tmpfs',
            options: ['nosuid', 'nodev', 'mode=0700', `uid=${o.uid}`, `gid=${o.gid}`],
          }
        : {
            destination: SANDBOX_WORK,
            type: 'bind',
            source: o.workdir,
            options: ['rbind', 'rw', 'nosuid', 'nodev'],
          },
      ...(o.caCert === undefined
        ? []
        : [
            {
              destination: SANDBOX_CA_FILE,
              type: 'bind',
              source: o.caCert,
              options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'],
            },
          ]),
    ],
    linux: {
      namespaces: [
        { type: 'pid' },
        o.netns === undefined ? { type: 'network' } : { type: 'network', path: o.netns },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'cgroup' },
      ],
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        memory: { limit: o.memoryBytes, swap: o.memoryBytes },
        pids: { limit: o.pids },
        ...(o.cpus === undefined
          ? {}
          : { cpu: { quota: Math.round(o.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US } }),
      },
      seccomp: ociSeccompProfile(o.kernel),
      rootfsPropagation: 'rslave',
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/proc/scsi',
        '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

function secretsMounts(secrets: z.output<typeof OciOptions>['secrets']): object[] {
  const options = ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'];
  if (secrets.kind === 'bind')
    return [{ destination: SANDBOX_SECRETS, type: 'bind', source: secrets.dir, options }];
  return [
    // A slave of the shared parent: later mounts (a restarted daemon) show up here.
    {
      destination: SANDBOX_MOUNT_PARENT,
      type: 'bind',
      source: secrets.parent,
      options: [...options, 'rslave'],
    },
    { destination: SANDBOX_SECRETS, type: 'bind', source: secrets.links, options },
  ];
}
