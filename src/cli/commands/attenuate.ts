import * as z from '../../util/zod-mini.js';
import { attenuateToken } from '../../token/attenuate.js';
import { defineCommand } from '../define-command.js';
import { printResult, tokenArgument } from '../io.js';
import { TokenArg } from '../options.js';

export const attenuateCommand = defineCommand({
  command: 'attenuate [token]',
  describe: 'Print a narrower token by adding caveats (offline, no key needed)',
  builder: (yargs) =>
    yargs
      .positional('token', { type: 'string', describe: 'The token; read from stdin when omitted' })
      .option('caveat', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'A caveat to add, such as "method GET"',
      })
      .example('$0 attenuate "$T" --caveat "path /repos/acme/widgets/pulls/**"', ''),
  args: z.object({ token: TokenArg, caveat: z.array(z.string()).check(z.minLength(1)) }),
  run: async (args) => {
    printResult(attenuateToken(await tokenArgument(args.token), args.caveat));
  },
});
