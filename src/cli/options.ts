/** Options several commands share, with their environment defaults and schemas. */
import * as z from '../util/zod-mini.js';
import { MintfsError } from '../errors.js';
import { defaultKeysDir } from '../keys/keyring.js';
import { parseInstant } from '../util/instant.js';
import { FuseTransportSchema } from '../fuse/transport.js';

export const keysOption = {
  keys: {
    type: 'string',
    describe:
      'Keyring directory (default: $MINTFS_KEYS, else /var/lib/mintfs/keys as root, else ~/.local/state/mintfs/keys)',
  },
} as const;

export const backendOption = {
  backend: {
    type: 'string',
    choices: ['native', 'fuse-native'],
    describe:
      'FUSE backend (default: native where it is built, else fuse-native with a warning); native alone knows who reads',
  },
} as const;

export const BackendArg = z.optional(z.enum(['native', 'fuse-native']));

export const fuseTransportOption = {
  'fuse-transport': {
    type: 'string',
    choices: ['classic', 'uring', 'auto'],
    describe:
      "How the native backend receives FUSE requests: classic (/dev/fuse reads, default), uring (FUSE over io_uring, Linux 6.14+ with the fuse module's enable_uring on; else classic with a warning), auto (uring when enable_uring is on)",
  },
} as const;

export const FuseTransportArg = z.optional(FuseTransportSchema);

export const KeysArg = z.optional(z.string().check(z.minLength(1, 'must name a directory')));
export const LogLevelArg = z.optional(
  z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
);
export const LogFormatArg = z.optional(z.enum(['json', 'pretty']));
// commandLogger lives in logging.ts: importing pino costs one-shot commands that never log.

export const TokenArg = z.optional(z.string());

export function keysDirFrom(args: { keys?: string | undefined }): string {
  return args.keys ?? defaultKeysDir();
}

/** An RFC 3339 time with an explicit zone (`--at`, `--before`), as a Date. */
export const InstantArg = z.pipe(
  z.string(),
  z.transform((text, ctx) => {
    const at = parseInstant(text);
    if (!at) {
      ctx.issues.push({
        code: 'custom',
        input: text,
        message: `"${text}" is not an RFC 3339 time such as 2026-11-22T01:20:00Z`,
      });
      return z.NEVER;
    }
    return at;
  }),
);

function isRedisUrl(text: string): boolean {
  try {
    return ['redis:', 'rediss:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

/** `--redis URL`: the Redis gateways with `redis` share (revoke records there, verify reads it). */
export const RedisArg = z.optional(
  z.string().check(z.refine(isRedisUrl, 'not a redis:// or rediss:// URL')),
);

/** --redis, else $MINTFS_REDIS (checked like --redis), else undefined. */
export function redisUrlFrom(args: { redis?: string | undefined }): string | undefined {
  if (args.redis !== undefined) return args.redis;
  const value = process.env.MINTFS_REDIS;
  if (value === undefined || value === '') return undefined;
  if (isRedisUrl(value)) return value;
  throw new MintfsError('ERR_INPUT_INVALID', 'MINTFS_REDIS: not a redis:// or rediss:// URL');
}
