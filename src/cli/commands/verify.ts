import * as z from '../../util/zod-mini.js';
import { loadKeyring } from '../../keys/keyring.js';
import { RevocationList, loadRevocations, revocationsDir } from '../../revocation/revocations.js';
import { splitUrl } from '../../token/request-path.js';
import { decodeToken } from '../../token/token-text.js';
import type { Verdict } from '../../token/verify.js';
import { createVerifier } from '../../verifier/verifier.js';
import { defineCommand } from '../define-command.js';
import { EXIT_DENIED } from '../exit-codes.js';
import { printDiagnostic, printJson, tokenArgument } from '../io.js';
import {
  InstantArg,
  KeysArg,
  RedisArg,
  TokenArg,
  keysDirFrom,
  keysOption,
  redisUrlFrom,
} from '../options.js';

const UrlArg = z.pipe(
  z.string(),
  z.transform((url, ctx) => {
    const target = splitUrl(url);
    if (!target) {
      ctx.issues.push({
        code: 'custom',
        input: url,
        message: `"${url}" is not an absolute http(s) URL`,
      });
      return z.NEVER;
    }
    return target;
  }),
);

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
      .option('redis', {
        type: 'string',
        describe:
          'Also honour the revocations recorded in this Redis (mintfs revoke --redis), and report the uses a budgeted token has spent there ($MINTFS_REDIS)',
      })
      .example(
        '$0 verify "$T" --service github --method GET --url https://api.github.com/repos/acme/widgets',
        '',
      ),
  args: z.object({
    token: TokenArg,
    keys: KeysArg,
    service: z.string().check(z.minLength(1)),
    method: z.string().check(z.regex(/^[A-Za-z]+$/, 'must be an HTTP method')),
    url: UrlArg,
    at: z.optional(InstantArg),
    redis: RedisArg,
  }),
  run: async (args) => {
    const token = await tokenArgument(args.token);
    const keysDir = keysDirFrom(args);
    const redis = redisUrlFrom(args);
    const now = args.at ?? new Date();
    const keyring = loadKeyring(keysDir, 'verify');
    const files = loadRevocations(revocationsDir(keysDir));
    // With Redis, its revocations join the keyring's; unreachable, the command
    // fails (exit 3) rather than answer without them.
    let revocations = files;
    let used: number | undefined;
    if (redis !== undefined) {
      // Loaded here: pino (logging.ts) and the Redis client cost every other verify its start-up.
      const { readSharedState } = await import('../../state/shared-revocations.js');
      const { commandLogger } = await import('../logging.js');
      const shared = await readSharedState(
        redis,
        now,
        commandLogger({}, { oneShot: true }),
        tokenIdOf(token),
      );
      revocations = new RevocationList([...files.records, ...shared.records]);
      used = shared.used;
    }
    const { verdict: checked, token: authenticated } = createVerifier({
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
      now,
    );
    const verdict = withBudget(checked, authenticated?.uses, used);
    printJson(verdict);
    if (!verdict.allowed) {
      const caveat = verdict.caveat === undefined ? '' : ` (caveat "${verdict.caveat}")`;
      printDiagnostic(`denied: ${verdict.code}: ${verdict.reason}${caveat}`);
      process.exitCode = EXIT_DENIED;
    } else if (verdict.uses !== undefined && used === undefined)
      printDiagnostic(
        `token has a use budget (uses ${verdict.uses}) that gateways count; without --redis, verify cannot tell how much of it is spent`,
      );
  },
});

/** The token's id when its text decodes (a token that does not is refused by the check anyway). */
function tokenIdOf(token: string): string | undefined {
  try {
    return decodeToken(token).tokenId;
  } catch {
    return undefined;
  }
}

/**
 * The verdict with the uses spent in Redis (verify spends none): a budget
 * already spent is refused as the gateway would refuse it.
 */
function withBudget(verdict: Verdict, uses: number | undefined, used: number | undefined): Verdict {
  if (!verdict.allowed || uses === undefined || used === undefined) return verdict;
  if (used < uses) return { ...verdict, used };
  const { tokenId, keyId, agent } = verdict;
  return {
    ...(tokenId === undefined ? {} : { tokenId }),
    ...(keyId === undefined ? {} : { keyId }),
    ...(agent === undefined ? {} : { agent }),
    uses,
    used,
    allowed: false,
    code: 'ERR_TOKEN_USES_SPENT',
    reason: `token ${tokenId ?? ''} has made its ${uses} ${uses === 1 ? 'request' : 'requests'} (caveat "uses ${uses}")`,
  };
}
