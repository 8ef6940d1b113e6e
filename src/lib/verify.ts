/**
 * `mintfs/verify`: accept mintfs tokens directly in a first-party service,
 * with the same pipeline the gateway uses (decode, signature, revocation,
 * caveats, use budgets) over a keyring directory that is watched like the
 * gateway's: rotations, retirements and revocations apply within a second.
 *
 *   import { createTokenVerifier } from 'mintfs/verify';
 *   const verifier = createTokenVerifier({ keys: '/var/lib/mintfs/keys' });
 *   const verdict = await verifier.checkAndSpend(token, { service: 'billing', method: 'GET', url: 'https://billing.internal/invoices/7' });
 *   if (!verdict.allowed) return reply(401, verdict.code);   // typed: ERR_TOKEN_EXPIRED, ERR_TOKEN_USES_SPENT, ...
 *   await verifier.close();
 *
 * Use budgets (`uses N`) are spent here, as the gateway spends them: in this
 * process's memory by default (one count for every verifier in the process;
 * refused in a cluster worker, whose siblings would count apart), in Redis
 * when given the gateway's `redis`
 * setting (then every gateway and service sharing it counts one budget, and
 * the revocations recorded there apply too). Spending is asynchronous, so
 * only checkAndSpend spends; check() is the synchronous answer for tokens
 * without a budget and refuses a budgeted one (ERR_TOKEN_USES_UNCOUNTED):
 * a budgeted token is never accepted by a path that did not count it.
 *
 * Neither ever throws or rejects, whatever it is given (the token and the
 * request come from clients): every refusal is a Denial with a code.
 */
import cluster from 'node:cluster';
import * as z from 'zod';
import { MintfsError, describeError, type MintfsErrorCode } from '../errors.js';
import { RedisSchema } from '../gateway/config.js';
import { reloadIfKeyAppeared, watchKeyring } from '../keys/watch-keyring.js';
import { createLogger, type Logger } from '../log/logger.js';
import { revocationsDir } from '../revocation/revocations.js';
import { watchRevocations } from '../revocation/watch-revocations.js';
import { localGatewayState, openGatewayState, type GatewayState } from '../state/gateway-state.js';
import { MemoryUseCounter, RefusingUseCounter, type UseCounter } from '../state/use-counter.js';
import { splitUrl } from '../token/request-path.js';
import type { Denial, Verdict } from '../token/verify.js';
import { createVerifier, type Checked } from '../verifier/verifier.js';
import { installNativeHmacChain } from '../verifier/native-hmac.js';

export type { Denial, MintfsErrorCode, Verdict };
export { MintfsError };

export interface TokenVerifierOptions {
  /** The keyring directory (the same one the mounts sign with). */
  readonly keys: string;
  /**
   * Count use budgets, and read revocations, in this Redis: the gateway
   * config's `redis` setting, as written there (a URL, or { url, staleAfter }
   * with staleAfter such as '30s'). Without it budgets are counted in this
   * process's memory, apart from any gateway's.
   */
  readonly redis?: string | { readonly url: string; readonly staleAfter?: string };
  /** Where reload and failure lines go; silent by default. */
  readonly logger?: Logger;
  /** The clock; `new Date()` by default. */
  readonly clock?: () => Date;
}

export interface RequestToCheck {
  /** The service this request is for: the `service` caveat must name it. */
  readonly service: string;
  readonly method: string;
  /** The absolute URL as the client sent it (its host and raw path are what caveats judge). */
  readonly url: string;
}

export interface TokenVerifier {
  /**
   * Whether this request may go ahead with this token, for tokens without a
   * use budget. A token with one is refused (ERR_TOKEN_USES_UNCOUNTED): only
   * checkAndSpend counts uses. Never throws.
   */
  check(token: string, request: RequestToCheck): Verdict;
  /**
   * check, then one use spent of a token with a budget: the verdict reports
   * the budget (`uses`) and the uses spent, this one included (`used`); the
   * (N+1)th is ERR_TOKEN_USES_SPENT; a count that cannot be made (Redis
   * away) is ERR_STATE_UNAVAILABLE. A use is spent only when every other
   * check passed, and never given back. Never rejects.
   */
  checkAndSpend(token: string, request: RequestToCheck): Promise<Verdict>;
  /**
   * Resolves once the verifier can judge: at once without `redis`; with it,
   * once the first connection was tried (check() refuses every token before).
   * Never rejects.
   */
  ready(): Promise<void>;
  /** Stops watching the keyring and revocations, and closes the Redis connection. */
  close(): Promise<void>;
}

const RequestSchema = z.object({
  service: z.string(),
  method: z.string(),
  url: z.string(),
});

/** Throws ERR_KEYRING_MISSING (and the like) when the keyring cannot be used at all, ERR_INPUT_INVALID for a bad `redis`. */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const logger = options.logger ?? createLogger({ level: 'silent' });
  const clock = options.clock ?? (() => new Date());
  const redis = redisSetting(options.redis);
  installNativeHmacChain();
  const keyring = watchKeyring(options.keys, logger, 'verify');
  const revocations = watchRevocations(revocationsDir(options.keys), logger);

  // Without Redis the state is at hand; with it, it is ready once connected,
  // and until then (or if it cannot be made) every token is refused.
  let state: GatewayState | undefined =
    redis === undefined
      ? { ...localGatewayState(1, logger), useCounter: inMemoryCounter() }
      : undefined;
  let stateFailure: string | undefined;
  let closed = false;
  const ready: Promise<void> =
    redis === undefined
      ? Promise.resolve()
      : openGatewayState({ redis, workers: 1 }, logger, clock).then(
          async (opened) => {
            if (closed) await opened.close();
            else state = opened;
          },
          (err: unknown) => {
            stateFailure = `Redis: ${describeError(err)}`;
          },
        );

  const verifier = createVerifier({
    keyring: () => keyring.current,
    reloadKeyringFor: (keyId) => reloadIfKeyAppeared(keyring, keyId),
    revocations: () =>
      state === undefined ? revocations.current : state.revocations(revocations.current),
  });

  /** The whole pipeline but the spending, for any input. */
  const judge = (token: unknown, request: unknown, now: Date): Checked => {
    if (closed) return { verdict: denial('ERR_STATE_UNAVAILABLE', 'the verifier is closed') };
    const problem =
      state === undefined
        ? (stateFailure ?? 'the connection to Redis is not ready yet')
        : state.problem(now);
    if (problem !== undefined) return { verdict: denial('ERR_STATE_UNAVAILABLE', problem) };
    if (typeof token !== 'string')
      return { verdict: denial('ERR_TOKEN_MALFORMED', 'the token is not a string') };
    const parsed = RequestSchema.safeParse(request);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field =
        issue === undefined || issue.path.length === 0 ? '' : `.${issue.path.join('.')}`;
      return {
        verdict: denial(
          'ERR_REQUEST_INVALID',
          `request${field}: ${issue?.message ?? 'not a request'}`,
        ),
      };
    }
    const target = splitUrl(parsed.data.url);
    if (target === undefined)
      return {
        verdict: denial('ERR_REQUEST_INVALID', 'request.url: not an absolute http(s) URL'),
      };
    return verifier.check(
      token,
      {
        service: parsed.data.service,
        method: parsed.data.method,
        host: target.host,
        rawPath: target.rawPath,
      },
      now,
    );
  };

  return {
    check(token, request) {
      try {
        const { verdict, token: authenticated } = judge(token, request, clock());
        if (!verdict.allowed || authenticated?.uses === undefined) return verdict;
        // Accepting it here would let it make any number of requests.
        return {
          ...factsOf(verdict),
          allowed: false,
          code: 'ERR_TOKEN_USES_UNCOUNTED',
          reason: `token ${authenticated.tokenId} has a use budget (uses ${authenticated.uses}): check() does not spend it, checkAndSpend() does`,
        };
      } catch (err) {
        return unexpected(err);
      }
    },

    async checkAndSpend(token, request) {
      try {
        await ready;
        const now = clock();
        const { verdict, token: authenticated } = judge(token, request, now);
        const budget = authenticated?.uses;
        if (!verdict.allowed || authenticated === undefined || budget === undefined) return verdict;
        if (state === undefined)
          return denial('ERR_STATE_UNAVAILABLE', 'the use count is out of reach');
        const spent = await state.useCounter.spend(
          authenticated.tokenId,
          budget,
          authenticated.mintedExpiresAt,
          now,
        );
        if (spent.ok) return { ...verdict, used: spent.used };
        if (spent.reason === 'spent')
          return {
            ...factsOf(verdict),
            used: spent.used,
            allowed: false,
            code: 'ERR_TOKEN_USES_SPENT',
            reason: `token ${authenticated.tokenId} has made its ${budget} ${budget === 1 ? 'request' : 'requests'} (caveat "uses ${budget}")`,
          };
        return {
          ...factsOf(verdict),
          allowed: false,
          code: 'ERR_STATE_UNAVAILABLE',
          reason: `the use budget of token ${authenticated.tokenId} cannot be counted (${spent.detail}); refused rather than risk spending it twice`,
        };
      } catch (err) {
        return unexpected(err);
      }
    },

    ready: () => ready,

    async close() {
      if (closed) return;
      closed = true;
      keyring.close();
      revocations.close();
      await ready;
      await state?.close();
    },
  };
}

/**
 * Without Redis, budgets are counted once per process, not per verifier: a
 * service that made a verifier per request (or one per route) would
 * otherwise count every budget afresh. Token ids are random, so one count
 * serves every keyring.
 */
let processCounter: UseCounter | undefined;

function inMemoryCounter(): UseCounter {
  // Each cluster worker would count apart from its siblings, multiplying
  // every budget: refused, as a gateway with workers and no Redis refuses.
  if (cluster.isWorker)
    return new RefusingUseCounter(
      'use budgets in a cluster worker need redis (each process would count apart)',
    );
  return (processCounter ??= new MemoryUseCounter());
}

/** The gateway's `redis` setting, checked by the gateway's schema. */
function redisSetting(
  value: TokenVerifierOptions['redis'],
): { url: string; staleAfter: number } | undefined {
  if (value === undefined) return undefined;
  const parsed = RedisSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue === undefined || issue.path.length === 0 ? '' : `.${issue.path.join('.')}`;
  throw new MintfsError('ERR_INPUT_INVALID', `redis${field}: ${issue?.message ?? 'invalid'}`);
}

function factsOf(verdict: Verdict): Omit<Verdict, 'allowed' | 'expiresAt'> {
  const { tokenId, keyId, agent, uses } = verdict;
  return {
    ...(tokenId === undefined ? {} : { tokenId }),
    ...(keyId === undefined ? {} : { keyId }),
    ...(agent === undefined ? {} : { agent }),
    ...(uses === undefined ? {} : { uses }),
  };
}

function denial(code: MintfsErrorCode, reason: string): Denial {
  return { allowed: false, code, reason };
}

/** A failure nothing above foresaw (a request object whose getters throw): refused, never thrown. */
function unexpected(err: unknown): Denial {
  let detail: string;
  try {
    detail = describeError(err);
  } catch {
    // Even its message may be hostile (a toString that throws).
    detail = 'an unreadable error';
  }
  return denial('ERR_REQUEST_INVALID', `the request could not be judged: ${detail}`);
}
