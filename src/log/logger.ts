/**
 * pino, writing to stderr (or a file), synchronously unless asked otherwise:
 * audit lines must not be lost when the daemon is killed. Secrets are kept out by construction (see
 * keys/root-key.ts); the redact list is a second net for field names that
 * would hold one.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

// Exact paths only: a wildcard path (`*.token`) makes pino's redaction cost
// about 18 µs per line, more than the rest of a gateway request's logging.
export const REDACTED_FIELDS = [
  'token',
  'secret',
  'rootKey',
  'credential',
  'authorization',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
];

export interface LoggerOptions {
  readonly level?: string;
  /** A file descriptor or path; stderr by default. */
  readonly destination?: number | string;
  /** A stream to write to instead (tests parse each line). */
  readonly stream?: DestinationStream;
  /**
   * Write each line before returning (default). The gateway turns this off:
   * a synchronous write per request halves its throughput; it flushes on stop.
   */
  readonly sync?: boolean;
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
    options.stream ??
      pino.destination({ dest: options.destination ?? 2, sync: options.sync ?? true }),
  );
}
