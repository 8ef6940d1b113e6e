/**
 * The real upstream credentials, held only by the gateway: the pipeline that
 * asks each upstream's credential source (src/credentials/) for the value a
 * request gets.
 *
 * Static sources (`file`, `env`) are read at start-up (a gateway that starts
 * has every credential) and a credential file is re-read when it changes, so
 * rotating one needs no restart. A bad new file keeps the last good
 * credential in use and logs why. The previous credential is remembered, so a
 * response echoing it during rotation is still redacted.
 *
 * Minting sources (`command`, ...) are checked at start-up and mint per
 * (agent, scope) on first use, through a MintedCache.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { MintfsError } from '../errors.js';
import { Credential } from '../credentials/credential.js';
import { MintedCache, type CacheEvent } from '../credentials/minted-cache.js';
import {
  openSource,
  sourceKindName,
  type CredentialSourceConfig,
} from '../credentials/registry.js';
import {
  UNSCOPED,
  type CredentialScope,
  type Minted,
  type TokenScope,
} from '../credentials/source.js';
import type { Logger } from '../log/logger.js';
import type { UpstreamConfig } from './config.js';
import { isAwsCredential, openAwsCredential } from '../aws/index.js';

export { Credential };

interface StaticSlot {
  readonly kind: 'static';
  current: Credential;
  /** The credential after the current one, from its source now (throws naming the source). */
  readonly next: (current: Credential) => Credential;
}

interface MintedSlot {
  readonly kind: 'minted';
  readonly cache: MintedCache;
  readonly revoke: ((minted: Minted) => Promise<void>) | undefined;
  readonly scope: ((token: TokenScope) => CredentialScope | string) | undefined;
  readonly close: () => void;
}

/** Hears each minting source's cache events (metrics). */
export type CredentialCount = (service: string, source: string, event: CacheEvent) => void;

export interface CredentialStoreOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly clock?: () => number;
  readonly count?: CredentialCount;
}

/** The agent name minted credentials of tokens without an `agent` caveat are kept under. */
export const NO_AGENT = '';

export class CredentialStore {
  readonly #slots = new Map<string, StaticSlot | MintedSlot>();
  readonly #watched: string[] = [];
  readonly #files: Array<[service: string, file: string]> = [];
  readonly #logger: Logger;

  constructor(
    upstreams: Readonly<Record<string, UpstreamConfig>>,
    logger: Logger,
    options: CredentialStoreOptions = {},
  ) {
    this.#logger = logger;
    const clock = options.clock ?? Date.now;
    for (const [service, upstream] of Object.entries(upstreams)) {
      const context = { service, env: options.env ?? process.env, logger, clock };
      const aws = isAwsCredential(upstream.credential)
        ? openAwsCredential(upstream.credential, context)
        : undefined;
      if (aws?.kind === 'static') {
        // A key pair to sign with (sign: sigv4): the secret key is the value, re-read as one.
        const opened = aws;
        const make = (version: number, previous?: Credential) => {
          const keys = opened.read();
          return new Credential(service, keys.secretAccessKey, version, previous?.value, keys);
        };
        this.#slots.set(service, {
          kind: 'static',
          current: make(1),
          next: (current) => make(current.version + 1, current),
        });
        for (const file of opened.watch) this.#files.push([service, file]);
        continue;
      }
      const source =
        aws === undefined
          ? sourceKindName(upstream.credential as CredentialSourceConfig)
          : 'assumeRole';
      const opened = aws ?? openSource(upstream.credential as CredentialSourceConfig, context);
      if (opened.kind === 'static') {
        const current = new Credential(service, opened.read(), 1);
        const next = (now: Credential) =>
          new Credential(service, opened.read(), now.version + 1, now.value);
        this.#slots.set(service, { kind: 'static', current, next });
        if (opened.watch !== undefined) this.#files.push([service, opened.watch]);
      } else {
        const cache = new MintedCache({
          service,
          source,
          minter: opened.minter,
          logger,
          clock,
          ...(options.count ? { count: (event) => options.count?.(service, source, event) } : {}),
        });
        this.#slots.set(service, {
          kind: 'minted',
          cache,
          revoke: opened.minter.revoke?.bind(opened.minter),
          scope: opened.minter.scope?.bind(opened.minter),
          close: () => opened.minter.close?.(),
        });
      }
    }
    for (const [service, file] of this.#files) this.#watch(service, file);
  }

  /**
   * The credential a request of `agent` (undefined: a token without an agent
   * caveat) gets: at once for a static or cached one, else once minted.
   * Rejects with ERR_CREDENTIAL_UNAVAILABLE (or ERR_TOO_MANY_REQUESTS).
   */
  obtain(
    service: string,
    agent: string | undefined,
    token: TokenScope = {},
  ): Credential | Promise<Credential> {
    const slot = this.#slots.get(service);
    if (!slot) throw new MintfsError('ERR_SERVICE_UNKNOWN', `no credential for service ${service}`);
    const scope = slot.kind === 'minted' && slot.scope ? slot.scope(token) : UNSCOPED;
    // A token narrowed for GitHub, sent where the credential cannot be narrowed, would get more than it says.
    if (token.github !== undefined && (slot.kind === 'static' || !slot.scope))
      throw new MintfsError(
        'ERR_CAVEAT_UNSATISFIED',
        `the token's github caveats cannot narrow upstream ${service}'s credential (only a githubApp source can)`,
      );
    // The same for a session policy, which only an assumed role can carry.
    if (token.awsPolicies !== undefined && (slot.kind === 'static' || !slot.scope))
      throw new MintfsError(
        'ERR_CAVEAT_UNSATISFIED',
        `the token's aws-policy caveat cannot narrow upstream ${service}'s credential (only an aws assumeRole can)`,
      );
    if (typeof scope === 'string') throw new MintfsError('ERR_CAVEAT_UNSATISFIED', scope);
    if (slot.kind === 'static') return slot.current;
    return slot.cache.get({ agent: agent ?? NO_AGENT, scope });
  }

  /** A static credential (file or env). */
  current(service: string): Credential {
    const slot = this.#slots.get(service);
    if (slot?.kind !== 'static')
      throw new MintfsError('ERR_SERVICE_UNKNOWN', `no static credential for service ${service}`);
    return slot.current;
  }

  /** Values a response must never carry back: the current and the previous static credential. */
  secretsFor(service: string): readonly string[] {
    const slot = this.#slots.get(service);
    return slot?.kind === 'static' ? slot.current.secrets : [];
  }

  /** The same, as bytes, for searching bodies. */
  secretBytesFor(service: string): readonly Buffer[] {
    const slot = this.#slots.get(service);
    return slot?.kind === 'static' ? slot.current.secretBytes : [];
  }

  /** Re-reads one service's credential file now (the watcher calls this on change). */
  reload(service: string): void {
    const slot = this.#slots.get(service);
    if (slot?.kind !== 'static') return;
    let next: Credential;
    try {
      next = slot.next(slot.current);
    } catch (err) {
      this.#logger.error(
        {
          event: 'credential-reload-failed',
          service,
          reason: err instanceof Error ? err.message : String(err),
        },
        'keeping the last good credential',
      );
      return;
    }
    if (sameCredential(next, slot.current)) return;
    slot.current = next;
    this.#logger.info(
      { event: 'credential-reloaded', service, version: slot.current.version },
      'credential rotated',
    );
  }

  /** Re-reads every credential file now (SIGHUP). */
  reloadAll(): void {
    for (const service of new Set(this.#files.map(([service]) => service))) this.reload(service);
  }

  /**
   * Stops watching, drops every minted credential and revokes upstream those
   * whose source can (GitHub installation tokens); resolves when the
   * revocations are answered (each bounded by its source's timeout).
   */
  async close(): Promise<void> {
    for (const file of this.#watched) unwatchFile(file);
    this.#watched.length = 0;
    const revoking: Array<Promise<void>> = [];
    for (const [service, slot] of this.#slots)
      if (slot.kind === 'minted') revoking.push(this.#revoke(service, slot, slot.cache.dropAll()));
    await Promise.all(revoking);
    for (const slot of this.#slots.values()) if (slot.kind === 'minted') slot.close();
  }

  /** Drops an agent's minted credentials (`mintfs revoke --agent`) and revokes them upstream where the source can. */
  async revokeAgent(agent: string): Promise<void> {
    await Promise.all(
      [...this.#slots].map(([service, slot]) =>
        slot.kind === 'minted'
          ? this.#revoke(service, slot, slot.cache.dropAgent(agent), agent)
          : Promise.resolve(),
      ),
    );
  }

  async #revoke(
    service: string,
    slot: MintedSlot,
    minted: readonly Minted[],
    agent?: string,
  ): Promise<void> {
    if (minted.length === 0) return;
    const revoke = slot.revoke;
    const results =
      revoke === undefined ? [] : await Promise.allSettled(minted.map((one) => revoke(one)));
    const failed = results.filter((r) => r.status === 'rejected').length;
    this.#logger[failed === 0 ? 'info' : 'error'](
      {
        event: 'credential-revoked',
        service,
        ...(agent === undefined ? {} : { agent }),
        dropped: minted.length,
        // What the source ended upstream (a source without revocation ends nothing there).
        revokedUpstream: results.length - failed,
        failed,
      },
      failed === 0
        ? 'dropped minted credentials'
        : 'some minted credentials could not be revoked upstream',
    );
  }

  #watch(service: string, file: string): void {
    // Stat polling, not inotify: it sees atomic replacement (rename over the
    // file), edits in place, and files on any file system alike.
    watchFile(file, { interval: 250, persistent: false }, (now, before) => {
      if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size)
        this.reload(service);
    });
    this.#watched.push(file);
  }
}

function sameCredential(a: Credential, b: Credential): boolean {
  return (
    a.value === b.value &&
    a.aws?.accessKeyId === b.aws?.accessKeyId &&
    a.aws?.sessionToken === b.aws?.sessionToken
  );
}
