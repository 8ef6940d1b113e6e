/**
 * `mintfs/verify`, imported by package name as a first-party service would:
 * typed verdicts for a real keyring, and it follows rotation and revocation
 * on disk like the gateway.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createTokenVerifier } from 'mintfs/verify';
import { addKey, initKeyring, loadKeyring, retireKey } from '../../src/keys/keyring.js';
import { recordRevocation, revocationsDir } from '../../src/revocation/revocations.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken } from '../../src/token/mint.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir } from '../helpers/temp.js';
import { GRANT } from '../helpers/tokens.js';
import { join } from 'node:path';

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
});
