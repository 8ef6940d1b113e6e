/**
 * The system calls an agent never needs, denied in every sandbox mintfs sets
 * up: the single source for bubblewrap's BPF filter (built by
 * native/helpers/seccomp-bpf.c) and for the OCI profile runc applies. Everything
 * else is allowed: agents run compilers, interpreters and test suites, and a
 * short deny list of kernel attack surface breaks none of them.
 *
 * On top of this list: clone() with any namespace flag is denied,
 * clone3() answers ENOSYS (its flags live in memory a filter cannot read;
 * libc then falls back to clone()), and socket() refuses the families below.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MintfsError, describeError } from '../errors.js';

export const DENIED_SYSCALLS = [
  // mounts and the root: an agent must not rearrange what it sees
  'mount',
  'umount2',
  'pivot_root',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'move_mount',
  'open_tree',
  'mount_setattr',
  // namespaces: no nested sandboxes to escape the one it is in
  'unshare',
  'setns',
  // looking into or steering other processes (pid 1, the agent's supervisor,
  // is also non-dumpable: mintfs-run-init; this is the second wall)
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'pidfd_getfd',
  'kcmp',
  // the kernel keyring and eBPF
  'keyctl',
  'add_key',
  'request_key',
  'bpf',
  'perf_event_open',
  'userfaultfd',
  // kernels and modules
  'kexec_load',
  'kexec_file_load',
  'init_module',
  'finit_module',
  'delete_module',
  // the machine itself
  'reboot',
  'swapon',
  'swapoff',
  'acct',
  'settimeofday',
  'clock_settime',
  'clock_adjtime',
  'adjtimex',
  'syslog',
  'vhangup',
  'quotactl',
  // file handles bypass path-based confinement
  'open_by_handle_at',
  'name_to_handle_at',
  // io_uring: a second system call interface, which filters do not see into
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
] as const;

/**
 * Socket families refused by socket() (EAFNOSUPPORT). AF_VSOCK reaches the
 * host and other VMs, and network namespaces do not isolate it.
 */
export const DENIED_SOCKET_FAMILIES = [{ name: 'AF_VSOCK', value: 40 }] as const;
const EAFNOSUPPORT = 97;

// CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET
const NAMESPACE_FLAGS = [
  0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000,
];
const EPERM = 1;
const ENOSYS = 38;

/** The OCI/Docker profile as a file's text (mount-profiles/compose/seccomp.json, each run's copy). */
export function seccompProfileJson(): string {
  return `${JSON.stringify(ociSeccompProfile(), null, 2)}\n`;
}

/**
 * The same policy in the OCI runtime spec's `linux.seccomp` form (runc
 * compiles it; gVisor's sentry applies it with runsc --oci-seccomp).
 *
 * For gVisor (`kernel: 'gvisor'`) the clone3 rule is left out: Debian's
 * runsc (2022) answers every rule's match with EPERM, whatever its errnoRet,
 * and libc falls back from clone3 to clone only on ENOSYS, so the rule would
 * make every thread creation fail. gVisor does not implement clone3 at all
 * (ENOSYS of its own), so libc's fallback reaches the clone rules below as
 * on runc, and nothing is lost.
 */
export function ociSeccompProfile(kernel: 'linux' | 'gvisor' = 'linux'): Record<string, unknown> {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: [
      'SCMP_ARCH_X86_64',
      'SCMP_ARCH_X86',
      'SCMP_ARCH_X32',
      'SCMP_ARCH_AARCH64',
      'SCMP_ARCH_ARM',
    ],
    syscalls: [
      { names: [...DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      ...NAMESPACE_FLAGS.map((flag) => ({
        names: ['clone'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }],
      })),
      ...(kernel === 'gvisor'
        ? []
        : [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS }]),
      ...DENIED_SOCKET_FAMILIES.map((family) => ({
        names: ['socket'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EAFNOSUPPORT,
        args: [{ index: 0, value: family.value, op: 'SCMP_CMP_EQ' }],
      })),
    ],
  };
}

const BPF_HELPER = fileURLToPath(new URL('../../native/mintfs-seccomp-bpf', import.meta.url));

/** The policy as a BPF program for `bwrap --seccomp FD`. */
export async function seccompBpf(): Promise<Buffer> {
  try {
    const args = [
      ...DENIED_SYSCALLS,
      ...DENIED_SOCKET_FAMILIES.map((family) => `socket-family:${family.value}`),
    ];
    const { stdout } = await promisify(execFile)(BPF_HELPER, args, {
      encoding: 'buffer',
    });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new MintfsError(
      'ERR_SANDBOX_FAILED',
      `building the seccomp filter with ${BPF_HELPER} failed: ${stderr || describeError(err)} (npm run build compiles it; it needs libseccomp-dev)`,
      { cause: err },
    );
  }
}
