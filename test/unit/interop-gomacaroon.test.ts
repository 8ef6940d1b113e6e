/**
 * go-macaroon (Debian's golang-gopkg-macaroon.v2-dev), a third implementation:
 * it verifies tokens mintfs mints and attenuates, and mintfs verifies the
 * tokens it attenuates.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { attenuateToken } from '../../src/token/attenuate.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken } from '../../src/token/mint.js';
import { verifyToken } from '../../src/token/verify.js';
import { FIXTURES } from '../helpers/paths.js';
import { suiteTeardown, tempDir } from '../helpers/temp.js';
import { ALLOWED, GRANT, NOW, keyLookup, newKey } from '../helpers/tokens.js';

describe('interoperability with go-macaroon', () => {
  const teardown = suiteTeardown();
  let binary = '';
  before(() => {
    const work = tempDir(teardown);
    binary = join(work, 'go-interop');
    const built = spawnSync(
      'go',
      ['build', '-o', binary, join(FIXTURES, 'go-interop', 'main.go')],
      {
        env: {
          ...process.env,
          GO111MODULE: 'off',
          GOPATH: '/usr/share/gocode',
          GOCACHE: join(work, 'go-cache'),
          HOME: work,
        },
        encoding: 'utf8',
      },
    );
    assert.equal(
      built.status,
      0,
      `go build failed (scripts/install-system-packages.sh installs golang-go and go-macaroon): ${built.stderr}`,
    );
  });
  const go = (...args: string[]) => execFileSync(binary, args, { encoding: 'utf8' }).trim();
  const key = newKey();
  const minted = mintToken(GRANT, { key, now: NOW, tokenId: newTokenId() });

  it('verifies minted and mintfs-attenuated tokens, reading the same caveats', () => {
    const narrowed = attenuateToken(minted.token, [
      'method GET',
      'path /repos/acme/widgets/pulls/**',
    ]);
    for (const [token, caveats] of [
      [minted.token, minted.caveats],
      [narrowed, [...minted.caveats, 'method GET', 'path /repos/acme/widgets/pulls/**']],
    ] as const) {
      const result = JSON.parse(go('verify', key.secret.toString('hex'), token)) as {
        ok: boolean;
        caveats: string[];
      };
      assert.equal(result.ok, true);
      assert.deepEqual(result.caveats, caveats);
    }
    const wrong = JSON.parse(go('verify', newKey().secret.toString('hex'), minted.token)) as {
      ok: boolean;
    };
    assert.equal(wrong.ok, false);
  });

  it('mintfs verifies a token go-macaroon attenuated, and enforces what it added', () => {
    const narrowed = go('attenuate', minted.token, 'method HEAD');
    const context = { keyById: keyLookup(key), now: NOW };
    assert.equal(verifyToken(narrowed, { ...ALLOWED, method: 'HEAD' }, context).allowed, true);
    const get = verifyToken(narrowed, ALLOWED, context);
    assert.equal(!get.allowed && get.caveat, 'method HEAD');
  });
});
