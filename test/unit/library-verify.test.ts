/**
 * `mintfs/verify`, imported by package name as a first-party service would:
 * typed verdicts for a real keyring, it follows rotation and revocation on
 * disk like the gateway, spends use budgets itself, and never throws for
 * anything a client can send. Counting in Redis shared with gateways is
 * shared-state.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createTokenVerifier, type Verdict } from 'mintfs/verify';
import { ERROR_CODES } from '../../src/errors.js';
import { appendRawCaveats } from '../helpers/tokens.js';
import { formatTimeBefore } from '../../src/token/caveats.js';
import { addKey, initKeyring, loadKeyring, retireKey } from '../../src/keys/keyring.js';
import { recordRevocation, revocationsDir } from '../../src/revocation/revocations.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken } from '../../src/token/mint.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir } from '../helpers/temp.js';
import { GRANT } from '../helpers/tokens.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../helpers/paths.js';
import { runAsync } from '../helpers/spawn.js';

const REQUEST = {
  service: 'github',
  method: 'GET',
  url: 'https://api.github.com/repos/acme/widgets/pulls',
};

describe('mintfs/verify (the library)', () => {
  it('checks a token against a request to a typed verdict, and follows the keyring and revocations', async (t) => {
    const keys = join(tempDir(t), 'keys');
    initKeyring(keys, new Date());
    const verifier = createTokenVerifier({ keys });
    t.after(() => verifier.close());
    const mint = () =>
      mintToken(GRANT, { key: loadKeyring(keys).current, now: new Date(), tokenId: newTokenId() });

    const minted = mint();
    const allowed = verifier.check(minted.token, REQUEST);
    assert.equal(allowed.allowed, true);
    assert.equal(allowed.tokenId, minted.tokenId);
    const refused = verifier.check(minted.token, { ...REQUEST, method: 'DELETE' });
    assert.equal(refused.allowed, false);
    assert.equal(!refused.allowed && refused.code, 'ERR_CAVEAT_UNSATISFIED');
    const garbage = verifier.check('not a token', REQUEST);
    assert.equal(!garbage.allowed && garbage.code, 'ERR_TOKEN_MALFORMED');
    const relative = verifier.check(minted.token, { ...REQUEST, url: '/repos/acme/widgets' });
    assert.equal(!relative.allowed && relative.code, 'ERR_REQUEST_INVALID');

    // A key rotated in is accepted at once (its file appeared); a retired one is refused as such.
    const old = loadKeyring(keys).current.id;
    addKey(keys, new Date(Date.now() + 1000));
    assert.equal(verifier.check(mint().token, REQUEST).allowed, true);
    retireKey(keys, old, new Date());
    await pollUntil('the retirement to apply', () => {
      const verdict = verifier.check(minted.token, REQUEST);
      return !verdict.allowed && verdict.code === 'ERR_KEY_RETIRED';
    });

    // A revocation recorded on disk applies within a poll.
    const fresh = mint();
    recordRevocation(revocationsDir(keys), { kind: 'token', tokenId: fresh.tokenId }, new Date());
    await pollUntil('the revocation to apply', () => {
      const verdict = verifier.check(fresh.token, REQUEST);
      return !verdict.allowed && verdict.code === 'ERR_TOKEN_REVOKED';
    });
  });

  it('spends a use budget in checkAndSpend and reports it; check() never accepts a budgeted token', async (t) => {
    const keys = join(tempDir(t), 'keys');
    initKeyring(keys, new Date());
    let now = new Date();
    const verifier = createTokenVerifier({ keys, clock: () => now });
    t.after(() => verifier.close());
    const minted = mintToken(
      { ...GRANT, uses: 2, ttlMs: 600_000 },
      { key: loadKeyring(keys).current, now, tokenId: newTokenId() },
    );

    // check() cannot spend (spending may wait on Redis): it refuses rather than accept uncounted.
    for (let i = 0; i < 3; i++) {
      const checked = verifier.check(minted.token, REQUEST);
      assert.equal(!checked.allowed && checked.code, 'ERR_TOKEN_USES_UNCOUNTED');
      assert.equal(checked.uses, 2);
    }
    // A refused request spends nothing.
    const refused = await verifier.checkAndSpend(minted.token, { ...REQUEST, method: 'DELETE' });
    assert.equal(!refused.allowed && refused.code, 'ERR_CAVEAT_UNSATISFIED');
    const first = await verifier.checkAndSpend(minted.token, REQUEST);
    assert.deepEqual([first.allowed, first.uses, first.used], [true, 2, 1]);
    // A copy with an earlier expiry spends the same budget...
    const shortCopy = appendRawCaveats(minted.token, [
      formatTimeBefore(new Date(now.getTime() + 5_000)),
    ]);
    const second = await verifier.checkAndSpend(shortCopy, REQUEST);
    assert.deepEqual([second.allowed, second.used], [true, 2]);
    // ...and once it has expired, the original is still spent.
    now = new Date(now.getTime() + 120_000);
    const third: Verdict = await verifier.checkAndSpend(minted.token, REQUEST);
    assert.equal(!third.allowed && third.code, 'ERR_TOKEN_USES_SPENT');
    assert.deepEqual([third.tokenId, third.uses, third.used], [minted.tokenId, 2, 3]);

    // A token without a budget: both paths accept it, and nothing is counted.
    const plain = mintToken(GRANT, { key: loadKeyring(keys).current, now, tokenId: newTokenId() });
    for (let i = 0; i < 3; i++) {
      assert.equal(verifier.check(plain.token, REQUEST).allowed, true);
      const spent = await verifier.checkAndSpend(plain.token, REQUEST);
      assert.deepEqual([spent.allowed, spent.uses, spent.used], [true, undefined, undefined]);
    }
  });

  it('never throws or rejects, whatever token and request it is given', async (t) => {
    const keys = join(tempDir(t), 'keys');
    initKeyring(keys, new Date());
    const verifier = createTokenVerifier({ keys });
    t.after(() => verifier.close());
    const minted = mintToken(
      { ...GRANT, uses: 1000 },
      { key: loadKeyring(keys).current, now: new Date(), tokenId: newTokenId() },
    );
    const codes = new Set(Object.keys(ERROR_CODES));
    const wellFormed = (verdict: Verdict) => {
      assert.equal(typeof verdict.allowed, 'boolean');
      if (!verdict.allowed) {
        assert.ok(codes.has(verdict.code), verdict.code);
        assert.equal(typeof verdict.reason, 'string');
      }
    };
    const judgeBoth = async (token: unknown, request: unknown) => {
      // The public types say string and RequestToCheck; a JavaScript caller passes anything.
      const anyToken = token as string;
      const anyRequest = request as typeof REQUEST;
      wellFormed(verifier.check(anyToken, anyRequest));
      wellFormed(await verifier.checkAndSpend(anyToken, anyRequest));
    };
    // The documented case: a request whose method is undefined.
    const undefinedMethod = verifier.check(minted.token, {
      ...REQUEST,
      method: undefined as never,
    });
    assert.equal(!undefinedMethod.allowed && undefinedMethod.code, 'ERR_REQUEST_INVALID');
    assert.match(!undefinedMethod.allowed ? undefinedMethod.reason : '', /request\.method/);
    // A request whose fields throw when read.
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('boom');
        },
        has() {
          throw new Error('boom');
        },
        ownKeys() {
          throw new Error('boom');
        },
        getOwnPropertyDescriptor() {
          throw new Error('boom');
        },
        getPrototypeOf() {
          throw new Error('boom');
        },
      },
    );
    await judgeBoth(minted.token, hostile);
    await judgeBoth(hostile, REQUEST);
    const field = fc.oneof(
      fc.anything(),
      fc.string(),
      fc.constantFrom('github', 'GET', 'get', REQUEST.url, 'https://api.github.com/%2e%2e/x'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.anything(),
          fc.string(),
          fc.constant(minted.token),
          fc.string().map((tail) => minted.token + tail),
        ),
        fc.oneof(
          fc.anything(),
          fc.record({ service: field, method: field, url: field }, { requiredKeys: [] }),
        ),
        judgeBoth,
      ),
      { numRuns: 300 },
    );
  });

  it('counts one budget per process, however many verifiers it makes', async (t) => {
    const keys = join(tempDir(t), 'keys');
    initKeyring(keys, new Date());
    // A verifier per request is a mistake a service can make: it must not reset budgets.
    const first = createTokenVerifier({ keys });
    const second = createTokenVerifier({ keys });
    t.after(() => Promise.all([first.close(), second.close()]));
    const minted = mintToken(
      { ...GRANT, uses: 1 },
      { key: loadKeyring(keys).current, now: new Date(), tokenId: newTokenId() },
    );
    assert.equal((await first.checkAndSpend(minted.token, REQUEST)).allowed, true);
    const again = await second.checkAndSpend(minted.token, REQUEST);
    assert.equal(!again.allowed && again.code, 'ERR_TOKEN_USES_SPENT');
  });

  it('in a cluster worker without Redis, refuses a budgeted token rather than count apart from its siblings', async (t) => {
    const dir = tempDir(t);
    const keys = join(dir, 'keys');
    initKeyring(keys, new Date());
    const budgeted = mintToken(
      { ...GRANT, uses: 1 },
      { key: loadKeyring(keys).current, now: new Date(), tokenId: newTokenId() },
    );
    const plain = mintToken(GRANT, {
      key: loadKeyring(keys).current,
      now: new Date(),
      tokenId: newTokenId(),
    });
    const script = join(dir, 'cluster.mjs');
    writeFileSync(
      script,
      `import cluster from 'node:cluster';
import { createTokenVerifier } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'lib', 'verify.js')).href)};
if (cluster.isPrimary) {
  const worker = cluster.fork();
  const timer = setTimeout(() => { worker.kill(); process.exit(2); }, 20000);
  worker.on('message', (m) => { console.log(JSON.stringify(m)); clearTimeout(timer); worker.kill(); });
} else {
  const verifier = createTokenVerifier({ keys: process.env.KEYS });
  const request = JSON.parse(process.env.REQUEST);
  const budgeted = await verifier.checkAndSpend(process.env.BUDGETED, request);
  const plain = await verifier.checkAndSpend(process.env.PLAIN, request);
  await verifier.close();
  process.send({ budgeted: budgeted.allowed ? 'allowed' : budgeted.code, plain: plain.allowed });
}
`,
    );
    const result = await runAsync(process.execPath, [script], undefined, {
      ...process.env,
      KEYS: keys,
      REQUEST: JSON.stringify(REQUEST),
      BUDGETED: budgeted.token,
      PLAIN: plain.token,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      budgeted: 'ERR_STATE_UNAVAILABLE',
      plain: true,
    });
  });
});
