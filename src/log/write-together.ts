/**
 * Lines logged together, written together. A mount daemon logs synchronously
 * (an audit line must be on its way before the daemon can be killed after
 * the read), which is one write(2) per line; the native backend hands its
 * audit lines over in batches (one per 20 ms), and under eight readers those
 * writes were a visible share of the daemon's CPU. writeTogether(logger, fn)
 * holds the lines fn logs and writes them in one write before it returns,
 * still synchronously: nothing is written later than before, and no line is
 * lost that would not have been.
 *
 * "One write" means as many writes as it takes to keep each at most PIPE_BUF
 * bytes, cut between lines. A pipe the daemon shares with other writers
 * (`mintfs run`'s processes, a supervisor's pipe) keeps a write of up to
 * PIPE_BUF whole; a longer one can have another writer's bytes spliced into
 * the middle of a line (stream sockets promise nothing either way). A single
 * line longer than that is one write of its own, as it was before batching;
 * the native backend's audit lines stay well within it (reader_log_text).
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
      for (const write of writesOf(lines)) this.#out.write(write);
    }
  }
}

/** Linux's PIPE_BUF: writes up to this size reach a pipe whole, never interleaved. */
export const PIPE_BUF = 4096;

/** The lines, in order, joined into as few writes as keep each within PIPE_BUF (a longer line: alone). */
export function writesOf(lines: readonly string[]): string[] {
  const writes: string[] = [];
  let held: string[] = [];
  let bytes = 0;
  for (const line of lines) {
    const size = Buffer.byteLength(line);
    if (held.length > 0 && bytes + size > PIPE_BUF) {
      writes.push(held.join(''));
      held = [];
      bytes = 0;
    }
    held.push(line);
    bytes += size;
  }
  if (held.length > 0) writes.push(held.join(''));
  return writes;
}

/** Runs fn; what it logs through `logger` is written in one write if the logger's destination batches. */
export function writeTogether<T>(logger: Logger, fn: () => T): T {
  const stream = (logger as unknown as Record<symbol, unknown>)[symbols.streamSym];
  return stream instanceof BatchingDestination ? stream.together(fn) : fn();
}
