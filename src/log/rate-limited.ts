/**
 * A line for an event that a hostile client can repeat at will (a connection
 * over its limit, a descriptor limit reached): the first of each kind is
 * logged at once, the repeats within the interval only counted, and the
 * count goes with the next line of that kind. The log stays readable and
 * costs nothing the client controls.
 */
import type { Logger } from './logger.js';

/** Distinct kinds remembered at once; beyond, repeats share one kind so memory stays bounded. */
const MAX_KINDS = 1024;

export class RateLimitedLog {
  readonly #seen = new Map<string, { next: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 60_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Logs `fields` as a warning unless a line of this kind went out less than the interval ago. */
  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock();
    if (this.#seen.size >= MAX_KINDS && !this.#seen.has(kind)) {
      for (const [key, entry] of this.#seen) if (entry.next <= now) this.#seen.delete(key);
      if (this.#seen.size >= MAX_KINDS) kind = '(many)';
    }
    const entry = this.#seen.get(kind);
    if (entry !== undefined && now < entry.next) {
      entry.suppressed += 1;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#seen.set(kind, { next: now + this.intervalMs, suppressed: 0 });
    this.logger.warn(
      {
        ...fields,
        ...(suppressed > 0 ? { suppressed, intervalMs: this.intervalMs } : {}),
      },
      message,
    );
  }
}
