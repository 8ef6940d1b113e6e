import * as z from 'zod';
import {
  loadRevocations,
  recordRevocation,
  revocationsDir,
  type RevocationRequest,
} from '../../revocation/revocations.js';
import { commandLogger } from '../logging.js';
import { loadKeyring } from '../../keys/keyring.js';
import { AGENT_NAME } from '../../token/vocabulary.js';
import { defineCommand } from '../define-command.js';
import { printJson } from '../io.js';
import {
  InstantArg,
  KeysArg,
  RedisArg,
  keysDirFrom,
  keysOption,
  redisUrlFrom,
} from '../options.js';

export const revokeCommand = defineCommand({
  command: 'revoke',
  describe:
    'Revoke a token by id, or every token of an agent minted before a time (default: now). Gateways and `mintfs verify` refuse them within 2 s',
  builder: (yargs) =>
    yargs
      .options(keysOption)
      .option('token', { type: 'string', describe: 'Token id (`mintfs inspect` shows it)' })
      .option('agent', { type: 'string', describe: 'Agent name' })
      .option('before', {
        type: 'string',
        describe: 'With --agent: revoke tokens minted before this RFC 3339 time (default: now)',
      })
      .option('list', { type: 'boolean', describe: 'Print the revocations in force' })
      .option('redis', {
        type: 'string',
        describe:
          'Record (or --list) in this Redis instead of the keyring: gateways with `redis` and `mintfs verify --redis` honour it, others do not ($MINTFS_REDIS)',
      })
      .example('$0 revoke --token rQvGi5alYLQwFjeI4I-Tyw', '')
      .example('$0 revoke --agent ci-bot', 'every token ci-bot holds now')
      .example('$0 revoke --agent ci-bot --before 2026-11-22T10:00:00Z', ''),
  args: z
    .object({
      keys: KeysArg,
      token: z
        .string()
        .regex(/^[A-Za-z0-9_-]{22}$/, 'not a token id (22 base64url characters)')
        .optional(),
      agent: z.string().regex(AGENT_NAME, 'not an agent name').optional(),
      before: z.optional(InstantArg),
      list: z.boolean().optional(),
      redis: RedisArg,
    })
    .superRefine((args, ctx) => {
      const chosen = [args.token, args.agent, args.list ? true : undefined].filter(
        (value) => value !== undefined,
      );
      if (chosen.length !== 1)
        ctx.addIssue({ code: 'custom', message: 'give exactly one of --token, --agent or --list' });
      if (args.before !== undefined && args.agent === undefined)
        ctx.addIssue({ code: 'custom', path: ['before'], message: 'only applies with --agent' });
    }),
  run: async (args) => {
    const redis = redisUrlFrom(args);
    const request: RevocationRequest | undefined =
      args.token !== undefined
        ? { kind: 'token', tokenId: args.token }
        : args.agent !== undefined
          ? { kind: 'agent', agent: args.agent, before: args.before }
          : undefined;
    if (redis !== undefined) {
      const [{ redisUrlForLog }, { listRevocationsInRedis, recordRevocationInRedis }] =
        await Promise.all([
          import('../../state/redis.js'),
          import('../../state/shared-revocations.js'),
        ]);
      const logger = commandLogger({}, { oneShot: true });
      const where = redisUrlForLog(redis);
      const now = new Date();
      if (request === undefined)
        printJson({ redis: where, records: await listRevocationsInRedis(redis, now, logger) });
      else
        printJson({
          redis: where,
          revoked: await recordRevocationInRedis(redis, request, now, logger),
        });
      return;
    }
    const keysDir = keysDirFrom(args);
    // Revocations live beside the keys that verify tokens: refuse a keyring that is not there.
    loadKeyring(keysDir, 'verify');
    const dir = revocationsDir(keysDir);
    const now = new Date();
    if (args.list) {
      const records = loadRevocations(dir).records.filter(
        (record) => now.getTime() < Date.parse(record.expiresAt),
      );
      printJson({ revocations: dir, records });
      return;
    }
    const { record, pruned } = recordRevocation(dir, request as RevocationRequest, now);
    printJson({ revocations: dir, revoked: record, prunedExpired: pruned });
  },
});
