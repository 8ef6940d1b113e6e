/**
 * An independent implementation checks our tokens: Debian's python3-pymacaroons
 * deserialises them and verifies their signatures with the root key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attenuateToken } from '../../src/token/attenuate.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken } from '../../src/token/mint.js';
import { pymacaroonsVerify } from '../helpers/pymacaroons.js';
import { GRANT, NOW, newKey } from '../helpers/tokens.js';

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

  it('rejects a minted token under another key', () => {
    const result = pymacaroonsVerify(minted.token, newKey().secret.toString('hex'));
    assert.equal(result.ok, false);
  });
});
