/**
 * State read from disk that may change while the process runs: the keyring,
 * a profile, the revocation list. A cheap fingerprint (names, inodes, sizes,
 * mtimes) is polled every 250 ms and the state is reloaded when it changes,
 * or on demand (SIGHUP). Polling rather than inotify: it sees renames,
 * replaced directories and bind-mounted files alike, and a stat per file
 * four times a second costs nothing.
 *
 * A reload that fails keeps the last good state and logs why, once per
 * change: a half-written or invalid edit never takes a working mount or
 * gateway down, and never turns it into one that serves nothing.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeError, isMintfsError } from '../errors.js';
import type { Logger } from '../log/logger.js';

export const RELOAD_POLL_MS = 250;

export interface ReloadableOptions<T> {
  /** What it is, for log lines: `keyring`, `profile`, `revocations`. */
  readonly name: string;
  readonly load: () => T;
  /** Changes whenever the state on disk may have changed. Must not throw. */
  readonly fingerprint: () => string;
  readonly logger: Logger;
  /** Loggable facts about a newly loaded state (ids, counts; never secrets). */
  readonly describe?: (value: T) => Record<string, unknown>;
  readonly pollMs?: number;
}

const outcomeListeners = new Set<(kind: string, outcome: 'reloaded' | 'failed') => void>();

/** Hears every reload of every Reloadable in the process (metrics count them by kind). */
export function onReloadOutcome(
  listener: (kind: string, outcome: 'reloaded' | 'failed') => void,
): void {
  outcomeListeners.add(listener);
}

export class Reloadable<T> {
  readonly #options: ReloadableOptions<T>;
  readonly #timer: NodeJS.Timeout;
  #value: T;
  #fingerprint: string;
  readonly #listeners = new Set<(value: T) => void>();

  /** `initial` is loaded by the caller, so a bad state at start-up fails loudly. */
  constructor(initial: T, options: ReloadableOptions<T>) {
    this.#options = options;
    this.#value = initial;
    this.#fingerprint = options.fingerprint();
    this.#timer = setInterval(() => this.#poll(), options.pollMs ?? RELOAD_POLL_MS);
    this.#timer.unref();
  }

  get current(): T {
    return this.#value;
  }

  /** Reloads now, whatever the fingerprint says. Returns whether the new state was taken. */
  reload(reason: string): boolean {
    this.#fingerprint = this.#options.fingerprint();
    const { name, logger } = this.#options;
    let next: T;
    try {
      next = this.#options.load();
    } catch (err) {
      logger.warn(
        {
          event: `${name}-reload-failed`,
          reason,
          error: isMintfsError(err) ? err.code : 'ERR_UNEXPECTED',
          detail: describeError(err),
        },
        `${name} reload failed; still serving the last good ${name}`,
      );
      for (const listener of outcomeListeners) listener(name, 'failed');
      return false;
    }
    this.#value = next;
    for (const listener of this.#listeners) listener(next);
    logger.info(
      { event: `${name}-reloaded`, reason, ...this.#options.describe?.(next) },
      `${name} reloaded`,
    );
    for (const listener of outcomeListeners) listener(name, 'reloaded');
    return true;
  }

  /** Reloads now if the state on disk changed since the last load; returns whether it did. */
  refresh(reason: string): boolean {
    if (this.#options.fingerprint() === this.#fingerprint) return false;
    return this.reload(reason);
  }

  /** Calls `listener` with each newly taken state; returns how to stop. */
  onReload(listener: (value: T) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#listeners.clear();
    clearInterval(this.#timer);
  }

  #poll(): void {
    this.refresh('changed');
  }
}

/** A file's identity and version; `missing` when it cannot be stat'ed. */
export function fileFingerprint(path: string): string {
  try {
    const info = statSync(path, { bigint: true });
    return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
  }
}

/** The fingerprints of a directory's entries whose names pass `include`. */
export function directoryFingerprint(dir: string, include: (name: string) => boolean): string {
  let names: string[];
  try {
    names = readdirSync(dir).filter(include).sort();
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
  }
  return names.map((name) => `${name}=${fileFingerprint(join(dir, name))}`).join('/');
}
