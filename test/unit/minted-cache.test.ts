/**
 * The minted-credential cache with an injected clock and a minter that counts
 * its calls: single flight, refresh ahead of expiry, backoff, the bound on
 * (agent, scope) entries, and revocation racing a mint.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { isMintfsError, MintfsError } from '../../src/errors.js';
import { Credential } from '../../src/credentials/credential.js';
import { MintedCache, type CacheEvent } from '../../src/credentials/minted-cache.js';
import type { MintRequest, Minted, Minter } from '../../src/credentials/source.js';
import { createLogger } from '../../src/log/logger.js';

const MINUTE = 60_000;

interface Harness {
  cache: MintedCache;
  now: { ms: number };
  mints: MintRequest[];
  revoked: Minted[];
  events: CacheEvent[];
  logs: Array<Record<string, unknown>>;
  /** Makes the next mints fail (with this reason) or succeed (undefined). */
  failWith(reason: string | undefined): void;
  /** Holds mints until release() is called. */
  hold(): () => void;
}

function harness(
  options: { lifeMs?: number; maxScopesPerAgent?: number; value?: () => string } = {},
): Harness {
  const now = { ms: Date.parse('2026-01-01T00:00:00Z') };
  const mints: MintRequest[] = [];
  const revoked: Minted[] = [];
  const events: CacheEvent[] = [];
  const logs: Array<Record<string, unknown>> = [];
  let failure: string | undefined;
  let gate: Promise<void> | undefined;
  const minter: Minter = {
    mint: async (request) => {
      mints.push(request);
      await gate;
      if (failure !== undefined)
        throw new MintfsError(
          'ERR_CREDENTIAL_UNAVAILABLE',
          `upstreams.github.credential: ${failure}`,
        );
      return {
        value: options.value?.() ?? `tok-${request.agent}-${request.scope.key}-${mints.length}`,
        expiresAt: now.ms + (options.lifeMs ?? 60 * MINUTE),
      };
    },
    revoke: (minted) => {
      revoked.push(minted);
      return Promise.resolve();
    },
  };
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const cache = new MintedCache({
    service: 'github',
    source: 'test',
    minter,
    logger: createLogger({ stream: sink }),
    clock: () => now.ms,
    count: (event) => events.push(event),
    ...(options.maxScopesPerAgent === undefined
      ? {}
      : { maxScopesPerAgent: options.maxScopesPerAgent }),
  });
  return {
    cache,
    now,
    mints,
    revoked,
    events,
    logs,
    failWith: (reason) => (failure = reason),
    hold: () => {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

const request = (agent: string, scope = ''): MintRequest => ({ agent, scope: { key: scope } });

async function codeOf(got: Credential | Promise<Credential>): Promise<string> {
  try {
    await got;
  } catch (err) {
    assert.ok(isMintfsError(err));
    return err.code;
  }
  assert.fail('expected a refusal');
}

describe('minted credential cache', () => {
  it('concurrent first requests share one mint; later ones are answered synchronously', async () => {
    const h = harness();
    const release = h.hold();
    const pending = Array.from({ length: 50 }, () => h.cache.get(request('a')));
    assert.ok(pending.every((p) => p instanceof Promise));
    release();
    const values = new Set((await Promise.all(pending)).map((c) => c.value));
    assert.equal(values.size, 1);
    assert.equal(h.mints.length, 1);
    const hit = h.cache.get(request('a'));
    assert.ok(hit instanceof Credential, 'a cached credential is returned at once');
    assert.deepEqual(h.events, ['mint', 'hit']);
  });

  it('agents and scopes each get their own credential', async () => {
    const h = harness();
    const a = await h.cache.get(request('a'));
    const b = await h.cache.get(request('b'));
    const a2 = await h.cache.get(request('a', 'repo:x'));
    assert.equal(new Set([a.value, b.value, a2.value]).size, 3);
    assert.equal(h.mints.length, 3);
  });

  it('a credential is refreshed in the background ahead of its expiry, and its predecessor stays redacted', async () => {
    const h = harness({ lifeMs: 60 * MINUTE });
    const first = await h.cache.get(request('a'));
    h.now.ms += 50 * MINUTE; // 10 minutes left: the refresh point is 5 minutes before expiry
    assert.equal(h.cache.get(request('a')), first);
    assert.equal(h.mints.length, 1, 'not refreshed before the refresh point');
    h.now.ms += 6 * MINUTE; // 4 minutes left
    assert.equal(h.cache.get(request('a')), first, 'the current one is served while refreshing');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(h.mints.length, 2);
    const second = h.cache.get(request('a'));
    assert.ok(second instanceof Credential);
    assert.notEqual(second.value, first.value);
    assert.deepEqual(second.secrets, [second.value, first.value]);
    assert.ok(h.events.includes('refresh'));
  });

  it('a credential is never handed out within its expiry margin', async () => {
    const h = harness({ lifeMs: 60_000 });
    const first = await h.cache.get(request('a'));
    h.now.ms += 55_000; // 5 s left of 60: inside the 6 s margin
    const next = h.cache.get(request('a'));
    assert.ok(next instanceof Promise, 'an almost-expired credential is not served');
    assert.notEqual((await next).value, first.value);
  });

  it('failures back off exponentially: one mint per window, one log line per failure, then recovery', async () => {
    const h = harness();
    h.failWith('command /usr/bin/x exited with status 1');
    assert.equal(await codeOf(h.cache.get(request('a'))), 'ERR_CREDENTIAL_UNAVAILABLE');
    for (let i = 0; i < 20; i++)
      assert.equal(await codeOf(h.cache.get(request('a'))), 'ERR_CREDENTIAL_UNAVAILABLE');
    assert.equal(h.mints.length, 1, 'no stampede inside the backoff');
    h.now.ms += 1000;
    assert.equal(await codeOf(h.cache.get(request('a'))), 'ERR_CREDENTIAL_UNAVAILABLE');
    assert.equal(h.mints.length, 2);
    h.now.ms += 1000; // the second backoff is 2 s
    await codeOf(h.cache.get(request('a')));
    assert.equal(h.mints.length, 2);
    const failures = h.logs.filter((l) => l.event === 'credential-mint-failed');
    assert.equal(failures.length, 2);
    assert.equal(failures[0]?.source, 'test');
    assert.equal(failures[0]?.reason, 'command /usr/bin/x exited with status 1');
    h.failWith(undefined);
    h.now.ms += 1000;
    const recovered = await h.cache.get(request('a'));
    assert.match(recovered.value, /^tok-a/);
  });

  it('an error that is not a source refusal is reported by its code only, never its text', async () => {
    const h = harness();
    const leaky: Minter = {
      mint: () => {
        const err = new Error('response body: {"secret":"s3cr3t"}') as Error & { code: string };
        err.code = 'ECONNRESET';
        return Promise.reject(err);
      },
    };
    const sink: string[] = [];
    const cache = new MintedCache({
      service: 'github',
      source: 'test',
      minter: leaky,
      logger: createLogger({
        stream: new Writable({ write: (c: Buffer, _e, d) => (sink.push(c.toString()), d()) }),
      }),
      clock: () => h.now.ms,
    });
    try {
      await cache.get(request('a'));
      assert.fail('expected a refusal');
    } catch (err) {
      assert.ok(isMintfsError(err));
      assert.match(err.message, /failed \(ECONNRESET\)/);
      assert.ok(!err.message.includes('s3cr3t'));
    }
    assert.ok(!sink.join('').includes('s3cr3t'));
  });

  it('a minted value that could inject a header is refused', async () => {
    const h = harness({ value: () => 'tok\r\nx-evil: 1' });
    assert.equal(await codeOf(h.cache.get(request('a'))), 'ERR_CREDENTIAL_UNAVAILABLE');
  });

  it("an agent's distinct scopes are bounded; an expired one makes room", async () => {
    const h = harness({ maxScopesPerAgent: 3, lifeMs: 10 * MINUTE });
    for (const scope of ['r1', 'r2', 'r3']) await h.cache.get(request('a', scope));
    assert.equal(await codeOf(h.cache.get(request('a', 'r4'))), 'ERR_TOO_MANY_REQUESTS');
    assert.equal(h.mints.length, 3, 'no mint for a scope over the bound');
    // Another agent is not held back by this one.
    await h.cache.get(request('b', 'r4'));
    h.now.ms += 11 * MINUTE;
    await h.cache.get(request('a', 'r4'));
    assert.ok(h.cache.size <= 4);
  });

  it('dropping an agent returns its live credentials, and a mint in flight is revoked, not cached', async () => {
    const h = harness();
    const live = await h.cache.get(request('a'));
    const release = h.hold();
    const inflight = h.cache.get(request('a', 'other'));
    const dropped = h.cache.dropAgent('a');
    assert.deepEqual(
      dropped.map((m) => m.value),
      [live.value],
    );
    release();
    assert.equal(await codeOf(inflight), 'ERR_CREDENTIAL_UNAVAILABLE');
    assert.equal(h.revoked.length, 1, 'the credential minted after the drop is revoked');
    assert.equal(h.cache.size, 0);
    const fresh = await h.cache.get(request('a'));
    assert.notEqual(fresh.value, live.value);
  });
});
