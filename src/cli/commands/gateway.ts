import { z } from 'zod';
import { startGateway } from '../../gateway/server.js';
import { defineCommand } from '../define-command.js';
import { untilSignalled } from '../until-signalled.js';
import {
  KeysArg,
  LogFormatArg,
  LogLevelArg,
  commandLogger,
  keysDirFrom,
  keysOption,
} from '../options.js';

export const gatewayCommand = defineCommand({
  command: 'gateway <config>',
  describe:
    'Run the credential-injecting proxy in the foreground; SIGTERM/SIGINT let in-flight requests finish (twice: exit at once); SIGHUP reloads the config, keys, revocations and credentials (they also reload when their files change; listen addresses need a restart)',
  builder: (yargs) =>
    yargs
      .positional('config', { type: 'string', describe: 'Gateway config (YAML)' })
      .options(keysOption)
      .example('$0 gateway gateway.yaml --keys /var/lib/mintfs/keys', ''),
  args: z.object({
    config: z.string().min(1),
    keys: KeysArg,
    'log-level': LogLevelArg,
    'log-format': LogFormatArg,
  }),
  run: async (args) => {
    const logger = commandLogger(args, { sync: false });
    const started = startGateway({
      configFile: args.config,
      keysDir: keysDirFrom(args),
      logger,
    });
    // In the same tick: a signal during start-up closes the gateway once it is up.
    // A second signal exits at once; a later start recovers what is left.
    const signalled = untilSignalled(
      logger,
      'finishing in-flight requests',
      started,
      (gateway) => gateway.close(),
      (gateway) => gateway.reload('SIGHUP'),
    );
    await started;
    await signalled;
  },
});
