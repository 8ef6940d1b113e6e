import * as z from 'zod';
import { startMount, type RunningMount } from '../../daemon/mount-daemon.js';
import { MetricsAddress } from '../../metrics/address.js';
import { selectBackend } from '../../fuse/select-backend.js';
import { defineCommand } from '../define-command.js';
import { commandLogger } from '../logging.js';
import { untilSignalled } from '../until-signalled.js';
import { MintfsError } from '../../errors.js';
import {
  BackendArg,
  FuseTransportArg,
  KeysArg,
  LogFormatArg,
  LogLevelArg,
  backendOption,
  fuseTransportOption,
  keysDirFrom,
  keysOption,
} from '../options.js';

export const mountCommand = defineCommand({
  command: 'mount <profile> <mountpoint>',
  describe:
    'Serve a profile at a mountpoint in the foreground; SIGINT/SIGTERM unmount (twice: exit at once); the profile and keyring are reloaded on change and on SIGHUP',
  builder: (yargs) =>
    yargs
      .positional('profile', { type: 'string', describe: 'Mount profile (YAML)' })
      .positional('mountpoint', {
        type: 'string',
        describe: 'Directory to mount on (created if missing)',
      })
      .options(keysOption)
      .options(backendOption)
      .options(fuseTransportOption)
      .option('takeover', {
        type: 'boolean',
        default: false,
        describe:
          'If a mintfs daemon serves the mountpoint, replace it without a gap: mount beneath it, detach it; it drains and exits',
      })
      .option('metrics', {
        type: 'string',
        describe:
          'Serve Prometheus metrics at http://HOST:PORT/metrics (mints by file and outcome)',
      })
      .option('shared-parent', {
        type: 'boolean',
        default: false,
        describe:
          "Make the mountpoint's parent directory a shared mount, so containers that bind it with rslave follow restarts",
      })
      .example(
        '$0 mount mount-profiles/github-readonly.yaml /run/mintfs/agent1/secrets --shared-parent',
        '',
      )
      .example(
        '$0 mount new-profile.yaml /run/mintfs/agent1/secrets --takeover',
        'upgrade in place',
      ),
  args: z.object({
    profile: z.string().min(1),
    mountpoint: z.string().min(1),
    keys: KeysArg,
    backend: BackendArg,
    'fuse-transport': FuseTransportArg,
    takeover: z.boolean(),
    'shared-parent': z.boolean(),
    metrics: MetricsAddress.optional(),
    'log-level': LogLevelArg,
    'log-format': LogFormatArg,
  }),
  run: async (args) => {
    const logger = commandLogger(args);
    const backend = selectBackend(args.backend, logger);
    // Asked for by name, io_uring is the native backend's alone: refuse rather than ignore it.
    if (args['fuse-transport'] === 'uring' && backend.name !== 'native')
      throw new MintfsError(
        'ERR_INPUT_INVALID',
        `--fuse-transport: uring needs the native backend; the ${backend.name} backend reads /dev/fuse`,
      );
    // Set once mounted; the metrics read it at each scrape.
    const running: { mount?: RunningMount } = {};
    // prom-client is loaded only when metrics are asked for.
    const metrics =
      args.metrics === undefined
        ? undefined
        : (await import('../../metrics/mount-metrics.js')).createMountMetrics(() =>
            running.mount?.openHandles(),
          );
    // Bound before mounting: an address in use fails the start with nothing mounted.
    const served =
      metrics === undefined || args.metrics === undefined
        ? undefined
        : await (
            await import('../../metrics/registry.js')
          ).serveMetrics(args.metrics, metrics.metrics.registry, logger);
    const started = startMount({
      profileFile: args.profile,
      mountpoint: args.mountpoint,
      keysDir: keysDirFrom(args),
      backend,
      transport: args['fuse-transport'],
      logger,
      takeover: args.takeover,
      sharedParent: args['shared-parent'],
      observeMint:
        metrics === undefined ? undefined : (file, outcome) => metrics.mint(file, outcome),
    });
    // In the same tick: a signal while the mount is being placed (readers may
    // already be served) unmounts it once it is up, leaving no dead mount.
    // A second signal exits at once; a later start recovers what is left.
    const signalled = untilSignalled(
      logger,
      'unmounting',
      started,
      (mount) => mount.unmount(),
      (mount) => mount.reload('SIGHUP'),
    );
    const mount = await started.catch(async (err: unknown) => {
      await served?.close();
      throw err;
    });
    running.mount = mount;
    // Taken over by a newer daemon: drain and exit 0, as on SIGTERM.
    await Promise.race([
      signalled,
      mount.lost
        .then(() => mount.unmount())
        .then(() => new Promise<void>((resolve) => logger.flush(() => resolve()))),
    ]);
    await served?.close();
  },
});
