/**
 * `mintfs run --runtime docker`: the agent in a Docker container, through
 * the `docker` CLI (DOCKER_HOST and the rest of the operator's Docker
 * settings honoured), with the guarantees the bubblewrap sandbox gives:
 *
 *   no network but loopback (`--network none`), where a bridge on
 *   127.0.0.1:8787 leads to the gateway: socat started from the host side
 *   inside the container's network namespace (nsenter --net), so the
 *   gateway's socket is never in the container (bounded, in a cgroup of its
 *   own, as the run's uid: gateway-bridge.ts); a non-root uid, no
 *   capabilities, no new privileges, the mintfs seccomp policy, a read-only
 *   root with scratch /tmp and /work, memory/pids/cpu limits, the token
 *   mount read-only at /secrets, the proxy and CA trust environment, and
 *   mintfs-run-init (native/helpers/run-init.c) as pid 1: it waits for the bridge,
 *   forwards signals to the command and exits with its status.
 *
 * dockerCreateArgs is pure (what exists is passed in), so tests can read
 * the policy; superviseDocker runs it.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { MintfsError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { SANDBOX_SECRETS, SANDBOX_WORK, GATEWAY_PORT } from './bwrap.js';
import { HOST_TOOLS_ENV, inCgroup, socatBridge, type ContainerRun } from './gateway-bridge.js';
import type { RunLimits } from './cgroup.js';
import { SANDBOX_CA_FILE, sandboxProxyEnv } from './sandbox-env.js';
import { SANDBOX_MOUNT_PARENT, type SecretsView } from './secrets-view.js';

export const CONTAINER_INIT = '/.mintfs-run-init';

export interface DockerSpec {
  readonly name: string;
  readonly image: string;
  readonly secrets: SecretsView;
  readonly uid: number;
  readonly gid: number;
  readonly workdir?: string | undefined;
  readonly caCertFile?: string | undefined;
  /** The mintfs seccomp policy as a Docker/OCI JSON profile file. */
  readonly seccompFile: string;
  /** mintfs-run-init (its copy on the run's stage). */
  readonly initFile: string;
  readonly limits: RunLimits;
  readonly env?: Readonly<Record<string, string>>;
  readonly command: readonly string[];
}

export function dockerCreateArgs(spec: DockerSpec): string[] {
  const env: Record<string, string> = {
    ...spec.env,
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: SANDBOX_WORK,
    ...sandboxProxyEnv(`http://127.0.0.1:${GATEWAY_PORT}`, spec.caCertFile !== undefined),
  };
  const args = [
    'create',
    '--name',
    spec.name,
    '--label',
    'io.mintfs.run=1',
    '--network',
    'none',
    '--hostname',
    'agent',
    '--user',
    `${spec.uid}:${spec.gid}`,
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    '--security-opt',
    `seccomp=${spec.seccompFile}`,
    '--read-only',
    // uid/gid: an image's own /tmp or /work (copied up) keeps its mode, often root's 0755.
    '--tmpfs',
    `/tmp:rw,nosuid,nodev,mode=1777,uid=${spec.uid},gid=${spec.gid}`,
    '--memory',
    String(spec.limits.memoryBytes),
    // No swap beyond the memory limit: a memory bomb meets the limit, not the disk.
    '--memory-swap',
    String(spec.limits.memoryBytes),
    '--pids-limit',
    String(spec.limits.pids),
    ...(spec.limits.cpus === undefined ? [] : ['--cpus', String(spec.limits.cpus)]),
    ...secretsMounts(spec.secrets),
    '--mount',
    `type=bind,source=${spec.initFile},target=${CONTAINER_INIT},readonly`,
    ...(spec.caCertFile === undefined
      ? []
      : ['--mount', `type=bind,source=${spec.caCertFile},target=${SANDBOX_CA_FILE},readonly`]),
    ...(spec.workdir === undefined
      ? ['--tmpfs', `${SANDBOX_WORK}:rw,nosuid,nodev,mode=0700,uid=${spec.uid},gid=${spec.gid}`]
      : ['--mount', `type=bind,source=${spec.workdir},target=${SANDBOX_WORK}`]),
    '--workdir',
    SANDBOX_WORK,
    '--entrypoint',
    CONTAINER_INIT,
  ];
  for (const [name, value] of Object.entries(env)) args.push('--env', `${name}=${value}`);
  // "--" after the image: a command that starts with "-" is never read as an option of the init.
  args.push('--', spec.image, '--', ...spec.command);
  return args;
}

function secretsMounts(view: SecretsView): string[] {
  if (view.kind === 'bind')
    return ['--mount', `type=bind,source=${view.dir},target=${SANDBOX_SECRETS},readonly`];
  return [
    '--mount',
    `type=bind,source=${view.parent},target=${SANDBOX_MOUNT_PARENT},readonly,bind-propagation=rslave`,
    '--mount',
    `type=bind,source=${view.links},target=${SANDBOX_SECRETS},readonly`,
  ];
}

/** The operator's Docker settings, for the docker CLI only (never the container). */
export function dockerCliEnv(): NodeJS.ProcessEnv {
  const names = [
    'PATH',
    'HOME',
    'DOCKER_HOST',
    'DOCKER_CONTEXT',
    'DOCKER_CONFIG',
    'DOCKER_CERT_PATH',
    'DOCKER_TLS_VERIFY',
  ];
  return Object.fromEntries(
    names.flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]]])),
  );
}

/**
 * Creates and starts the container, then bridges its loopback to the
 * gateway socket from the host side. Everything it makes is handed to
 * onCleanup (the container, the bridge), to be undone whatever happens.
 */
export async function startDockerRun(
  spec: DockerSpec,
  gatewaySocket: string,
  /** The cgroup.procs files of the bridge's cgroup (gateway-bridge.ts). */
  bridgeCgroup: readonly string[],
  logger: Logger,
  onCleanup: (cleanup: () => Promise<void> | void) => void,
): Promise<ContainerRun> {
  const bridgeCommand = socatBridge(gatewaySocket, spec);
  const created = await docker(dockerCreateArgs(spec));
  if (created.code !== 0)
    throw new MintfsError(
      'ERR_SANDBOX_FAILED',
      `docker create of image ${spec.image} failed: ${lastLine(created.stderr) || `exit ${created.code}`}`,
    );
  onCleanup(async () => {
    await docker(['rm', '--force', '--volumes', spec.name]);
  });
  // Its own process group: a terminal's Ctrl-C reaches mintfs, which
  // delivers it with `docker kill --signal`; the attached CLI keeps
  // streaming the output until the container ends (signalled itself, it
  // proxies and may stop streaming early), and `docker wait` gives the status.
  const attached = spawn('docker', ['start', '--attach', spec.name], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: dockerCliEnv(),
    cwd: '/',
    detached: true,
  });
  const exited = new Promise<number>((resolve) => {
    attached.once('error', () => resolve(125));
    attached.once('close', (code) => {
      void (async () => {
        // A container that never started (a bad mount, an image that will not run)
        // would keep `docker wait` waiting: only an exited one has a status to give.
        const state = await docker(['inspect', '--format', '{{.State.Status}}', spec.name]);
        if (state.stdout.trim() !== 'exited')
          return resolve(code === 0 || code === null ? 125 : code);
        const waited = await docker(['wait', spec.name]);
        const status = Number(waited.stdout.trim());
        resolve(waited.code === 0 && Number.isInteger(status) ? status : 125);
      })();
    });
  });
  let done = false;
  void exited.then(() => (done = true));

  // The container's init waits (5 s) for the bridge; start it as soon as there is a pid.
  let pid = 0;
  for (let waited = 0; pid === 0 && !done && waited < 10_000; waited += 20) {
    const inspected = await docker(['inspect', '--format', '{{.State.Pid}}', spec.name]);
    pid = inspected.code === 0 ? Number(inspected.stdout.trim()) || 0 : 0;
    if (pid === 0) await sleep(20);
  }
  // The pid is the engine's view: only enter that network namespace if the
  // process there is this container's (a remote or differently namespaced
  // engine, or a pid reused after a quick exit, must not get a bridge).
  const id = created.stdout.trim();
  if (pid > 0 && !processBelongsTo(pid, id)) {
    await docker(['kill', spec.name]);
    throw new MintfsError(
      'ERR_SANDBOX_FAILED',
      `the container's process (pid ${pid}) is not this host's: mintfs run needs a local Docker engine`,
    );
  }
  if (pid > 0) {
    const [shell, ...args] = inCgroup(bridgeCgroup, [
      'nsenter',
      `--net=/proc/${pid}/ns/net`,
      '--',
      ...bridgeCommand,
    ]);
    const bridge = spawn(shell as string, args, {
      stdio: 'ignore',
      env: HOST_TOOLS_ENV,
      cwd: '/',
    });
    bridge.once('error', (err) =>
      logger.error(
        { event: 'run-bridge-failed', detail: err.message },
        'the gateway bridge failed',
      ),
    );
    onCleanup(() => {
      bridge.kill('SIGKILL');
    });
  }
  return {
    exited,
    signal: (signal) => {
      if (!done) void docker(['kill', '--signal', signal, spec.name]);
    },
    kill: async () => {
      await docker(['kill', spec.name]);
    },
  };
}

function docker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'], env: dockerCliEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', (err) => resolve({ code: 127, stdout, stderr: err.message }));
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Whether /proc/PID/cgroup names the container (docker's cgroup paths carry its full id). */
function processBelongsTo(pid: number, containerId: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(containerId)) return false;
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(containerId);
  } catch {
    return false;
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}
