/**
 * An OCI runtime config (config.json) for an agent container under runc:
 * the token mount's parent directory bound read-only as a slave at
 * /run/mintfs (so the container follows daemon restarts; /secrets is a
 * symlink into it), a non-root user, no capabilities, no new privileges,
 * the mintfs seccomp profile, cgroup limits, a read-only root, and a
 * network namespace the caller prepared (loopback plus the gateway bridge).
 * The same config runs under gVisor's runsc for a stronger boundary.
 */
import * as z from 'zod';
import { ociSeccompProfile } from './seccomp-policy.js';
import { SANDBOX_CA_FILE, sandboxProxyEnv } from './sandbox-env.js';

export const CONTAINER_MINTFS_DIR = '/run/mintfs';
export const CONTAINER_GATEWAY = 'http://127.0.0.1:8787';

const HostPath = z.string().startsWith('/', 'must be an absolute path');

export const OciOptions = z.strictObject({
  rootfs: HostPath,
  /** The host directory holding the token mount (the shared parent). */
  mintfsDir: HostPath,
  /** The network namespace to join, e.g. /run/netns/mintfs-agent1. */
  netns: HostPath,
  uid: z.number().int().min(1, 'must not be root (0)'),
  gid: z.number().int().min(1, 'must not be root (0)'),
  memoryBytes: z
    .number()
    .int()
    .min(4 * 1024 * 1024, 'is below 4 MiB'),
  pids: z.number().int().min(1),
  /** CPUs, such as 0.5 or 2. */
  cpus: z.number().positive(),
  /** HTTPS interception: the CA certificate, bound as the container's only trust bundle. */
  caCert: HostPath.optional(),
  /** Extra read-only binds: host path to container path. */
  readOnlyBinds: z.array(z.tuple([HostPath, HostPath])).default([]),
  args: z.array(z.string()).min(1, 'name the command'),
  hostname: z
    .string()
    .regex(/^[a-z0-9-]{1,63}$/)
    .default('agent'),
});
export type OciOptions = z.input<typeof OciOptions>;

const CPU_PERIOD_US = 100_000;

export function ociConfig(input: OciOptions): Record<string, unknown> {
  const o = OciOptions.parse(input);
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: o.uid, gid: o.gid, additionalGids: [] },
      args: o.args,
      env: [
        'PATH=/usr/local/bin:/usr/bin:/bin',
        'HOME=/tmp',
        ...Object.entries(sandboxProxyEnv(CONTAINER_GATEWAY, o.caCert !== undefined)).map(
          ([name, value]) => `${name}=${value}`,
        ),
      ],
      cwd: '/tmp',
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }],
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
        destination: '/tmp',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k'],
      },
      {
        destination: '/run',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'mode=755'],
      },
      // A slave of the shared parent: later mounts (a restarted daemon) show up here.
      {
        destination: CONTAINER_MINTFS_DIR,
        type: 'bind',
        source: o.mintfsDir,
        options: ['rbind', 'ro', 'rslave', 'nosuid', 'nodev', 'noexec'],
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
      ...o.readOnlyBinds.map(([source, destination]) => ({
        destination,
        type: 'bind',
        source,
        options: ['rbind', 'ro', 'nosuid', 'nodev'],
      })),
    ],
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'network', path: o.netns },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'cgroup' },
      ],
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        memory: { limit: o.memoryBytes, swap: o.memoryBytes },
        pids: { limit: o.pids },
        cpu: { quota: Math.round(o.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US },
      },
      seccomp: ociSeccompProfile(),
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
