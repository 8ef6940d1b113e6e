/**
 * The `macaroon` package's exportBinary() cannot serialise a token with about
 * six caveats (its ByteBuffer doubles on every append). mintfs encodes V2
 * itself (src/token/macaroon-codec.ts); these tests show the bug and that the
 * encoder writes the very bytes the package would.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import macaroon from 'macaroon';
import {
  deriveMacaroonKey,
  encodeMacaroonV2,
  signCaveat,
  signIdentifier,
} from '../../src/token/macaroon-codec.js';

const CAVEATS = [
  'time-before 2026-11-22T01:20:00Z',
  'service github',
  'agent demo-agent',
  'host api.github.com',
  'method GET HEAD',
  'path /repos/acme/widgets/**',
];

function packageMacaroon(rootKey: Buffer, caveats: string[]) {
  const mac = macaroon.newMacaroon({
    identifier: 'mintfs/v1/k/t',
    location: 'mintfs',
    rootKey,
    version: 2,
  });
  for (const caveat of caveats) mac.addFirstPartyCaveat(caveat);
  return mac;
}

function ourBytes(rootKey: Buffer, caveats: string[]): Buffer {
  const identifier = Buffer.from('mintfs/v1/k/t');
  let signature = signIdentifier(deriveMacaroonKey(rootKey), identifier);
  const caveatBytes = caveats.map((c) => Buffer.from(c));
  for (const c of caveatBytes) signature = signCaveat(signature, c);
  return encodeMacaroonV2({ location: 'mintfs', identifier, caveats: caveatBytes, signature });
}

describe('macaroon package bug: exportBinary and many caveats', () => {
  it('the package throws a RangeError exporting a token with six caveats', () => {
    const mac = packageMacaroon(randomBytes(32), CAVEATS);
    assert.throws(() => mac.exportBinary(), RangeError);
  });

  it('our encoder writes the bytes the package writes where the package still works', () => {
    const rootKey = randomBytes(32);
    for (let n = 0; n <= 3; n++) {
      const theirs = Buffer.from(packageMacaroon(rootKey, CAVEATS.slice(0, n)).exportBinary());
      assert.deepEqual(ourBytes(rootKey, CAVEATS.slice(0, n)), theirs, `${n} caveats`);
    }
  });

  it('the package imports and verifies what our encoder writes, with many caveats', () => {
    const rootKey = randomBytes(32);
    const many = [...CAVEATS, ...CAVEATS, ...CAVEATS];
    const mac = macaroon.importMacaroon(Uint8Array.from(ourBytes(rootKey, many)));
    const seen: string[] = [];
    mac.verify(Uint8Array.from(rootKey), (condition) => {
      seen.push(condition);
      return null;
    });
    assert.deepEqual(seen, many);
    assert.deepEqual(
      Buffer.from(mac.signature),
      Buffer.from(packageMacaroon(rootKey, many).signature),
    );
  });
});
