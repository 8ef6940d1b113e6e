/**
 * The state a gateway shares with the others, composed once: with `redis`,
 * use budgets counted in Redis and the shared revocation list; without it,
 * budgets counted in this process (refused outright with several workers,
 * whose separate counts would multiply every budget) and revocations from
 * the keyring's files alone.
 */
import type { Logger } from '../log/logger.js';
import { RevocationList, type RevocationFeed } from '../revocation/revocations.js';
import type { RedisConnection } from './redis.js';
import { MemoryUseCounter, RefusingUseCounter, type UseCounter } from './use-counter.js';

export interface GatewayState {
  readonly useCounter: UseCounter;
  /** The keyring's revocations joined with the shared ones. */
  revocations(files: RevocationList): RevocationList;
  /** The shared revocations as they change, when there is a Redis. */
  readonly shared: RevocationFeed | undefined;
  /** Why no token can be judged now (the shared revocations are unknown or too old), or undefined. */
  problem(now: Date): string | undefined;
  /** The Redis connection, when there is one (held approvals are shared on it too). */
  readonly redis: RedisConnection | undefined;
  /** Redis health, when there is a Redis. */
  redisUp(): boolean | undefined;
  /** Whether the shared revocation list is out of date, when there is one. */
  revocationsStale(): boolean | undefined;
  close(): Promise<void>;
}

export interface SharedStateOptions {
  readonly redis?: { readonly url: string; readonly staleAfter: number } | undefined;
  /** Gateway processes (workers) sharing this config. */
  readonly workers: number;
}

export async function openGatewayState(
  config: SharedStateOptions,
  logger: Logger,
  clock: () => Date,
): Promise<GatewayState> {
  if (config.redis === undefined) return localGatewayState(config.workers, logger);
  // Loaded only when configured: the Redis client is a tenth of a gateway's memory.
  const [{ connectRedis, redisUrlForLog }, { SharedRevocations }, { RedisUseCounter }] =
    await Promise.all([
      import('./redis.js'),
      import('./shared-revocations.js'),
      import('./redis-use-counter.js'),
    ]);
  const redis = await connectRedis(config.redis.url, logger);
  const shared = await SharedRevocations.start(redis, {
    staleAfterMs: config.redis.staleAfter,
    logger,
    clock,
  });
  logger.info(
    { event: 'shared-state', redis: redisUrlForLog(config.redis.url), up: redis.up() },
    'use budgets and revocations are shared through Redis',
  );
  // Joined once per change of either list, not per request.
  let joined: { files: RevocationList; shared: RevocationList; list: RevocationList } | undefined;
  return {
    useCounter: new RedisUseCounter(redis),
    revocations: (files) => {
      const current = shared.current();
      if (joined?.files !== files || joined.shared !== current)
        joined = {
          files,
          shared: current,
          list: new RevocationList([...files.records, ...current.records]),
        };
      return joined.list;
    },
    shared: {
      get current() {
        return shared.current();
      },
      onReload: (listener) => shared.onChange(listener),
    },
    problem: (now) => shared.problem(now),
    redis,
    redisUp: () => redis.up(),
    revocationsStale: () => shared.stale,
    close: async () => {
      shared.close();
      await redis.close();
    },
  };
}

/** State without Redis: budgets counted in this process (refused with several workers), revocations from files. */
export function localGatewayState(workers: number, logger: Logger): GatewayState {
  if (workers > 1)
    logger.warn(
      { event: 'use-budgets-refused', workers },
      'tokens with a use budget (uses) are refused: with several workers and no redis, each would count them apart',
    );
  return {
    useCounter:
      workers > 1
        ? new RefusingUseCounter(
            'use budgets with workers > 1 need redis (each worker would count apart)',
          )
        : new MemoryUseCounter(),
    revocations: (files) => files,
    shared: undefined,
    problem: () => undefined,
    redis: undefined,
    redisUp: () => undefined,
    revocationsStale: () => undefined,
    close: () => Promise.resolve(),
  };
}
