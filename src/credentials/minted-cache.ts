/**
 * Minted upstream credentials, cached per (agent, scope) for one source.
 *
 * - A hit is answered synchronously (the request path stays as fast as a
 *   static credential's).
 * - Concurrent first requests share one mint (single flight).
 * - A credential is refreshed in the background once most of its life is
 *   spent, and never handed out within a margin of its expiry.
 * - A failed mint answers ERR_CREDENTIAL_UNAVAILABLE with the source's
 *   reason (never its output or secret), logs one line, and backs off
 *   exponentially, so an outage is not a stampede on the upstream.
 * - An agent controls its token's scope (it can append caveats) and so the
 *   key's cardinality: each agent holds at most `maxScopesPerAgent` entries,
 *   and the cache at most `maxEntries`; beyond that a request is refused,
 *   never served by an unbounded number of mints.
 */
import { MintfsError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { Credential } from './credential.js';
import type { MintRequest, Minted, Minter } from './source.js';
import { checkCredentialValue } from './value.js';

export type CacheEvent = 'mint' | 'hit' | 'refresh' | 'failure';

export interface MintedCacheOptions {
  readonly service: string;
  /** The source kind, for logs and metrics: `command`, `oauth2`, `githubApp`. */
  readonly source: string;
  readonly minter: Minter;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly count?: (event: CacheEvent) => void;
  readonly maxScopesPerAgent?: number;
  readonly maxEntries?: number;
}

/** Backoff after consecutive failures: 1 s, 2 s, 4 s ... up to a minute. */
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
/** A credential is refreshed once this much of its life is left (at most REFRESH_AHEAD_MAX_MS). */
const REFRESH_AHEAD_FRACTION = 0.25;
const REFRESH_AHEAD_MAX_MS = 5 * 60_000;
/** Never handed out this close to its expiry: the upstream must still accept it on arrival. */
const EXPIRY_MARGIN_FRACTION = 0.1;
const EXPIRY_MARGIN_MAX_MS = 30_000;

interface Live {
  readonly minted: Minted;
  readonly credential: Credential;
  readonly refreshAt: number;
  readonly usableUntil: number;
}

interface Entry {
  readonly agent: string;
  readonly request: MintRequest;
  live?: Live;
  /** Credentials this entry minted that may still be valid upstream (for revocation). */
  readonly issued: Minted[];
  inflight?: Promise<Credential> | undefined;
  failures: number;
  retryAt: number;
  lastReason?: string;
  version: number;
}

export class MintedCache {
  readonly #o: MintedCacheOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #perAgent = new Map<string, Set<string>>();
  readonly #maxScopes: number;
  readonly #maxEntries: number;
  #closed = false;

  constructor(options: MintedCacheOptions) {
    this.#o = options;
    this.#maxScopes = options.maxScopesPerAgent ?? 16;
    this.#maxEntries = options.maxEntries ?? 4096;
  }

  /** The credential for this agent and scope: at once when cached, else once minted. */
  get(request: MintRequest): Credential | Promise<Credential> {
    const now = this.#o.clock();
    const key = `${request.agent}\u0000${request.scope.key}`;
    const found = this.#entries.get(key) ?? this.#admit(key, request, now);
    if (found instanceof MintfsError) return Promise.reject(found);
    const entry = found;
    const live = entry.live;
    if (live !== undefined && now < live.usableUntil) {
      this.#o.count?.('hit');
      if (now >= live.refreshAt && entry.inflight === undefined && now >= entry.retryAt)
        // Served the current one; the next request gets the fresh one. Errors are logged there.
        this.#mint(key, entry, true).catch(() => undefined);
      return live.credential;
    }
    if (entry.inflight !== undefined) return entry.inflight;
    if (now < entry.retryAt) return Promise.reject(this.#unavailable(entry, now));
    return this.#mint(key, entry, false);
  }

  /** Drops an agent's credentials; returns those that may still be valid upstream. */
  dropAgent(agent: string): Minted[] {
    const keys = this.#perAgent.get(agent);
    if (keys === undefined) return [];
    const dropped: Minted[] = [];
    for (const key of keys) {
      const entry = this.#entries.get(key);
      if (entry) dropped.push(...entry.issued);
      this.#entries.delete(key);
    }
    this.#perAgent.delete(agent);
    return this.#stillValid(dropped);
  }

  /** Drops everything; returns what may still be valid upstream. */
  dropAll(): Minted[] {
    this.#closed = true;
    const dropped = [...this.#entries.values()].flatMap((entry) => entry.issued);
    this.#entries.clear();
    this.#perAgent.clear();
    return this.#stillValid(dropped);
  }

  /** How many (agent, scope) entries are held (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  #stillValid(minted: Minted[]): Minted[] {
    const now = this.#o.clock();
    return minted.filter((m) => m.expiresAt > now);
  }

  #admit(key: string, request: MintRequest, now: number): Entry | MintfsError {
    const { agent } = request;
    let keys = this.#perAgent.get(agent);
    if (keys !== undefined && keys.size >= this.#maxScopes) this.#evictSpent(keys, now);
    if (keys !== undefined && keys.size >= this.#maxScopes)
      return new MintfsError(
        'ERR_TOO_MANY_REQUESTS',
        `agent ${agent} already holds ${keys.size} differently scoped ${this.#o.service} credentials; retry when one expires`,
      );
    if (this.#entries.size >= this.#maxEntries) this.#evictSpent(undefined, now);
    if (this.#entries.size >= this.#maxEntries)
      return new MintfsError(
        'ERR_TOO_MANY_REQUESTS',
        `the gateway holds ${this.#entries.size} ${this.#o.service} credentials; retry when one expires`,
      );
    const entry: Entry = { agent, request, issued: [], failures: 0, retryAt: 0, version: 0 };
    this.#entries.set(key, entry);
    if (keys === undefined) this.#perAgent.set(agent, (keys = new Set()));
    keys.add(key);
    return entry;
  }

  /** Removes entries with nothing live and nothing in flight (expired ones can be minted again). */
  #evictSpent(keys: Set<string> | undefined, now: number): void {
    for (const key of keys ?? this.#entries.keys()) {
      const entry = this.#entries.get(key);
      if (entry === undefined || entry.inflight !== undefined) continue;
      if (entry.live !== undefined && now < entry.live.minted.expiresAt) continue;
      // Inside a backoff the entry stays: dropping it would lift the backoff.
      if (now < entry.retryAt) continue;
      this.#entries.delete(key);
      const agentKeys = this.#perAgent.get(entry.agent);
      agentKeys?.delete(key);
      if (agentKeys?.size === 0) this.#perAgent.delete(entry.agent);
    }
  }

  #mint(key: string, entry: Entry, refresh: boolean): Promise<Credential> {
    const started = this.#o.clock();
    const { service, source, logger } = this.#o;
    // Started on the next tick, so `entry.inflight` is set before anything in it can clear it.
    const inflight = Promise.resolve().then(async () => {
      let minted: Minted;
      try {
        minted = await this.#o.minter.mint(entry.request);
        const value = checkCredentialValue(minted.value, (reason) =>
          mintFailure(`minted a credential that ${reason}`),
        );
        if (value !== minted.value) minted = { ...minted, value };
        if (!(minted.expiresAt > this.#o.clock()))
          throw mintFailure('minted a credential that has already expired');
      } catch (err) {
        const now = this.#o.clock();
        entry.failures += 1;
        entry.retryAt = now + Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (entry.failures - 1));
        entry.lastReason = reasonOf(err);
        this.#o.count?.('failure');
        logger.error(
          {
            event: 'credential-mint-failed',
            service,
            source,
            agent: entry.agent,
            reason: entry.lastReason,
            retryInMs: entry.retryAt - now,
          },
          `the ${source} credential source for ${service} failed`,
        );
        throw this.#unavailable(entry, now);
      } finally {
        entry.inflight = undefined;
      }
      // Revoked (or closed) while minting: not cached, and ended upstream when the source can.
      if (this.#closed || this.#entries.get(key) !== entry) {
        void this.#o.minter.revoke?.(minted).catch(() => undefined);
        throw new MintfsError(
          'ERR_CREDENTIAL_UNAVAILABLE',
          `the ${service} credential was revoked while it was minted`,
        );
      }
      const now = this.#o.clock();
      const life = minted.expiresAt - now;
      const previous = entry.live?.credential.value;
      entry.version += 1;
      entry.failures = 0;
      entry.retryAt = 0;
      entry.issued.push(minted);
      // Only credentials that may still be valid are kept for revocation.
      entry.issued.splice(0, entry.issued.length, ...entry.issued.filter((m) => m.expiresAt > now));
      entry.live = {
        minted,
        credential: new Credential(service, minted.value, entry.version, previous, minted.aws),
        refreshAt: minted.expiresAt - Math.min(REFRESH_AHEAD_MAX_MS, life * REFRESH_AHEAD_FRACTION),
        usableUntil:
          minted.expiresAt - Math.min(EXPIRY_MARGIN_MAX_MS, life * EXPIRY_MARGIN_FRACTION),
      };
      this.#o.count?.(refresh ? 'refresh' : 'mint');
      logger.info(
        {
          event: 'credential-minted',
          service,
          source,
          agent: entry.agent,
          version: entry.version,
          expiresAt: new Date(minted.expiresAt).toISOString(),
          refresh,
          durationMs: now - started,
        },
        `minted a ${service} credential`,
      );
      return entry.live.credential;
    });
    entry.inflight = inflight;
    return inflight;
  }

  #unavailable(entry: Entry, now: number): MintfsError {
    const wait = Math.max(0, Math.ceil((entry.retryAt - now) / 1000));
    return new MintfsError(
      'ERR_CREDENTIAL_UNAVAILABLE',
      `upstream ${this.#o.service}'s credential (${this.#o.source} source) is unavailable: ${entry.lastReason ?? 'failed'}; retried in ${wait} s`,
    );
  }
}

function mintFailure(reason: string): MintfsError {
  return new MintfsError('ERR_CREDENTIAL_UNAVAILABLE', reason);
}

/**
 * What the log and the agent are told: a source's own reason (sources never
 * put a secret or output in one), else only an error's code, never its text.
 */
function reasonOf(err: unknown): string {
  if (err instanceof MintfsError && err.code === 'ERR_CREDENTIAL_UNAVAILABLE')
    return err.message.replace(/^upstreams\.[^:]*: /, '');
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `failed (${code})` : 'failed';
}
