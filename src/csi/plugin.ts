/**
 * The CSI node plugin: the Identity and Node services of CSI v1 over gRPC on
 * a unix socket, for kubelet (through node-driver-registrar). Inline
 * ephemeral volumes only, read-only only, no controller: each published
 * volume is a mintfs mount serving one profile to one pod.
 */
import { chmodSync, mkdirSync, realpathSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { MintfsError, describeError, isMintfsError } from '../errors.js';
import { loadKeyring } from '../keys/keyring.js';
import type { Logger } from '../log/logger.js';
import { requireRoot } from '../daemon/mount-daemon.js';
import { Reloadable, directoryFingerprint, fileFingerprint } from '../util/reloadable.js';
import { daemonCgroupDirs } from './daemon-cgroup.js';
import { grpcStatusFor } from './grpc-status.js';
import { NodeVolumes } from './node-volumes.js';
import { loadPolicy } from './policy.js';
import { VolumeDaemons } from './volume-daemons.js';

export const DRIVER_NAME = 'csi.mintfs.dev';

export interface CsiPluginOptions {
  /** unix:///csi/csi.sock or /csi/csi.sock */
  readonly endpoint: string;
  readonly keysDir: string;
  readonly policyFile: string;
  readonly stateDir: string;
  readonly kubeletDir: string;
  readonly nodeId: string;
  readonly version: string;
  /** The command that runs mintfs, for the volumes' mount daemons: [node, script]. */
  readonly mintfs: readonly string[];
  readonly daemonCgroup?: string | undefined;
  readonly logger: Logger;
}

export interface RunningCsiPlugin {
  readonly socketPath: string;
  /** Reload the policy now (SIGHUP); it is also polled. */
  reload(reason: string): void;
  /** Stops serving gRPC. Volumes stay mounted: their daemons are not the plugin's. */
  close(): Promise<void>;
}

/** The build copies the proto to dist/src/csi/; this module runs from there or from dist/src/bundle/. */
const PROTO = fileURLToPath(new URL('../csi/csi.proto', import.meta.url));

export function socketPathOf(endpoint: string): string {
  const path = endpoint.startsWith('unix://') ? endpoint.slice('unix://'.length) : endpoint;
  if (!path.startsWith('/'))
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `--endpoint: must be unix:///ABSOLUTE/PATH (such as unix:///csi/csi.sock)`,
    );
  return path;
}

export async function startCsiPlugin(options: CsiPluginOptions): Promise<RunningCsiPlugin> {
  const { logger } = options;
  requireRoot('csi');
  const socketPath = socketPathOf(options.endpoint);
  // Checked at start-up: a plugin that starts can mount (a bad keyring would fail every pod).
  loadKeyring(options.keysDir);
  const kubeletDir = canonicalDirectory(options.kubeletDir, '--kubelet-dir');
  const daemonCgroups =
    options.daemonCgroup === undefined ? [] : daemonCgroupDirs(options.daemonCgroup);
  const policy = new Reloadable(loadPolicy(options.policyFile), {
    name: 'policy',
    load: () => loadPolicy(options.policyFile),
    fingerprint: () => fileFingerprint(options.policyFile),
    describe: (next) => ({ policy: options.policyFile, bindings: next.bindings.length }),
    logger,
  });
  const daemons = new VolumeDaemons({
    mintfs: options.mintfs,
    keysDir: options.keysDir,
    stateDir: options.stateDir,
    daemonCgroups,
    logger,
  });
  for (const record of daemons.records())
    logger.info(
      {
        event: daemons.serving(record) ? 'volume-adopted' : 'volume-daemon-gone',
        volumeId: record.volumeId,
        targetPath: record.targetPath,
        agent: record.agent,
        daemonPid: record.pid,
      },
      daemons.serving(record)
        ? 'a volume published before this start is still served'
        : 'a recorded volume has no daemon; the next publish or unpublish recovers it',
    );
  const volumes = new NodeVolumes({ policy, daemons, kubeletDir, logger });
  // Running volumes follow edits of the policy and of the profiles directory.
  const profiles = new Reloadable(profilesFingerprint(), {
    name: 'profiles',
    load: profilesFingerprint,
    fingerprint: profilesFingerprint,
    logger,
  });
  let resyncing = Promise.resolve();
  const resync = (reason: string) => {
    resyncing = resyncing
      .then(() => volumes.resync(reason))
      .catch((err: unknown) =>
        logger.error(
          { event: 'volume-resync-failed', reason, detail: describeError(err) },
          'could not bring running volumes up to date with the profiles',
        ),
      );
  };
  profiles.onReload(() => resync('profiles changed'));
  policy.onReload(() => resync('policy changed'));
  resync('start');
  function profilesFingerprint(): string {
    return directoryFingerprint(policy.current.profiles, (name) => name.endsWith('.yaml'));
  }

  const definition = protoLoader.loadSync(PROTO, {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const csi = (grpc.loadPackageDefinition(definition) as unknown as CsiPackage).csi.v1;
  const server = new grpc.Server();
  const call = handler(logger);
  server.addService(csi.Identity.service, {
    GetPluginInfo: call('GetPluginInfo', () => ({
      name: DRIVER_NAME,
      vendorVersion: options.version,
      manifest: {},
    })),
    // A node-only plugin: no controller service, no topology.
    GetPluginCapabilities: call('GetPluginCapabilities', () => ({ capabilities: [] })),
    Probe: call('Probe', () => ({ ready: { value: true } })),
  });
  server.addService(csi.Node.service, {
    NodeGetInfo: call('NodeGetInfo', () => ({ nodeId: options.nodeId, maxVolumesPerNode: '0' })),
    // Publish and unpublish only: no staging, no stats, no expansion.
    NodeGetCapabilities: call('NodeGetCapabilities', () => ({ capabilities: [] })),
    NodePublishVolume: call('NodePublishVolume', async (request) => {
      await volumes.publish(request);
      return {};
    }),
    NodeUnpublishVolume: call('NodeUnpublishVolume', async (request) => {
      await volumes.unpublish(request);
      return {};
    }),
  });

  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  // A socket left by a killed plugin: kubelet finds the new one at the same path.
  rmSync(socketPath, { force: true });
  try {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  } catch (err) {
    policy.close();
    profiles.close();
    await resyncing;
    throw new MintfsError(
      'ERR_LISTEN_FAILED',
      `cannot listen on ${socketPath}: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
  // Only root (kubelet, the registrar) publishes.
  chmodSync(socketPath, 0o600);
  logger.info(
    {
      event: 'csi-serving',
      socket: socketPath,
      driver: DRIVER_NAME,
      nodeId: options.nodeId,
      kubeletDir,
    },
    'mintfs CSI node plugin is serving',
  );
  return {
    socketPath,
    reload: (reason) => {
      policy.reload(reason);
      profiles.reload(reason);
    },
    close: async () => {
      policy.close();
      profiles.close();
      await resyncing;
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      rmSync(socketPath, { force: true });
    },
  };
}

/**
 * A unary handler: one log line per call (method, outcome; never the
 * request, whose secrets field the spec marks sensitive), errors mapped to
 * gRPC status once, here.
 */
function handler(logger: Logger) {
  return (method: string, fn: (request: unknown) => unknown) =>
    (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void => {
      const started = Date.now();
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (response) => {
            logger.debug({ event: 'csi-call', method, ms: Date.now() - started }, 'ok');
            callback(null, response);
          },
          (err: unknown) => {
            const known = isMintfsError(err);
            const code = known ? grpcStatusFor(err.code) : grpc.status.INTERNAL;
            const message = known ? err.message : `internal error: ${describeError(err)}`;
            logger.warn(
              {
                event: 'csi-call-failed',
                method,
                code: known ? err.code : 'unexpected',
                status: grpc.status[code],
                detail: message,
                ms: Date.now() - started,
              },
              `${method} failed`,
            );
            callback({ code, details: message });
          },
        );
    };
}

function canonicalDirectory(path: string, option: string): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    throw new MintfsError('ERR_INPUT_INVALID', `${option}: ${path} does not exist`);
  }
  // Targets are matched as text under this directory; a link in it would match nothing.
  if (real !== path)
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `${option}: ${path} is not canonical (it resolves to ${real}); give the real path`,
    );
  return real;
}

interface CsiPackage {
  csi: {
    v1: {
      Identity: grpc.ServiceClientConstructor;
      Node: grpc.ServiceClientConstructor;
    };
  };
}
