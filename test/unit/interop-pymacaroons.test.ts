/**
 * An independent implementation checks our tokens: Debian's python3-pymacaroons
 * deserialises them and verifies their signatures with the root key.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { attenuateToken } from '../../src/token/attenuate.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken } from '../../src/token/mint.js';
import { GRANT, NOW, newKey } from '../helpers/tokens.js';

const VERIFY = `
import sys, json
from pymacaroons import Macaroon, Verifier
from pymacaroons.serializers import BinarySerializer
def text(b):
    return b.decode() if isinstance(b, bytes) else b
req = json.load(sys.stdin)
m = Macaroon.deserialize(req["token"], serializer=BinarySerializer())
v = Verifier()
v.satisfy_general(lambda caveat: True)
try:
    ok = v.verify(m, bytes.fromhex(req["key"]))
except Exception as e:
    ok = False
print(json.dumps({"ok": ok, "identifier": text(m.identifier), "location": text(m.location),
                  "caveats": [text(c.caveat_id) for c in m.first_party_caveats()]}))
`;

interface PyResult {
  ok: boolean;
  identifier: string;
  location: string;
  caveats: string[];
}

function pymacaroonsVerify(token: string, keyHex: string): PyResult {
  const result = spawnSync('/usr/bin/python3', ['-c', VERIFY], {
    input: JSON.stringify({ token, key: keyHex }),
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as PyResult;
}

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
