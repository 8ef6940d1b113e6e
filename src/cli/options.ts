/** Options several commands share, with their environment defaults and schemas. */
import { z } from 'zod';
import { createLogger, type LogFormat, type Logger } from '../log/logger.js';
import { defaultKeysDir } from '../keys/keyring.js';
import { parseInstant } from '../util/instant.js';

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

export const BackendArg = z.enum(['native', 'fuse-native']).optional();

export const KeysArg = z.string().min(1, 'must name a directory').optional();
export const LogLevelArg = z
  .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
  .optional();
export const LogFormatArg = z.enum(['json', 'pretty']).optional();

export interface LogArgs {
  readonly 'log-level'?: z.output<typeof LogLevelArg>;
  readonly 'log-format'?: z.output<typeof LogFormatArg>;
}

/**
 * The logger a command writes to. Daemons log at info; a one-shot command
 * (mint) prints its audit line to a terminal only when asked (--log-level
 * or $MINTFS_LOG_LEVEL), since a person reading its output wants the token.
 * Lines are readable on a terminal and JSON elsewhere, unless --log-format.
 */
export function commandLogger(
  args: LogArgs,
  options: { oneShot?: boolean; sync?: boolean; destination?: string | undefined } = {},
): Logger {
  const terminal = options.destination === undefined && process.stderr.isTTY === true;
  const level =
    args['log-level'] ??
    process.env.MINTFS_LOG_LEVEL ??
    (options.oneShot && terminal ? 'warn' : 'info');
  const format = args['log-format'] ?? envFormat() ?? (terminal ? 'pretty' : 'json');
  return createLogger({
    level,
    format,
    ...(options.sync === undefined ? {} : { sync: options.sync }),
    ...(options.destination === undefined ? {} : { destination: options.destination }),
  });
}

function envFormat(): LogFormat | undefined {
  const value = process.env.MINTFS_LOG_FORMAT;
  return value === 'json' || value === 'pretty' ? value : undefined;
}
export const TokenArg = z.string().optional();

export function keysDirFrom(args: { keys?: string | undefined }): string {
  return args.keys ?? defaultKeysDir();
}

/** An RFC 3339 time with an explicit zone (`--at`, `--before`), as a Date. */
export const InstantArg = z.string().transform((text, ctx) => {
  const at = parseInstant(text);
  if (!at) {
    ctx.addIssue({
      code: 'custom',
      message: `"${text}" is not an RFC 3339 time such as 2026-11-22T01:20:00Z`,
    });
    return z.NEVER;
  }
  return at;
});
