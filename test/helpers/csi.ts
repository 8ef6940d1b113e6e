/**
 * A real `mintfs csi` node plugin on a unix socket, driven the way kubelet
 * drives one, and "pods": processes in their own mount namespace and in a
 * cgroup named the way kubelet names a pod's, reading through a bind of the
 * published target as a container's /secrets would.
 *
 * The plugin runs in a cgroup of its own, standing for its container: kill()
 * kills every process in it, as the container runtime does. The volumes'
 * mount daemons are moved to another cgroup (--daemon-cgroup), as in the
 * DaemonSet.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  writeFileSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { initKeyring } from '../../src/keys/keyring.js';
import { processStart } from '../../src/csi/volume-daemons.js';
import { detachMount, topMountAt } from '../../src/mounts/mount-table.js';
import { CLI, REPO_ROOT } from './paths.js';
import { pollUntil } from './poll.js';
import { tempDir, type Teardown } from './temp.js';

export const PROFILE = `agent: placeholder
ttl: 5m
files:
  github/token:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/repos/acme/**"]
`;

/** Where cgroups are made: the unified hierarchy, else v1's pids one (which the mount ranks first). */
const CGROUP_ROOT = existsSync('/sys/fs/cgroup/cgroup.controllers')
  ? '/sys/fs/cgroup'
  : '/sys/fs/cgroup/pids';

export type CallResult<T = Record<string, unknown>> =
  { ok: true; value: T } | { ok: false; code: grpc.status; details: string };

export interface CsiClient {
  identity(method: string, request?: object): Promise<CallResult>;
  node(method: string, request?: object): Promise<CallResult>;
  /** The status of a call to any method path (an empty request), such as one the plugin does not serve. */
  status(path: string): Promise<grpc.status>;
  close(): void;
}

export function csiClient(socket: string): CsiClient {
  const definition = protoLoader.loadSync(join(REPO_ROOT, 'src', 'csi', 'csi.proto'), {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const csi = (
    grpc.loadPackageDefinition(definition) as unknown as {
      csi: { v1: Record<'Identity' | 'Node', grpc.ServiceClientConstructor> };
    }
  ).csi.v1;
  const identity = new csi.Identity(`unix://${socket}`, grpc.credentials.createInsecure());
  const node = new csi.Node(`unix://${socket}`, grpc.credentials.createInsecure());
  const call =
    (client: grpc.Client) =>
    (method: string, request: object = {}): Promise<CallResult> =>
      new Promise((resolve) => {
        type Unary = (
          request: object,
          options: grpc.CallOptions,
          callback: (err: grpc.ServiceError | null, value: Record<string, unknown>) => void,
        ) => void;
        const fn = (client as unknown as Record<string, Unary | undefined>)[method];
        if (fn === undefined) throw new Error(`no method ${method}`);
        fn.call(client, request, { deadline: Date.now() + 60_000 }, (err, value) =>
          resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, value }),
        );
      });
  return {
    identity: call(identity),
    node: call(node),
    status: (path) =>
      new Promise((resolve) =>
        node.makeUnaryRequest(
          path,
          (value: Buffer) => value,
          (value: Buffer) => value,
          Buffer.alloc(0),
          (err) => resolve(err ? err.code : grpc.status.OK),
        ),
      ),
    close: () => {
      identity.close();
      node.close();
    },
  };
}

/** A cgroup made for the test (under one test-owned root), removed with every process in it killed. */
export interface TestCgroup {
  readonly dir: string;
  pids(): number[];
  killAll(): Promise<void>;
}

export function makeCgroup(teardown: Teardown, root: string, relative: string): TestCgroup {
  const dir = join(root, relative);
  const made: string[] = [];
  let current = root;
  for (const part of relative.split('/')) {
    current = join(current, part);
    if (!existsSync(current)) {
      mkdirSync(current);
      made.push(current);
    }
  }
  const pids = () =>
    readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  // A killed process reparented to this machine's init stays a zombie until init reaps it.
  const live = () => pids().filter((pid) => processStart(pid) !== undefined);
  const killAll = async () => {
    for (const pid of live())
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    await pollUntil(`cgroup ${dir} to have no live process`, () => live().length === 0);
  };
  teardown.add(async () => {
    await killAll();
    // rmdir (EBUSY) waits for the zombies to be reaped.
    const deepestFirst = [...made].reverse();
    await pollUntil(
      `cgroup ${dir} to be removed`,
      () => {
        for (const path of deepestFirst)
          try {
            if (existsSync(path)) rmdirSync(path);
          } catch {
            return false;
          }
        return true;
      },
      60_000,
    );
  });
  return { dir, pids: live, killAll };
}

/** A root for one test's cgroups: `<hierarchy>/mintfs-csi-<random>`. */
export function cgroupRoot(teardown: Teardown): string {
  const root = join(CGROUP_ROOT, `mintfs-csi-${randomBytes(4).toString('hex')}`);
  mkdirSync(root);
  teardown.add(() => rmdirSync(root));
  return root;
}

export interface PluginFixture {
  readonly dir: string;
  readonly kubeletDir: string;
  readonly keysDir: string;
  readonly profilesDir: string;
  readonly policyFile: string;
  readonly stateDir: string;
  readonly socket: string;
  readonly cgroups: string;
  readonly daemonCgroup: TestCgroup;
  client: CsiClient;
  /** Starts the plugin (again); resolves once Probe answers. */
  start(): Promise<void>;
  /** SIGKILL to every process of the plugin's "container" (its cgroup). */
  kill(): Promise<void>;
  log(): string;
  writePolicy(text: string): void;
}

export async function startPlugin(
  teardown: Teardown,
  options: { policy?: (profilesDir: string) => string } = {},
): Promise<PluginFixture> {
  const dir = tempDir(teardown, 'mintfs-csi-');
  chmodSync(dir, 0o755);
  const kubeletDir = join(dir, 'kubelet');
  const keysDir = join(dir, 'keys');
  const profilesDir = join(dir, 'profiles');
  const stateDir = join(dir, 'state');
  const socket = join(dir, 'plugin', 'csi.sock');
  const policyFile = join(dir, 'policy.yaml');
  mkdirSync(join(kubeletDir, 'pods'), { recursive: true });
  mkdirSync(profilesDir);
  initKeyring(keysDir, new Date());
  writeFileSync(join(profilesDir, 'github-readonly.yaml'), PROFILE);
  writeFileSync(join(profilesDir, 'github-other.yaml'), PROFILE);
  const writePolicy = (text: string) => {
    // Replaced, not rewritten in place, as a ConfigMap update does.
    writeFileSync(`${policyFile}.new`, text);
    spawnSync('mv', [`${policyFile}.new`, policyFile]);
  };
  writePolicy(
    options.policy?.(profilesDir) ??
      `profiles: ${profilesDir}
bindings:
  - profile: github-readonly
    namespaces: [agents]
    serviceAccounts: [coder]
`,
  );
  const cgroups = cgroupRoot(teardown);
  const daemonCgroup = makeCgroup(teardown, cgroups, 'mintfs-volumes');
  const pluginCgroup = makeCgroup(teardown, cgroups, 'plugin-container');
  // Last to go (registered first after the cgroups): every volume the test left, unmounted.
  teardown.add(async () => {
    await daemonCgroup.killAll();
    const pods = join(kubeletDir, 'pods');
    for (const uid of existsSync(pods) ? readdirSync(pods) : []) {
      const csiDir = join(pods, uid, 'volumes', 'kubernetes.io~csi');
      for (const name of existsSync(csiDir) ? readdirSync(csiDir) : []) {
        const target = join(csiDir, name, 'mount');
        while (topMountAt(target)) await detachMount(target);
      }
    }
  });
  const logFile = join(dir, 'plugin.log');
  let client = csiClient(socket);
  teardown.add(() => client.close());
  teardown.add(() => pluginCgroup.killAll());
  const fixture: PluginFixture = {
    dir,
    kubeletDir,
    keysDir,
    profilesDir,
    policyFile,
    stateDir,
    socket,
    cgroups,
    daemonCgroup,
    get client() {
      return client;
    },
    set client(next) {
      client = next;
    },
    log: () => readFileSync(logFile, 'utf8'),
    writePolicy,
    start: async () => {
      const log = openSync(logFile, 'a');
      const child = spawn(
        'sh',
        [
          '-c',
          'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
          'sh',
          pluginCgroup.dir,
          process.execPath,
          CLI,
          'csi',
          '--endpoint',
          `unix://${socket}`,
          '--keys',
          keysDir,
          '--policy',
          policyFile,
          '--state-dir',
          stateDir,
          '--kubelet-dir',
          kubeletDir,
          '--node-id',
          'node-1',
          '--daemon-cgroup',
          daemonCgroup.dir,
        ],
        { stdio: ['ignore', log, log], env: { ...process.env, MINTFS_LOG_LEVEL: 'debug' } },
      );
      closeSync(log);
      let exited = false;
      child.once('exit', () => (exited = true));
      client.close();
      client = csiClient(socket);
      await pollUntil(
        'the CSI plugin to answer Probe',
        async () => {
          if (exited) throw new Error(`the plugin exited: ${readFileSync(logFile, 'utf8')}`);
          if (!existsSync(socket)) return false;
          const probe = await client.identity('Probe');
          return probe.ok;
        },
        30_000,
      );
    },
    kill: () => pluginCgroup.killAll(),
  };
  await fixture.start();
  return fixture;
}

export interface KubeletPod {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export function newPod(namespace = 'agents', serviceAccount = 'coder'): KubeletPod {
  const uid = randomUUID();
  return { uid, name: `agent-${uid.slice(0, 5)}`, namespace, serviceAccount };
}

/** What kubelet sends for an inline CSI volume of `pod` (csi_mounter.go): paths, context, access mode. */
export function kubeletPublish(
  plugin: Pick<PluginFixture, 'kubeletDir' | 'client'>,
  pod: KubeletPod,
  attributes: Record<string, string> = { profile: 'github-readonly' },
  volumeName = 'secrets',
) {
  const volumeDir = join(
    plugin.kubeletDir,
    'pods',
    pod.uid,
    'volumes',
    'kubernetes.io~csi',
    volumeName,
  );
  const targetPath = join(volumeDir, 'mount');
  // Inline volumes get csi-<sha256 of pod uid, driver and volume name>.
  const volumeId = `csi-${createHash('sha256').update(`${pod.uid}csi.mintfs.dev${volumeName}`).digest('hex')}`;
  const request = {
    volumeId,
    targetPath,
    volumeCapability: {
      mount: { fsType: '', mountFlags: [] },
      accessMode: { mode: 'SINGLE_NODE_WRITER' },
    },
    readonly: true,
    volumeContext: {
      ...attributes,
      'csi.storage.k8s.io/pod.name': pod.name,
      'csi.storage.k8s.io/pod.namespace': pod.namespace,
      'csi.storage.k8s.io/pod.uid': pod.uid,
      'csi.storage.k8s.io/serviceAccount.name': pod.serviceAccount,
      'csi.storage.k8s.io/ephemeral': 'true',
    },
  };
  return {
    volumeId,
    targetPath,
    request,
    /** kubelet makes the volume's directory and its vol_data.json, then calls NodePublishVolume. */
    publish: () => {
      mkdirSync(volumeDir, { recursive: true, mode: 0o750 });
      writeFileSync(
        join(volumeDir, 'vol_data.json'),
        JSON.stringify({ driverName: 'csi.mintfs.dev', volumeHandle: volumeId }),
      );
      return plugin.client.node('NodePublishVolume', request);
    },
    unpublish: () => plugin.client.node('NodeUnpublishVolume', { volumeId, targetPath }),
  };
}

/** kubelet's cgroup for one container of a pod: the systemd driver's names, or cgroupfs'. */
export function podCgroupPath(pod: KubeletPod, driver: 'systemd' | 'cgroupfs'): string {
  const container = randomBytes(32).toString('hex');
  const underscored = pod.uid.replaceAll('-', '_');
  return driver === 'systemd'
    ? `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${underscored}.slice/cri-containerd-${container}.scope`
    : `kubepods/burstable/pod${pod.uid}/${container}`;
}

/**
 * A container of a pod: a process that joins `cgroup`, enters a mount
 * namespace of its own and binds the published target at its /secrets (a
 * private bind, as a container's volume mount is), then runs `script` with
 * $1 the token file.
 */
function podCommand(
  cgroup: TestCgroup,
  target: string,
  root: string,
  script: string,
  extra: string[],
) {
  const secrets = join(root, 'secrets');
  mkdirSync(secrets, { recursive: true });
  return [
    'sh',
    [
      '-c',
      'echo $$ > "$1/cgroup.procs" && shift && exec unshare --mount --propagation private "$@"',
      'sh',
      cgroup.dir,
      'bash',
      '-c',
      `mount --bind "$1" "$2" || exit 91; shift; f="$1/github/token"; shift; set -- "$f" "$@"; ${script}`,
      'pod',
      target,
      secrets,
      ...extra,
    ],
  ] as const;
}

/** One read of the token inside the pod: cat's status, output and error. */
export function readInPod(cgroup: TestCgroup, target: string, root: string) {
  const [command, args] = podCommand(cgroup, target, root, 'exec cat -- "$1"', []);
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export interface PodLoop {
  samples(): ReadonlyArray<{ ok: boolean; text: string }>;
  stop(): Promise<ReadonlyArray<{ ok: boolean; text: string }>>;
}

/** The pod reading its token in a loop, as fast as it can, until stopped. */
export async function startPodLoop(
  teardown: Teardown,
  cgroup: TestCgroup,
  target: string,
  root: string,
): Promise<PodLoop> {
  const stopFile = join(root, 'stop');
  const loop = `while [ ! -e "$2" ]; do
  if t=$(cat -- "$1" 2>&1) && [ -n "$t" ]; then r=ok; else r=fail; fi
  printf '%s %s\\n' "$r" "\${t//$'\\n'/ }"
done`;
  const [command, args] = podCommand(cgroup, target, root, loop, [stopFile]);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const samples: Array<{ ok: boolean; text: string }> = [];
  let partial = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const [result, ...rest] = line.split(' ');
      samples.push({ ok: result === 'ok', text: rest.join(' ') });
    }
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  teardown.add(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  await pollUntil('the pod to read', () => samples.length > 0 || child.exitCode !== null, 10_000);
  if (child.exitCode !== null) throw new Error(`the pod exited ${child.exitCode}: ${stderr}`);
  return {
    samples: () => samples,
    stop: async () => {
      writeFileSync(stopFile, '');
      await pollUntil(
        'the pod loop to stop',
        () => child.exitCode !== null || child.signalCode !== null,
        30_000,
      );
      await exited;
      return samples;
    },
  };
}
