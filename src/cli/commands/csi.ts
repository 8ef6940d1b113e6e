import * as z from 'zod';
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { defineCommand } from '../define-command.js';
import { commandLogger } from '../logging.js';
import { untilSignalled } from '../until-signalled.js';
import { KeysArg, LogFormatArg, LogLevelArg, keysDirFrom, keysOption } from '../options.js';

export const csiCommand = defineCommand({
  command: 'csi',
  describe:
    'Serve the Kubernetes CSI node plugin (Identity and Node services) on a unix socket: each inline volume a pod asks for, if the policy binds its profile to the pod, is a mintfs mount only that pod can read; volumes stay mounted across plugin restarts',
  builder: (yargs) =>
    yargs
      .option('endpoint', {
        type: 'string',
        default: process.env['CSI_ENDPOINT'] ?? 'unix:///csi/csi.sock',
        describe: 'The gRPC socket kubelet reaches the plugin at ($CSI_ENDPOINT)',
      })
      .options(keysOption)
      .option('policy', {
        type: 'string',
        demandOption: true,
        describe:
          'The policy: profiles directory and bindings of profiles to namespaces and service accounts (reloaded on change)',
      })
      .option('state-dir', {
        type: 'string',
        default: '/var/lib/mintfs-csi',
        describe: 'Where volumes are recorded (a hostPath: a restarted plugin finds them)',
      })
      .option('kubelet-dir', {
        type: 'string',
        default: '/var/lib/kubelet',
        describe: "kubelet's root directory: volumes are published only under its pods/",
      })
      .option('node-id', {
        type: 'string',
        describe: "This node's name ($NODE_NAME; default: the host name)",
      })
      .option('daemon-cgroup', {
        type: 'string',
        describe:
          "A cgroup directory (made if missing) the volumes' mount daemons are moved into, outside the plugin container's cgroup, so the container runtime's kill does not reach them (in a pod: the host's /sys/fs/cgroup mounted at /host/sys/fs/cgroup)",
      })
      .example(
        '$0 csi --endpoint unix:///csi/csi.sock --keys /etc/mintfs/keys --policy /etc/mintfs/policy/policy.yaml',
        '',
      ),
  args: z.object({
    endpoint: z.string().min(1),
    keys: KeysArg,
    policy: z.string().min(1),
    'state-dir': z.string().regex(/^\//, 'must be an absolute path'),
    'kubelet-dir': z.string().regex(/^\//, 'must be an absolute path'),
    'node-id': z.string().min(1).max(253).optional(),
    'daemon-cgroup': z
      .string()
      .regex(
        /^\/[^\0]*\/[^/\0]+$/,
        'must be an absolute cgroup directory such as /host/sys/fs/cgroup/mintfs-csi',
      )
      .optional(),
    'log-level': LogLevelArg,
    'log-format': LogFormatArg,
  }),
  run: async (args) => {
    const logger = commandLogger(args);
    const { startCsiPlugin } = await import('../../csi/index.js');
    const script = process.argv[1];
    const started = startCsiPlugin({
      endpoint: args.endpoint,
      keysDir: keysDirFrom(args),
      policyFile: args.policy,
      stateDir: args['state-dir'],
      kubeletDir: args['kubelet-dir'],
      nodeId: args['node-id'] ?? process.env['NODE_NAME'] ?? hostname(),
      version: packageVersion(),
      // The volumes' daemons run this same mintfs: `mintfs mount`.
      mintfs: script === undefined ? [process.execPath] : [process.execPath, script],
      daemonCgroup: args['daemon-cgroup'],
      logger,
    });
    // In the same tick: a signal during start-up closes the plugin once it is up.
    const signalled = untilSignalled(
      logger,
      'stopping the CSI plugin (volumes stay mounted)',
      started,
      (plugin) => plugin.close(),
      (plugin) => plugin.reload('SIGHUP'),
    );
    await started;
    await signalled;
  },
});

function packageVersion(): string {
  const pkg = JSON.parse(
    readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  return pkg.version;
}
