import * as z from '../../util/zod-mini.js';
import { inspectToken } from '../../token/inspect.js';
import { defineCommand } from '../define-command.js';
import { printJson, tokenArgument } from '../io.js';
import { TokenArg } from '../options.js';

export const inspectCommand = defineCommand({
  command: 'inspect [token]',
  describe: 'Show what a token says about itself as JSON (no key needed; nothing is verified)',
  builder: (yargs) =>
    yargs
      .positional('token', { type: 'string', describe: 'The token; read from stdin when omitted' })
      .example('$0 inspect "$(cat /run/mintfs/agent1/github/token)"', ''),
  args: z.object({ token: TokenArg }),
  run: async (args) => {
    printJson(inspectToken(await tokenArgument(args.token)));
  },
});
