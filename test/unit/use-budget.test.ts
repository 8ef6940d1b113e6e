/**
 * Use budgets: the `uses` caveat (parsed strictly, the smallest one wins, so
 * attenuation can only lower a budget), the minter writing it from a
 * profile, the in-process counter, and the gateway config that shares
 * counts through Redis. Counting across gateways is shared-state.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { parseProfile } from '../../src/profile/load-profile.js';
import { buildTree } from '../../src/fs/virtual-tree.js';
import { MemoryUseCounter, RefusingUseCounter } from '../../src/state/use-counter.js';
import { redisUrlForLog } from '../../src/state/redis.js';
import { MAX_USES, formatTimeBefore, parseCaveat } from '../../src/token/caveats.js';
import { chainSignature, derivedKeyOf, encodeMacaroonV2 } from '../../src/token/macaroon-codec.js';
import { decodeToken, encodeTokenText } from '../../src/token/token-text.js';
import { mintToken } from '../../src/token/mint.js';
import { authenticateToken } from '../../src/token/verify.js';
import { GRANT, NOW, appendRawCaveats, keyLookup, newKey } from '../helpers/tokens.js';
import { isMintfsError } from '../../src/errors.js';

describe('the uses caveat', () => {
  it('parses whole numbers from 1 to the maximum, and nothing else', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_USES }), (n) => {
        const parsed = parseCaveat(`uses ${n}`);
        assert.ok(parsed.ok && parsed.caveat.kind === 'uses');
      }),
    );
    for (const bad of [
      'uses 0',
      'uses 01',
      `uses ${MAX_USES + 1}`,
      'uses 1 2',
      'uses -1',
      'uses 1.5',
      'uses one',
      'uses 1e3',
    ])
      assert.deepEqual(
        (({ ok, ...rest }) => ({ ok, code: 'code' in rest ? rest.code : undefined }))(
          parseCaveat(bad),
        ),
        { ok: false, code: 'ERR_CAVEAT_MALFORMED' },
        bad,
      );
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (text) => {
        const parsed = parseCaveat(`uses ${text}`);
        if (parsed.ok) assert.match(text, /^[1-9][0-9]{0,6}$/);
      }),
    );
  });

  it('is minted from a grant, and the smallest of several is the budget', () => {
    const key = newKey();
    const minted = mintToken(
      { ...GRANT, uses: 5 },
      { key, now: NOW, tokenId: 'AAAAAAAAAAAAAAAAAAAAAA' },
    );
    assert.ok(minted.caveats.includes('uses 5'));
    const budgetOf = (token: string) => {
      const result = authenticateToken(token, keyLookup(key));
      assert.ok('authenticated' in result, JSON.stringify(result));
      return result.uses;
    };
    assert.equal(budgetOf(minted.token), 5);
    // A holder may add caveats without the key: a larger budget changes nothing, a smaller one wins.
    assert.equal(budgetOf(appendRawCaveats(minted.token, ['uses 100'])), 5);
    assert.equal(budgetOf(appendRawCaveats(minted.token, ['uses 2'])), 2);
    const unlimited = mintToken(GRANT, { key, now: NOW, tokenId: 'BBBBBBBBBBBBBBBBBBBBBB' });
    assert.ok(!unlimited.caveats.some((c) => c.startsWith('uses')));
    assert.equal(budgetOf(unlimited.token), undefined);
  });

  it('comes from a profile file, which refuses a budget below 1 naming the field', () => {
    const profile = `agent: a
files:
  github/token:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/**"]
    uses: 1
`;
    assert.equal(
      buildTree(parseProfile(profile, 'p.yaml')).files.get('github/token')?.grant.uses,
      1,
    );
    for (const bad of ['0', '1.5', '"1"', String(MAX_USES + 1)])
      assert.throws(
        () => parseProfile(profile.replace('uses: 1', `uses: ${bad}`), 'p.yaml'),
        (err: unknown) =>
          isMintfsError(err, 'ERR_PROFILE_INVALID') &&
          /files\."github\/token"\.uses: /.test(err.message),
        bad,
      );
  });
});

describe('how long a budget is counted', () => {
  const key = newKey();
  const minted = mintToken(
    { ...GRANT, uses: 1 },
    { key, now: NOW, tokenId: 'CCCCCCCCCCCCCCCCCCCCCC' },
  );
  const authenticated = (token: string) => {
    const result = authenticateToken(token, keyLookup(key));
    assert.ok('authenticated' in result, JSON.stringify(result));
    return result;
  };

  it('is the expiry the minter wrote, whatever time-before or uses caveats a holder appends', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc
              .integer({ min: -3_600_000, max: 3_600_000 })
              .map((ms) => formatTimeBefore(new Date(minted.expiresAt.getTime() + ms))),
            fc.integer({ min: 1, max: 50 }).map((n) => `uses ${n}`),
          ),
          { minLength: 1, maxLength: 6 },
        ),
        (appended) => {
          const copy = authenticated(appendRawCaveats(minted.token, appended));
          // The copy may expire earlier; its budget is counted until the original's expiry.
          assert.equal(copy.mintedExpiresAt.getTime(), minted.expiresAt.getTime());
          assert.ok(copy.expiresAt.getTime() <= minted.expiresAt.getTime());
          assert.equal(copy.tokenId, minted.tokenId);
          assert.equal(copy.uses, 1);
        },
      ),
    );
  });

  it('refuses a token whose first caveat is not its time-before, so no budget goes undated', () => {
    // Correctly signed, with every caveat the minter writes, in another order.
    const decoded = decodeToken(minted.token);
    const reordered = [...decoded.caveatBytes.slice(1), decoded.caveatBytes[0] as Buffer];
    const token = encodeTokenText(
      encodeMacaroonV2({
        location: decoded.location,
        identifier: decoded.identifier,
        caveats: reordered,
        signature: chainSignature(derivedKeyOf(key.secret), decoded.identifier, reordered),
      }),
    );
    const result = authenticateToken(token, keyLookup(key));
    assert.equal('allowed' in result && result.code, 'ERR_CAVEAT_MALFORMED');
  });

  it('in memory, a count is never shortened by a later spend that asks for less', async () => {
    const counter = new MemoryUseCounter();
    const short = new Date(NOW.getTime() + 10_000);
    const long = new Date(NOW.getTime() + 10 * 60_000);
    assert.deepEqual(await counter.spend('d', 1, short, NOW), { ok: true, used: 1 });
    assert.equal((await counter.spend('d', 1, long, NOW)).ok, false);
    // Two minutes on: past the short life and a sweep, inside the long one.
    const later = new Date(NOW.getTime() + 2 * 60_000);
    assert.deepEqual(await counter.spend('d', 1, long, later), {
      ok: false,
      reason: 'spent',
      used: 3,
    });
  });
});

describe('counting uses in one process', () => {
  it('allows N uses per token id, refuses the next, and forgets expired tokens', async () => {
    const counter = new MemoryUseCounter();
    const until = new Date(NOW.getTime() + 60_000);
    for (let i = 1; i <= 3; i++)
      assert.deepEqual(await counter.spend('a', 3, until, NOW), { ok: true, used: i });
    assert.deepEqual(await counter.spend('a', 3, until, NOW), {
      ok: false,
      reason: 'spent',
      used: 4,
    });
    assert.deepEqual(await counter.spend('b', 1, until, NOW), { ok: true, used: 1 });
    assert.equal(counter.size, 2);
    // Past expiry (and the minute between sweeps), counts of dead tokens go.
    await counter.spend(
      'c',
      1,
      new Date(NOW.getTime() + 10 * 60_000),
      new Date(NOW.getTime() + 2 * 60_000),
    );
    assert.equal(counter.size, 1);
  });

  it('with several workers and no Redis, refuses rather than count apart', async () => {
    const result = await new RefusingUseCounter('why').spend();
    assert.deepEqual(result, { ok: false, reason: 'unavailable', detail: 'why' });
  });
});

describe('the redis setting', () => {
  const base = `listen: [127.0.0.1:0]
upstreams:
  github:
    url: https://api.github.com
    credential: { env: GH }
    inject: "Authorization: token {credential}"
`;
  it('takes a URL (TLS and auth in it) or { url, staleAfter }', () => {
    assert.deepEqual(parseGatewayConfig(`${base}redis: redis://127.0.0.1:6379\n`, 'g.yaml').redis, {
      url: 'redis://127.0.0.1:6379',
      staleAfter: 30_000,
    });
    assert.deepEqual(
      parseGatewayConfig(
        `${base}redis:\n  url: rediss://u:p@r.example:6380/0\n  staleAfter: 5s\n`,
        'g.yaml',
      ).redis,
      { url: 'rediss://u:p@r.example:6380/0', staleAfter: 5_000 },
    );
    assert.equal(
      parseGatewayConfig(`${base}metrics: 127.0.0.1:9464\n`, 'g.yaml').metrics,
      '127.0.0.1:9464',
    );
  });

  it('refuses anything else in one line naming the field', () => {
    for (const [text, field] of [
      ['redis: http://127.0.0.1:6379', /redis/],
      ['redis: 127.0.0.1:6379', /redis/],
      ['redis:\n  url: redis://x\n  staleAfter: soon', /redis\.staleAfter/],
      ['metrics: 9464', /metrics/],
      ['metrics: example.com:9464', /metrics/],
    ] as const)
      assert.throws(
        () => parseGatewayConfig(`${base}${text}\n`, 'g.yaml'),
        (err: unknown) =>
          isMintfsError(err, 'ERR_CONFIG_INVALID') &&
          field.test(err.message) &&
          !err.message.includes('\n'),
        text,
      );
  });

  it('is logged without its password or user', () => {
    assert.equal(
      redisUrlForLog('rediss://user:secret@r.example:6380/0'),
      'rediss://r.example:6380/0',
    );
    assert.ok(!redisUrlForLog('redis://:secret@127.0.0.1:1').includes('secret'));
  });
});
