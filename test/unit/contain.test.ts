import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bwrapArgs, SANDBOX_SECRETS } from '../../src/contain/bwrap.js';
import { ociConfig } from '../../src/contain/oci-config.js';
import { CONTAINER_INIT, dockerCreateArgs } from '../../src/contain/docker.js';
import { SANDBOX_CA_FILE, TRUST_VARIABLES } from '../../src/contain/sandbox-env.js';
import { SANDBOX_MOUNT_PARENT, type SecretsView } from '../../src/contain/secrets-view.js';
import {
  DENIED_SYSCALLS,
  ociSeccompProfile,
  seccompBpf,
  seccompProfileJson,
} from '../../src/contain/seccomp-policy.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';

const SECRETS_DIR = '/run/mintfs-run/x/secrets';
const FOLLOW: SecretsView = {
  kind: 'follow',
  parent: '/run/mintfs/agent1',
  entry: 'secrets',
  links: '/run/mintfs-run/x/links',
};
const SPEC = {
  secrets: { kind: 'bind', dir: SECRETS_DIR } as SecretsView,
  gatewaySocket: '/run/mintfs-run/x/gateway.sock',
  uid: 1000,
  gid: 1000,
  command: ['sh', '-c', 'echo $0'],
  seccompFd: 3,
  infoFd: 4,
  init: '/run/mintfs-run/x/stage/init',
  hostRoot: new Map([['lib', { symlink: 'usr/lib' }]]),
};

const BASE_OCI = {
  rootfs: '/images/agent',
  secrets: { kind: 'bind', dir: SECRETS_DIR } as SecretsView,
  netns: '/proc/42/ns/net',
  init: '/i',
  uid: 1000,
  gid: 1000,
  memoryBytes: 64 * 1024 * 1024,
  pids: 64,
  args: ['sh'],
};

describe('sandbox policy', () => {
  it('bubblewrap: every namespace, no capabilities, the user, secrets read-only, seccomp', () => {
    const args = bwrapArgs(SPEC);
    const joined = args.join(' ');
    assert.ok(args.includes('--unshare-all'));
    assert.ok(!args.includes('--share-net'), 'no host network');
    assert.match(joined, /--cap-drop ALL/);
    assert.match(joined, /--uid 1000 --gid 1000/);
    assert.match(joined, new RegExp(`--ro-bind ${SECRETS_DIR} ${SANDBOX_SECRETS}`));
    assert.match(joined, /--seccomp 3/);
    assert.match(joined, /--die-with-parent/);
    assert.match(joined, /--new-session/);
    assert.match(joined, /--symlink usr\/lib \/lib/);
    assert.match(joined, /--setenv http_proxy http:\/\/127\.0\.0\.1:8787/);
    assert.match(joined, /--setenv NODE_USE_ENV_PROXY 1/);
    // pid 1 is mintfs-run-init (non-dumpable, inherited descriptors closed), not bubblewrap.
    assert.match(
      joined,
      /--ro-bind \/run\/mintfs-run\/x\/stage\/init \/run\/mintfs\/init --as-pid-1/,
    );
    const command = args.slice(args.indexOf('--'));
    assert.deepEqual(command.slice(0, 5), [
      '--',
      '/run/mintfs/init',
      '--no-wait',
      '--',
      '/usr/bin/bash',
    ]);
    assert.deepEqual(args.slice(-3), ['sh', '-c', 'echo $0'], 'the command is passed as words');
  });

  it('with an interception CA, both give the certificate as the only trust bundle and the same variables', () => {
    const ca = '/run/mintfs-run/x/ca.crt';
    const args = bwrapArgs({ ...SPEC, caCertFile: ca });
    const joined = args.join(' ');
    assert.match(joined, new RegExp(`--ro-bind ${ca} ${SANDBOX_CA_FILE}`));
    assert.ok(
      !joined.includes('--ro-bind-try /etc/ssl /etc/ssl'),
      "the host's trust store is bound",
    );
    assert.ok(bwrapArgs(SPEC).join(' ').includes('--ro-bind-try /etc/ssl /etc/ssl'));
    const oci = ociConfig({
      rootfs: '/r',
      secrets: SPEC.secrets,
      netns: '/proc/42/ns/net',
      init: '/opt/mintfs/dist/native/mintfs-run-init',
      uid: 1000,
      gid: 1000,
      memoryBytes: 64 * 1024 * 1024,
      pids: 64,
      cpus: 1,
      caCert: ca,
      args: ['sh'],
    }) as {
      process: { env: string[] };
      mounts: Array<{ destination: string; source?: string; options?: string[] }>;
    };
    for (const name of TRUST_VARIABLES) {
      assert.match(joined, new RegExp(`--setenv ${name} ${SANDBOX_CA_FILE}`));
      assert.ok(oci.process.env.includes(`${name}=${SANDBOX_CA_FILE}`), name);
    }
    assert.ok(oci.process.env.includes('HTTPS_PROXY=http://127.0.0.1:8787'));
    const bound = oci.mounts.find((m) => m.destination === SANDBOX_CA_FILE);
    assert.equal(bound?.source, ca);
    assert.ok(bound?.options?.includes('ro'));
  });

  it('docker: no network, the user, no capabilities, seccomp, read-only root, limits, the init, the command as words', () => {
    const args = dockerCreateArgs({
      name: 'mintfs-run-x',
      image: 'agent:1',
      secrets: SPEC.secrets,
      uid: 1879048200,
      gid: 1879048200,
      seccompFile: '/run/mintfs-run/x/seccomp.json',
      initFile: '/opt/mintfs/dist/native/mintfs-run-init',
      limits: { memoryBytes: 512 * 1024 * 1024, pids: 256, cpus: 1.5 },
      env: { TERM: 'xterm' },
      command: ['sh', '-c', 'echo $0', '--rm'],
    });
    const joined = args.join(' ');
    for (const expected of [
      '--network none',
      '--user 1879048200:1879048200',
      '--cap-drop ALL',
      '--security-opt no-new-privileges',
      '--security-opt seccomp=/run/mintfs-run/x/seccomp.json',
      '--read-only',
      `--memory ${512 * 1024 * 1024} --memory-swap ${512 * 1024 * 1024}`,
      '--pids-limit 256',
      '--cpus 1.5',
      `--entrypoint ${CONTAINER_INIT}`,
      'type=bind,source=/run/mintfs-run/x/secrets,target=/secrets,readonly',
      '--env HTTPS_PROXY=http://127.0.0.1:8787',
      '--env TERM=xterm',
    ])
      assert.ok(joined.includes(expected), expected);
    assert.ok(!joined.includes('--privileged') && !joined.includes('--network host'));
    // After `--`: the image, then the command exactly, its own flags read neither by docker nor the init.
    assert.deepEqual(args.slice(args.indexOf('--')), [
      '--',
      'agent:1',
      '--',
      'sh',
      '-c',
      'echo $0',
      '--rm',
    ]);
    assert.ok(!joined.includes('SSL_CERT_FILE'), 'no trust variables without interception');
  });

  it('runc: the user, no capabilities, no new privileges, seccomp, read-only root, limits, the init, the joined network namespace', () => {
    const oci = ociConfig({
      rootfs: '/images/agent',
      secrets: SPEC.secrets,
      netns: '/proc/42/ns/net',
      init: '/opt/mintfs/dist/native/mintfs-run-init',
      uid: 1879048200,
      gid: 1879048201,
      memoryBytes: 64 * 1024 * 1024,
      pids: 64,
      env: { TERM: 'xterm' },
      args: ['sh', '-c', 'echo $0', '--rm'],
    }) as {
      process: {
        user: { uid: number; gid: number };
        args: string[];
        env: string[];
        noNewPrivileges: boolean;
        capabilities: Record<string, string[]>;
      };
      root: { path: string; readonly: boolean };
      mounts: Array<{ destination: string; source?: string; type: string; options?: string[] }>;
      linux: {
        namespaces: Array<{ type: string; path?: string }>;
        resources: {
          memory: { limit: number; swap: number };
          pids: { limit: number };
          cpu?: unknown;
        };
        seccomp: unknown;
      };
    };
    assert.deepEqual(oci.process.user, { uid: 1879048200, gid: 1879048201, additionalGids: [] });
    assert.deepEqual(oci.process.args, ['/run/mintfs/init', '--', 'sh', '-c', 'echo $0', '--rm']);
    assert.equal(oci.process.noNewPrivileges, true);
    for (const set of Object.values(oci.process.capabilities)) assert.deepEqual(set, []);
    assert.deepEqual(oci.root, { path: '/images/agent', readonly: true });
    assert.deepEqual(
      oci.linux.namespaces.find((ns) => ns.type === 'network'),
      { type: 'network', path: '/proc/42/ns/net' },
    );
    for (const type of ['pid', 'mount', 'ipc', 'uts', 'cgroup'])
      assert.ok(
        oci.linux.namespaces.some((ns) => ns.type === type && ns.path === undefined),
        type,
      );
    assert.deepEqual(oci.linux.resources.memory, {
      limit: 64 * 1024 * 1024,
      swap: 64 * 1024 * 1024,
    });
    assert.deepEqual(oci.linux.resources.pids, { limit: 64 });
    assert.equal(oci.linux.resources.cpu, undefined, 'no cpu limit unless asked');
    assert.deepEqual(oci.linux.seccomp, ociSeccompProfile());
    const secrets = oci.mounts.find((m) => m.destination === SANDBOX_SECRETS);
    assert.equal(secrets?.source, SECRETS_DIR);
    assert.ok(secrets?.options?.includes('ro'));
    const work = oci.mounts.find((m) => m.destination === '/work');
    assert.equal(work?.type, 'tmpfs');
    assert.ok(work?.options?.includes('uid=1879048200') && work.options.includes('gid=1879048201'));
    assert.ok(oci.process.env.includes('TERM=xterm'));
    assert.ok(oci.process.env.includes('HOME=/work'));
    assert.throws(() => ociConfig({ ...BASE_OCI, uid: 0 }), /must not be root/);
  });

  it("gVisor: a namespace of its own, the gateway's socket bound in and bridged by pid 1, the process limit inside", () => {
    const rest = { ...BASE_OCI, netns: undefined };
    const oci = ociConfig({
      ...rest,
      gatewaySocket: '/run/mintfs-run/x/stage/gateway.sock',
      nproc: 32,
    }) as {
      process: { args: string[]; rlimits: Array<{ type: string; hard: number; soft: number }> };
      mounts: Array<{ destination: string; source: string; options: string[] }>;
      linux: { namespaces: Array<{ type: string; path?: string }> };
    };
    assert.deepEqual(oci.process.args.slice(0, 4), [
      '/run/mintfs/init',
      '--bridge',
      '/run/mintfs/gateway.sock',
      '--',
    ]);
    const socket = oci.mounts.find((m) => m.destination === '/run/mintfs/gateway.sock');
    assert.equal(socket?.source, '/run/mintfs-run/x/stage/gateway.sock');
    assert.deepEqual(
      oci.linux.namespaces.find((n) => n.type === 'network'),
      { type: 'network' },
      'a new network namespace, not a host path',
    );
    assert.deepEqual(
      oci.process.rlimits.find((r) => r.type === 'RLIMIT_NPROC'),
      { type: 'RLIMIT_NPROC', hard: 32, soft: 32 },
    );
    // runc's way has neither: the host-side bridge's namespace, no NPROC.
    const runc = ociConfig(BASE_OCI) as typeof oci;
    assert.equal(runc.process.args[1], '--');
    assert.ok(!runc.process.rlimits.some((r) => r.type === 'RLIMIT_NPROC'));
    // Exactly one way to the gateway.
    assert.throws(() => ociConfig(rest), /give netns or gatewaySocket, not both/);
    assert.throws(
      () => ociConfig({ ...BASE_OCI, gatewaySocket: '/s' }),
      /give netns or gatewaySocket/,
    );
  });

  it('a followed mount: its parent rslave and read-only, /secrets leading into it, on every runtime', () => {
    const bwrap = bwrapArgs({ ...SPEC, secrets: FOLLOW }).join(' ');
    assert.match(bwrap, new RegExp(`--ro-bind /run/mintfs/agent1 ${SANDBOX_MOUNT_PARENT}`));
    assert.match(bwrap, new RegExp(`--symlink ${SANDBOX_MOUNT_PARENT}/secrets ${SANDBOX_SECRETS}`));
    assert.ok(!bwrap.includes(SECRETS_DIR));

    const docker = dockerCreateArgs({
      name: 'mintfs-run-x',
      image: 'agent:1',
      secrets: FOLLOW,
      uid: 1000,
      gid: 1000,
      seccompFile: '/s.json',
      initFile: '/i',
      limits: { memoryBytes: 64 * 1024 * 1024, pids: 64 },
      command: ['sh'],
    }).join(' ');
    assert.ok(
      docker.includes(
        `type=bind,source=/run/mintfs/agent1,target=${SANDBOX_MOUNT_PARENT},readonly,bind-propagation=rslave`,
      ),
    );
    assert.ok(docker.includes(`type=bind,source=/run/mintfs-run/x/links,target=/secrets,readonly`));

    const oci = ociConfig({ ...BASE_OCI, secrets: FOLLOW }) as {
      mounts: Array<{ destination: string; source?: string; options?: string[] }>;
    };
    const parent = oci.mounts.find((m) => m.destination === SANDBOX_MOUNT_PARENT);
    assert.equal(parent?.source, '/run/mintfs/agent1');
    assert.ok(parent?.options?.includes('rslave') && parent.options.includes('ro'));
    assert.equal(
      oci.mounts.find((m) => m.destination === SANDBOX_SECRETS)?.source,
      '/run/mintfs-run/x/links',
    );
  });

  it('the compose example carries the current seccomp policy', () => {
    const file = join(REPO_ROOT, 'mount-profiles', 'compose', 'seccomp.json');
    assert.equal(readFileSync(file, 'utf8'), seccompProfileJson(), 'stale: npm run generate');
  });

  it('runc and bubblewrap deny the same system calls', async () => {
    const profile = ociSeccompProfile() as { syscalls: Array<{ names: string[]; action: string }> };
    assert.deepEqual(profile.syscalls[0]?.names, [...DENIED_SYSCALLS]);
    for (const must of [
      'mount',
      'ptrace',
      'process_vm_readv',
      'pidfd_getfd',
      'keyctl',
      'bpf',
      'unshare',
      'setns',
      'kexec_load',
      'init_module',
    ])
      assert.ok((DENIED_SYSCALLS as readonly string[]).includes(must), must);
    // The helper resolves every name (it fails on an unknown one) and emits whole BPF instructions.
    const bpf = await seccompBpf();
    assert.ok(bpf.length > 8 * DENIED_SYSCALLS.length);
    assert.equal(bpf.length % 8, 0);
  });
});
