/**
 * The logger a command writes to (kept apart from options.ts so commands that
 * never log, such as inspect, do not load pino).
 */
import { createLogger, type LogFormat, type Logger } from '../log/logger.js';
import type { LogFormatArg, LogLevelArg } from './options.js';
import type * as z from 'zod';

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
