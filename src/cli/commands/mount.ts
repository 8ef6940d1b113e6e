import { z } from 'zod';
import { startMount } from '../../daemon/mount-daemon.js';
import { fuseNativeBackend } from '../../fuse/fuse-native-backend.js';
import { createLogger } from '../../log/logger.js';
import { defineCommand } from '../define-command.js';
import { untilSignalled } from '../until-signalled.js';
import { KeysArg, LogLevelArg, keysDirFrom, keysOption } from '../options.js';

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
      .option('backend', {
        type: 'string',
        choices: ['fuse-native'],
        default: 'fuse-native',
        describe: 'FUSE binding',
      })
      .example('$0 mount mount-profiles/github-readonly.yaml /run/mintfs/agent1', ''),
  args: z.object({
    profile: z.string().min(1),
    mountpoint: z.string().min(1),
    keys: KeysArg,
    backend: z.literal('fuse-native'),
    'log-level': LogLevelArg,
  }),
  run: async (args) => {
    const logger = createLogger({ level: args['log-level'] });
    const mount = await startMount({
      profileFile: args.profile,
      mountpoint: args.mountpoint,
      keysDir: keysDirFrom(args),
      backend: fuseNativeBackend,
      logger,
    });
    // A second signal exits at once; a later start recovers what is left.
    await untilSignalled(
      logger,
      'unmounting',
      () => mount.unmount(),
      () => mount.reload('SIGHUP'),
    );
  },
});
