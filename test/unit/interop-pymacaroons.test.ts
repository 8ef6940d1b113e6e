/**
 * An independent implementation checks our tokens: Debian's python3-pymacaroons
 * deserialises them and verifies their signatures with the root key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attenuateToken } from '../../src/token/attenuate.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken } from '../../src/token/mint.js';
import { verifyToken } from '../../src/token/verify.js';
import { pymacaroonsAttenuate, pymacaroonsVerify } from '../helpers/pymacaroons.js';
import { ALLOWED, GRANT, NOW, keyLookup, newKey } from '../helpers/tokens.js';

describe('interoperability with pymacaroons', () => {
  const key = newKey();
  const minted = mintToken(GRANT, { key, now: NOW, tokenId: newTokenId() });

  it('verifies the signature of a minted token (6 caveats) and reads its fields', () => {
    const result = pymacaroonsVerify(minted.token, key.secret.toString('hex'));
    assert.equal(result.ok, true);
    assert.equal(result.location, 'mintfs');
    assert.equal(
      result.identifier,
      `mintfs/v2/${key.id}/${minted.tokenId}/${Math.floor(NOW.getTime() / 1000)}`,
    );
    assert.deepEqual(result.caveats, minted.caveats);
  });

  it('verifies an attenuated token with 14 caveats', () => {
    let token = minted.token;
    for (let i = 0; i < 8; i++) token = attenuateToken(token, ['method GET']);
    const result = pymacaroonsVerify(token, key.secret.toString('hex'));
    assert.equal(result.ok, true);
    assert.equal(result.caveats.length, 14);
  });

  it('mintfs verifies a token pymacaroons attenuated, and enforces the caveat it added', () => {
    const narrowed = pymacaroonsAttenuate(minted.token, ['method HEAD']);
    const context = { keyById: keyLookup(key), now: NOW };
    assert.equal(verifyToken(narrowed, { ...ALLOWED, method: 'HEAD' }, context).allowed, true);
    const get = verifyToken(narrowed, ALLOWED, context);
    assert.equal(get.allowed, false);
    assert.equal(!get.allowed && get.caveat, 'method HEAD');
    // And the chain is checked: a caveat changed after pymacaroons signed is refused.
    const bytes = Buffer.from(pymacaroonsAttenuate(minted.token, ['method HEAX']), 'base64url');
    bytes.write('HEAD', bytes.indexOf('HEAX'));
    const tampered = verifyToken(
      bytes.toString('base64url'),
      { ...ALLOWED, method: 'HEAD' },
      context,
    );
    assert.equal(!tampered.allowed && tampered.code, 'ERR_TOKEN_SIGNATURE');
  });

  it('rejects a minted token under another key', () => {
    const result = pymacaroonsVerify(minted.token, newKey().secret.toString('hex'));
    assert.equal(result.ok, false);
  });
});
