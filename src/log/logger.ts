/**
 * pino, writing to stderr (or a file), synchronously unless asked otherwise:
 * audit lines must not be lost when the daemon is killed. Secrets are kept out by construction (see
 * keys/root-key.ts); the redact list is a second net for field names that
 * would hold one.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { BatchingDestination } from './write-together.js';

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
   * a synchronous write per request halves its throughput. Asynchronous lines
   * are gathered up to 4 KiB and written at least every 250 ms and on stop, so
   * a SIGKILL loses at most that much.
   */
  readonly sync?: boolean;
  /**
   * `json`: one JSON object per line (machines, files, pipes). `pretty`: one
   * readable line per event for a person at a terminal (time, level, event,
   * the fields that matter). Default: json.
   */
  readonly format?: LogFormat;
}

export type LogFormat = 'json' | 'pretty';

/** How often buffered (asynchronous) log lines are written at the latest. */
export const LOG_FLUSH_MS = 250;

export function createLogger(options: LoggerOptions = {}): Logger {
  const sync = options.sync ?? true;
  const logger = pino(
    {
      name: 'mintfs',
      level: options.level ?? 'info',
      redact: { paths: REDACTED_FIELDS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: isoTimestamp,
    },
    options.stream ?? destination(options, sync),
  );
  if (!sync && !options.stream) setInterval(() => logger.flush(), LOG_FLUSH_MS).unref();
  return logger;
}

/** stderr or the file; synchronous lines through a BatchingDestination (write-together.ts). */
function destination(options: LoggerOptions, sync: boolean): DestinationStream {
  if (options.format === 'pretty')
    return new BatchingDestination(
      pino.destination({ dest: options.destination ?? 2, sync: true }),
      (line) => `${prettyLine(line)}\n`,
    );
  const out = pino.destination({
    dest: options.destination ?? 2,
    sync,
    minLength: sync ? 0 : 4096,
  });
  // Asynchronous lines are gathered already (minLength).
  return sync ? new BatchingDestination(out) : out;
}

let cachedSecond = -1;
let cachedPrefix = '';

/**
 * pino's `,"time":"<ISO 8601>"`, formatting the date only when the second
 * changes (pino's isoTime builds a Date and an ISO string for every line,
 * a measurable part of a gateway request).
 */
export function isoTimestamp(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`;
  }
  return `${cachedPrefix}${String(now % 1000).padStart(3, '0')}Z"`;
}

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
// Fields every line has, or that the line's shape already says.
const PLAIN_OMITTED = new Set(['level', 'time', 'pid', 'name', 'msg', 'event']);

/** pino's JSON line for a person: the same event, fields as key=value. */
function prettyLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.trimEnd();
  }
  const time = typeof record.time === 'string' ? record.time.slice(11, 19) : '';
  const level = LEVELS[Number(record.level)] ?? String(record.level);
  const fields = Object.entries(record)
    .filter(([key, value]) => !PLAIN_OMITTED.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const event = typeof record.event === 'string' ? record.event : '';
  const msg = typeof record.msg === 'string' ? record.msg : '';
  return [time, level.padEnd(5), event, msg === '' ? '' : `${msg}`, fields.join(' ')]
    .filter((part) => part !== '')
    .join('  ');
}
