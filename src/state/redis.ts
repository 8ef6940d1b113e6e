/**
 * The Redis connection shared state lives on (use budgets, revocations), for
 * gateways on many hosts. Commands fail at once while Redis is away (no
 * offline queue: a request must be answered, not held until Redis returns)
 * and after COMMAND_TIMEOUT_MS on a connection that hangs. The client
 * reconnects on its own; each change of health is logged once, with the URL
 * stripped of its password.
 */
import { createClient, type RedisClientType } from 'redis';
import { MintfsError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';

export type RedisClient = RedisClientType;

/** How long one command may take before the caller treats Redis as away. */
export const COMMAND_TIMEOUT_MS = 1_000;

export interface RedisConnection {
  readonly client: RedisClient;
  /** Whether the last thing heard from Redis was a ready connection. */
  up(): boolean;
  /** Called on each change of health (after the log line). */
  onHealth(listener: (up: boolean) => void): void;
  /** A second connection for SUBSCRIBE (a subscribed connection can do nothing else). */
  subscriber(): Promise<RedisClient>;
  close(): Promise<void>;
}

/** The URL as it may be logged: no password, no user name. */
export function redisUrlForLog(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.username = '';
    return parsed.toString();
  } catch {
    return 'redis://(unparsable)';
  }
}

function clientFor(url: string): RedisClient {
  return createClient({
    url,
    disableOfflineQueue: true,
    pingInterval: 5_000,
    socket: {
      connectTimeout: 2_000,
      // Back off to 1 s between attempts: Redis coming back is noticed within a second.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1_000),
    },
  });
}

/**
 * Connects (waiting up to `firstConnectMs` for the first connection; a
 * gateway that starts while Redis is away starts anyway, failing closed
 * until it is reachable).
 */
export async function connectRedis(
  url: string,
  logger: Logger,
  options: {
    /** How long to wait for the first connection before going on without one. */
    readonly firstConnectMs?: number;
    /** Give up at the first failed attempt (a one-shot command, not a server). */
    readonly failFast?: boolean;
  } = {},
): Promise<RedisConnection> {
  const firstConnectMs = options.firstConnectMs ?? 3_000;
  const where = redisUrlForLog(url);
  const client = clientFor(url);
  const listeners: Array<(up: boolean) => void> = [];
  let healthy = false;
  let closing = false;
  let reported: boolean | undefined;
  const report = (up: boolean, detail?: string) => {
    if (closing) return;
    healthy = up;
    if (reported === up) return;
    reported = up;
    if (up) logger.info({ event: 'redis-up', redis: where }, 'Redis is reachable');
    else
      logger.error(
        { event: 'redis-down', redis: where, detail },
        'Redis is unreachable: budgeted tokens are refused; revocations keep their last known set',
      );
    for (const listener of listeners) listener(up);
  };
  client.on('ready', () => report(true));
  client.on('error', (err: unknown) => report(false, describeError(err)));
  client.on('end', () => report(false, 'connection closed'));
  const subscribers: RedisClient[] = [];
  let failedOnce: () => void = () => undefined;
  const firstFailure = new Promise<void>((resolve) => (failedOnce = resolve));
  client.on('error', () => {
    if (options.failFast === true) failedOnce();
  });
  const connecting = client.connect().catch((err: unknown) => report(false, describeError(err)));
  await Promise.race([
    connecting,
    firstFailure,
    new Promise((resolve) => setTimeout(resolve, firstConnectMs).unref()),
  ]);
  if (!healthy) report(false, 'no connection yet');
  return {
    client,
    up: () => healthy && client.isReady,
    onHealth: (listener) => listeners.push(listener),
    subscriber: async () => {
      const sub = client.duplicate();
      sub.on('error', () => undefined); // the main client reports health
      subscribers.push(sub);
      await sub.connect();
      return sub;
    },
    close: () => {
      closing = true;
      for (const sub of [...subscribers, client])
        try {
          sub.destroy();
        } catch {
          // already closed
        }
      return Promise.resolve();
    },
  };
}

/**
 * A command with the timeout; rejects with ERR_STATE_UNAVAILABLE.
 *
 * The timer's rejection waits one turn of the event loop (setImmediate):
 * when this process stalled (a GC pause, a CPU-starved host) the timer and
 * Redis's reply are both due when it wakes, and timers run before I/O, so
 * without the wait a reply that came in time would lose to the timer and an
 * answered command would read as Redis being away.
 */
export async function withTimeout<T>(
  what: string,
  command: Promise<T>,
  timeoutMs: number = COMMAND_TIMEOUT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let turn: NodeJS.Immediate | undefined;
  try {
    return await Promise.race([
      command,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          turn = setImmediate(() =>
            reject(new MintfsError('ERR_STATE_UNAVAILABLE', `Redis: ${what} timed out`)),
          );
        }, timeoutMs);
      }),
    ]);
  } catch (err) {
    if (err instanceof MintfsError) throw err;
    throw new MintfsError('ERR_STATE_UNAVAILABLE', `Redis: ${what}: ${describeError(err)}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    if (turn !== undefined) clearImmediate(turn);
  }
}
