import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attenuateToken } from '../../src/token/attenuate.js';
import { newTokenId } from '../../src/token/identifier.js';
import { inspectToken } from '../../src/token/inspect.js';
import {
  deriveMacaroonKey,
  encodeMacaroonV2,
  signCaveat,
  signIdentifier,
} from '../../src/token/macaroon-codec.js';
import { mintToken } from '../../src/token/mint.js';
import { decodeToken, encodeTokenText } from '../../src/token/token-text.js';
import { verifyToken, type VerifyRequest } from '../../src/token/verify.js';
import { isMintfsError } from '../../src/errors.js';
import { ALLOWED, GRANT, NOW, keyLookup, newKey } from '../helpers/tokens.js';

const key = newKey();
const context = { keyById: keyLookup(key), now: NOW };

function mint(grant = GRANT, now = NOW) {
  return mintToken(grant, { key, now, tokenId: newTokenId() });
}

/** Appends a caveat with a valid signature, bypassing attenuate's vocabulary check. */
function appendRawCaveat(token: string, caveat: string): string {
  const decoded = decodeToken(token);
  return encodeTokenText(
    encodeMacaroonV2({
      location: decoded.location,
      identifier: decoded.identifier,
      caveats: [...decoded.caveatBytes, Buffer.from(caveat)],
      signature: signCaveat(decoded.signature, Buffer.from(caveat)),
    }),
  );
}

describe('minting', () => {
  it('writes the six caveats in order, with a whole-second expiry', () => {
    const minted = mint();
    assert.deepEqual(minted.caveats, [
      'time-before 2026-11-22T01:20:00Z',
      'service github',
      'agent demo-agent',
      'host api.github.com',
      'method GET HEAD',
      'path /repos/acme/widgets/**',
    ]);
    assert.match(minted.token, /^[A-Za-z0-9_-]+$/);
  });

  it('token ids are 22 base64url characters and never repeat', () => {
    const ids = new Set(Array.from({ length: 5000 }, () => newTokenId()));
    assert.equal(ids.size, 5000);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{22}$/);
  });

  it('each grant gets its own caveats (per-grant encoding is not shared)', () => {
    const other = { ...GRANT, service: 'gitlab', methods: ['POST'], paths: ['/api/**'] };
    const a = mintToken(GRANT, { key, now: NOW, tokenId: newTokenId() });
    const b = mintToken(other, { key, now: NOW, tokenId: newTokenId() });
    assert.deepEqual(b.caveats.slice(1), [
      'service gitlab',
      'agent demo-agent',
      'host api.github.com',
      'method POST',
      'path /api/**',
    ]);
    assert.equal(a.caveats[1], 'service github');
    assert.equal(
      verifyToken(
        b.token,
        { ...ALLOWED, service: 'gitlab', method: 'POST', rawPath: '/api/x' },
        context,
      ).allowed,
      true,
    );
  });

  it('every token of one grant and key has the same length', () => {
    const lengths = new Set(
      Array.from(
        { length: 50 },
        (_, i) => mint(GRANT, new Date(NOW.getTime() + i * 7919)).token.length,
      ),
    );
    assert.equal(lengths.size, 1);
  });

  it('identifies key and token, and inspect reads them back without a key', () => {
    const minted = mint();
    const summary = inspectToken(minted.token);
    assert.equal(summary.id, minted.tokenId);
    assert.equal(summary.keyId, key.id);
    assert.equal(summary.location, 'mintfs');
    assert.deepEqual(summary.caveats, minted.caveats);
    assert.equal(summary.expiresAt, '2026-11-22T01:20:00Z');
    assert.equal(summary.agent, 'demo-agent');
  });
});

describe('verification', () => {
  it('allows the request the grant describes and reports the agent', () => {
    const minted = mint();
    const verdict = verifyToken(minted.token, ALLOWED, context);
    assert.equal(verdict.allowed, true);
    assert.equal(verdict.agent, 'demo-agent');
    assert.equal(verdict.tokenId, minted.tokenId);
    assert.equal(verdict.keyId, key.id);
  });

  it('accepts the token with surrounding whitespace (a file read with its newline)', () => {
    assert.equal(verifyToken(`${mint().token}\n`, ALLOWED, context).allowed, true);
  });

  const refusals: Array<[string, Partial<VerifyRequest>, string]> = [
    ['another service', { service: 'gitlab' }, 'service github'],
    ['another host', { host: 'evil.example.com' }, 'host api.github.com'],
    ['another method', { method: 'POST' }, 'method GET HEAD'],
    ['a path outside the globs', { rawPath: '/repos/acme/secrets' }, 'path /repos/acme/widgets/**'],
  ];
  for (const [name, change, caveat] of refusals) {
    it(`refuses ${name}, naming the caveat`, () => {
      const verdict = verifyToken(mint().token, { ...ALLOWED, ...change }, context);
      assert.equal(verdict.allowed, false);
      assert.equal(verdict.allowed ? '' : verdict.code, 'ERR_CAVEAT_UNSATISFIED');
      assert.equal(verdict.allowed ? '' : verdict.caveat, caveat);
    });
  }

  it('matches methods case-insensitively and hosts without case', () => {
    assert.equal(
      verifyToken(mint().token, { ...ALLOWED, method: 'head', host: 'API.GitHub.com' }, context)
        .allowed,
      true,
    );
  });

  it('refuses an expired token at exactly its expiry', () => {
    const minted = mint();
    const before = verifyToken(minted.token, ALLOWED, {
      ...context,
      now: new Date(minted.expiresAt.getTime() - 1),
    });
    const at = verifyToken(minted.token, ALLOWED, { ...context, now: minted.expiresAt });
    assert.equal(before.allowed, true);
    assert.equal(at.allowed ? '' : at.code, 'ERR_TOKEN_EXPIRED');
  });

  it('refuses ambiguous paths before any caveat', () => {
    for (const rawPath of [
      '/repos/acme/widgets/../x',
      '/repos/acme/widgets/%2e%2e/x',
      '/repos/acme%2fwidgets',
      '/repos//acme/widgets',
      '/repos\\acme',
    ]) {
      const verdict = verifyToken(mint().token, { ...ALLOWED, rawPath }, context);
      assert.equal(verdict.allowed ? '' : verdict.code, 'ERR_PATH_AMBIGUOUS', rawPath);
    }
  });

  it('refuses a tampered signature', () => {
    const bytes = Buffer.from(mint().token, 'base64url');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    const verdict = verifyToken(bytes.toString('base64url'), ALLOWED, context);
    assert.equal(verdict.allowed ? '' : verdict.code, 'ERR_TOKEN_SIGNATURE');
  });

  it('refuses a tampered caveat', () => {
    const token = mint().token;
    const forged = Buffer.from(
      Buffer.from(token, 'base64url')
        .toString('latin1')
        .replace('method GET HEAD', 'method PUT HEAD'),
      'latin1',
    );
    const verdict = verifyToken(
      forged.toString('base64url'),
      { ...ALLOWED, method: 'PUT' },
      context,
    );
    assert.equal(verdict.allowed ? '' : verdict.code, 'ERR_TOKEN_SIGNATURE');
  });

  it('refuses a token signed by a key it does not know', () => {
    const verdict = verifyToken(mint().token, ALLOWED, {
      ...context,
      keyById: keyLookup(newKey('20261122T010000Z-00000002')),
    });
    assert.equal(verdict.allowed ? '' : verdict.code, 'ERR_KEY_UNKNOWN');
  });

  it('refuses a token whose key id names a different secret', () => {
    const impostor = newKey(key.id);
    const verdict = verifyToken(mint().token, ALLOWED, {
      ...context,
      keyById: keyLookup(impostor),
    });
    assert.equal(verdict.allowed ? '' : verdict.code, 'ERR_TOKEN_SIGNATURE');
  });

  it('refuses an unknown caveat even when correctly signed', () => {
    const token = appendRawCaveat(mint().token, 'ip 10.0.0.1');
    const verdict = verifyToken(token, ALLOWED, context);
    assert.equal(verdict.allowed ? '' : verdict.code, 'ERR_CAVEAT_UNKNOWN');
    assert.equal(verdict.allowed ? '' : verdict.caveat, 'ip 10.0.0.1');
  });

  it('turns garbage into a denial, never an exception', () => {
    const inputs = [
      '',
      ' ',
      'not a token!',
      'AAAA',
      'AgEGbWludGZz',
      Buffer.from('hello world').toString('base64url'),
      'A'.repeat(20_000),
      '\u0000\u0001',
    ];
    for (const input of inputs) {
      const verdict = verifyToken(input, ALLOWED, context);
      assert.equal(verdict.allowed, false, JSON.stringify(input.slice(0, 20)));
      assert.equal(verdict.allowed ? '' : verdict.code, 'ERR_TOKEN_MALFORMED');
    }
  });

  it('refuses a token that never expires', () => {
    const minted = mint();
    // Rebuild the same token without its time-before caveat, correctly signed.
    const decoded = decodeToken(minted.token);
    const caveats = decoded.caveatBytes.slice(1);
    let signature = signIdentifier(deriveMacaroonKey(key.secret), decoded.identifier);
    for (const c of caveats) signature = signCaveat(signature, c);
    const token = encodeTokenText(
      encodeMacaroonV2({ location: 'mintfs', identifier: decoded.identifier, caveats, signature }),
    );
    const verdict = verifyToken(token, ALLOWED, context);
    assert.equal(verdict.allowed ? '' : verdict.code, 'ERR_CAVEAT_MALFORMED');
  });
});

describe('attenuation', () => {
  it('narrows: both the old and the new caveats must hold', () => {
    const narrowed = attenuateToken(mint().token, [
      'method GET',
      'path /repos/acme/widgets/pulls/**',
    ]);
    assert.equal(verifyToken(narrowed, ALLOWED, context).allowed, true);
    const head = verifyToken(narrowed, { ...ALLOWED, method: 'HEAD' }, context);
    assert.equal(head.allowed ? '' : head.caveat, 'method GET');
    const issues = verifyToken(
      narrowed,
      { ...ALLOWED, rawPath: '/repos/acme/widgets/issues' },
      context,
    );
    assert.equal(issues.allowed ? '' : issues.caveat, 'path /repos/acme/widgets/pulls/**');
  });

  it('cannot widen: adding a broader caveat changes nothing', () => {
    const widened = attenuateToken(mint().token, ['method GET HEAD POST DELETE']);
    const post = verifyToken(widened, { ...ALLOWED, method: 'POST' }, context);
    assert.equal(post.allowed ? '' : post.caveat, 'method GET HEAD');
  });

  it('can shorten the lifetime', () => {
    const shorter = attenuateToken(mint().token, ['time-before 2026-11-22T01:18:30Z']);
    assert.equal(
      verifyToken(shorter, ALLOWED, { ...context, now: new Date('2026-11-22T01:18:29Z') }).allowed,
      true,
    );
    const late = verifyToken(shorter, ALLOWED, {
      ...context,
      now: new Date('2026-11-22T01:18:31Z'),
    });
    assert.equal(late.allowed ? '' : late.code, 'ERR_TOKEN_EXPIRED');
  });

  it('reports the minted agent even if the holder adds another', () => {
    const relabelled = attenuateToken(mint().token, ['agent someone-else']);
    assert.equal(verifyToken(relabelled, ALLOWED, context).agent, 'demo-agent');
  });

  it('works with many caveats (6 minted + 10 added)', () => {
    let token = mint().token;
    for (let i = 0; i < 10; i++) token = attenuateToken(token, [`path /repos/acme/widgets/**`]);
    assert.equal(inspectToken(token).caveats.length, 16);
    assert.equal(verifyToken(token, ALLOWED, context).allowed, true);
  });

  it('refuses caveats outside the vocabulary', () => {
    assert.throws(
      () => attenuateToken(mint().token, ['ip 10.0.0.1']),
      (err) => isMintfsError(err, 'ERR_CAVEAT_UNKNOWN'),
    );
    assert.throws(
      () => attenuateToken(mint().token, ['method FETCH']),
      (err) => isMintfsError(err, 'ERR_CAVEAT_MALFORMED'),
    );
    assert.throws(
      () => attenuateToken(mint().token, ['time-before tomorrow']),
      (err) => isMintfsError(err, 'ERR_CAVEAT_MALFORMED'),
    );
  });
});
