import { z } from 'zod';
import { startGateway } from '../../gateway/server.js';
import { createLogger } from '../../log/logger.js';
import { defineCommand } from '../define-command.js';
import { printDiagnostic } from '../io.js';
import { KeysArg, LogLevelArg, keysDirFrom, keysOption } from '../options.js';

export const gatewayCommand = defineCommand({
  command: 'gateway <config>',
  describe:
    'Run the credential-injecting proxy in the foreground; SIGTERM/SIGINT let in-flight requests finish (twice: exit at once)',
  builder: (yargs) =>
    yargs
      .positional('config', { type: 'string', describe: 'Gateway config (YAML)' })
      .options(keysOption)
      .example('$0 gateway gateway.yaml --keys /var/lib/mintfs/keys', ''),
  args: z.object({ config: z.string().min(1), keys: KeysArg, 'log-level': LogLevelArg }),
  run: async (args) => {
    const logger = createLogger({ level: args['log-level'], sync: false });
    const gateway = await startGateway({
      configFile: args.config,
      keysDir: keysDirFrom(args),
      logger,
    });
    await new Promise<void>((resolve) => {
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals += 1;
        if (signals > 1) {
          logger.warn({ event: 'forced-exit', signal }, 'second signal: exiting now');
          logger.flush();
          process.exit(130);
        }
        logger.info({ event: 'shutdown', signal }, 'finishing in-flight requests');
        gateway.close().then(
          () => logger.flush(() => resolve()),
          (err: unknown) => {
            printDiagnostic(`gateway shutdown failed: ${String(err)}`);
            process.exitCode = 3;
            resolve();
          },
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
  },
});
