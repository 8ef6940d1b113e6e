/**
 * Lines logged together, written together. A mount daemon logs synchronously
 * (an audit line must be on its way before the daemon can be killed after
 * the read), which is one write(2) per line; the native backend hands its
 * audit lines over in batches (one per 20 ms), and under eight readers those
 * writes were a visible share of the daemon's CPU. writeTogether(logger, fn)
 * holds the lines fn logs and writes them in one write before it returns,
 * still synchronously: nothing is written later than before, and no line is
 * lost that would not have been.
 */
import { symbols, type DestinationStream, type Logger } from 'pino';

export class BatchingDestination implements DestinationStream {
  readonly #out: DestinationStream;
  readonly #format: (line: string) => string;
  #held: string[] | undefined;

  /** `format`: each line as it is to be written (the pretty format), applied line by line. */
  constructor(out: DestinationStream, format: (line: string) => string = (line) => line) {
    this.#out = out;
    this.#format = format;
  }

  write(line: string): void {
    const formatted = this.#format(line);
    if (this.#held === undefined) this.#out.write(formatted);
    else this.#held.push(formatted);
  }

  /** Runs fn holding the lines it logs, then writes them at once (also when fn throws). */
  together<T>(fn: () => T): T {
    if (this.#held !== undefined) return fn();
    this.#held = [];
    try {
      return fn();
    } finally {
      const lines = this.#held;
      this.#held = undefined;
      if (lines.length > 0) this.#out.write(lines.join(''));
    }
  }
}

/** Runs fn; what it logs through `logger` is written in one write if the logger's destination batches. */
export function writeTogether<T>(logger: Logger, fn: () => T): T {
  const stream = (logger as unknown as Record<symbol, unknown>)[symbols.streamSym];
  return stream instanceof BatchingDestination ? stream.together(fn) : fn();
}
