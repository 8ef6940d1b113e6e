/**
 * pino, writing synchronously to stderr (or a file): audit lines must not be
 * lost when the daemon is killed. Secrets are kept out by construction (see
 * keys/root-key.ts); the redact list is a second net for field names that
 * would hold one.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const REDACTED_FIELDS = [
  'token',
  'secret',
  'rootKey',
  'credential',
  'authorization',
  '*.token',
  '*.secret',
  '*.credential',
  '*.authorization',
];

export interface LoggerOptions {
  readonly level?: string;
  /** A file descriptor or path; stderr by default. */
  readonly destination?: number | string;
  /** A stream to write to instead (tests parse each line). */
  readonly stream?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: 'mintfs',
      level: options.level ?? 'info',
      redact: { paths: REDACTED_FIELDS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.stream ?? pino.destination({ dest: options.destination ?? 2, sync: true }),
  );
}
