/**
 * Every open WebSocket, judged again twice a second: a socket whose token
 * has expired or been revoked (the token, its agent or its key), whose
 * upstream left the config, or that has lived past its upstream's
 * maxLifetime, is closed. The question asked is the one its handshake
 * answered, through the same verifier, so a live socket dies within the
 * same second a new request with its token would be refused.
 */

/** Why a live socket must close now: the close code and a reason for the agent's client. */
export interface CloseVerdict {
  readonly code: number;
  readonly reason: string;
}

export interface LiveSocket {
  /** Undefined while it may stay open. */
  judge(now: Date): CloseVerdict | undefined;
  close(verdict: CloseVerdict): void;
}

/** How often live sockets are judged again. */
export const SWEEP_INTERVAL_MS = 500;

export class LiveSockets {
  readonly #sockets = new Set<LiveSocket>();
  readonly #clock: () => Date;
  #timer: NodeJS.Timeout | undefined;

  constructor(clock: () => Date) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#sockets.size;
  }

  /** Starts judging this socket; returns how to stop (when it has closed). */
  add(socket: LiveSocket): () => void {
    this.#sockets.add(socket);
    // Unref'd: open sockets alone never keep a stopping gateway alive.
    this.#timer ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
    return () => {
      this.#sockets.delete(socket);
      if (this.#sockets.size === 0) this.#stop();
    };
  }

  /** Judges every socket now (also on a reload of revocations or keys). */
  sweep(): void {
    const now = this.#clock();
    for (const socket of this.#sockets) {
      const verdict = socket.judge(now);
      if (verdict === undefined) continue;
      this.#sockets.delete(socket);
      socket.close(verdict);
    }
    if (this.#sockets.size === 0) this.#stop();
  }

  /** Closes every socket (the gateway is stopping). */
  closeAll(verdict: CloseVerdict): void {
    for (const socket of this.#sockets) socket.close(verdict);
    this.#sockets.clear();
    this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
