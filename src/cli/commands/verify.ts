import * as z from 'zod';
import { loadKeyring } from '../../keys/keyring.js';
import { loadRevocations, revocationsDir } from '../../revocation/revocations.js';
import { splitUrl } from '../../token/request-path.js';
import { createVerifier } from '../../verifier/verifier.js';
import { defineCommand } from '../define-command.js';
import { EXIT_DENIED } from '../exit-codes.js';
import { printDiagnostic, printJson, tokenArgument } from '../io.js';
import { InstantArg, KeysArg, keysDirFrom, keysOption, TokenArg } from '../options.js';

const UrlArg = z.string().transform((url, ctx) => {
  const target = splitUrl(url);
  if (!target) {
    ctx.addIssue({ code: 'custom', message: `"${url}" is not an absolute http(s) URL` });
    return z.NEVER;
  }
  return target;
});

export const verifyCommand = defineCommand({
  command: 'verify [token]',
  describe:
    'Check a token against a request: exit 0 when allowed, 1 naming the failing caveat otherwise',
  builder: (yargs) =>
    yargs
      .positional('token', { type: 'string', describe: 'The token; read from stdin when omitted' })
      .options(keysOption)
      .option('service', { type: 'string', demandOption: true, describe: 'Upstream service name' })
      .option('method', { type: 'string', demandOption: true, describe: 'HTTP method' })
      .option('url', { type: 'string', demandOption: true, describe: 'Absolute request URL' })
      .option('at', { type: 'string', describe: 'Verify as of this RFC 3339 time instead of now' })
      .example(
        '$0 verify "$T" --service github --method GET --url https://api.github.com/repos/acme/widgets',
        '',
      ),
  args: z.object({
    token: TokenArg,
    keys: KeysArg,
    service: z.string().min(1),
    method: z.string().regex(/^[A-Za-z]+$/, 'must be an HTTP method'),
    url: UrlArg,
    at: InstantArg.optional(),
  }),
  run: async (args) => {
    const token = await tokenArgument(args.token);
    const keysDir = keysDirFrom(args);
    const keyring = loadKeyring(keysDir);
    const revocations = loadRevocations(revocationsDir(keysDir));
    const { verdict } = createVerifier({
      keyring: () => keyring,
      revocations: () => revocations,
    }).check(
      token,
      {
        service: args.service,
        method: args.method,
        host: args.url.host,
        rawPath: args.url.rawPath,
      },
      args.at ?? new Date(),
    );
    printJson(verdict);
    if (!verdict.allowed) {
      const caveat = verdict.caveat === undefined ? '' : ` (caveat "${verdict.caveat}")`;
      printDiagnostic(`denied: ${verdict.code}: ${verdict.reason}${caveat}`);
      process.exitCode = EXIT_DENIED;
    }
  },
});
