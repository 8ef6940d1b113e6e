import { z } from 'zod';
import { runInSandbox } from '../../contain/run-sandbox.js';
import { createLogger } from '../../log/logger.js';
import { defineCommand } from '../define-command.js';
import {
  BackendArg,
  KeysArg,
  LogLevelArg,
  backendOption,
  keysDirFrom,
  keysOption,
} from '../options.js';

const Id = z.coerce
  .number()
  .int()
  .min(1, 'must not be root (0)')
  .max(2 ** 31 - 1);

export const runCommand = defineCommand({
  command: 'run',
  describe:
    'Run a command in a bubblewrap sandbox: /secrets from a token mount, no network but the gateway at 127.0.0.1:8787, no capabilities, seccomp, a non-root uid',
  builder: (yargs) =>
    yargs
      .options(keysOption)
      .options(backendOption)
      .option('profile', { type: 'string', describe: 'Serve this profile on a private mount' })
      .option('mount', { type: 'string', describe: 'Or bind this running mount at /secrets' })
      .option('gateway', { type: 'string', describe: 'Run a private gateway with this config' })
      .option('gateway-socket', {
        type: 'string',
        describe: "Or reach this running gateway's unix socket",
      })
      .option('uid', { type: 'number', default: 65534, describe: 'User the command runs as' })
      .option('gid', { type: 'number', describe: 'Group (default: the uid)' })
      .option('workdir', { type: 'string', describe: 'Host directory bound read-write at /work' })
      .option('log', { type: 'string', describe: 'Write mintfs logs to this file, not stderr' })
      .parserConfiguration({ 'populate--': true })
      .example(
        '$0 run --profile agent.yaml --gateway gateway.yaml -- sh -c \'curl -H "Authorization: Bearer $(cat /secrets/github/token)" http://api.github.com/user\'',
        '',
      ),
  args: z
    .object({
      keys: KeysArg,
      backend: BackendArg,
      profile: z.string().min(1).optional(),
      mount: z.string().min(1).optional(),
      gateway: z.string().min(1).optional(),
      'gateway-socket': z.string().min(1).optional(),
      uid: Id,
      gid: Id.optional(),
      workdir: z.string().min(1).optional(),
      log: z.string().min(1).optional(),
      'log-level': LogLevelArg,
      '--': z.array(z.coerce.string()).optional(),
    })
    .superRefine((args, ctx) => {
      if (!args['--'] || args['--'].length === 0)
        ctx.addIssue({
          code: 'custom',
          message: 'name the command after --: mintfs run [options] -- CMD [ARGS...]',
        });
      if ((args.profile === undefined) === (args.mount === undefined))
        ctx.addIssue({ code: 'custom', path: ['profile'], message: 'give --profile or --mount' });
      if ((args.gateway === undefined) === (args['gateway-socket'] === undefined))
        ctx.addIssue({
          code: 'custom',
          path: ['gateway'],
          message: 'give --gateway or --gateway-socket',
        });
    }),
  run: async (args) => {
    const logger = createLogger({
      level: args['log-level'],
      ...(args.log === undefined ? {} : { destination: args.log }),
    });
    process.exitCode = await runInSandbox({
      profileFile: args.profile,
      mountDir: args.mount,
      gatewayConfig: args.gateway,
      gatewaySocket: args['gateway-socket'],
      keysDir: keysDirFrom(args),
      backend: args.backend,
      uid: args.uid,
      gid: args.gid ?? args.uid,
      workdir: args.workdir,
      command: args['--'] ?? [],
      logger,
    });
    logger.flush();
  },
});
