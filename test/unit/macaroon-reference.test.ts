/**
 * The V2 decoder and both signature chains (node:crypto, and the native
 * addon's the gateway installs) against the reference,
 * the `macaroon` package: on random valid tokens (random grants, keys and
 * attenuations) and on random mutations of them, both read the same fields
 * and accept exactly the same signatures. Random bytes never crash the
 * decoder and never authenticate.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import macaroon from 'macaroon';
import { RootKey } from '../../src/token/root-key.js';
import { signatureMatches } from '../../src/token/macaroon-codec.js';
import { MacaroonDecodeError, decodeMacaroonV2 } from '../../src/token/macaroon-decode.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken } from '../../src/token/mint.js';
import { authenticateToken } from '../../src/token/verify.js';
import {
  hmacChainName,
  hmacSha256,
  nodeCryptoChain,
  useHmacChain,
  useNodeCryptoChain,
} from '../../src/token/hmac-chain.js';
import { installNativeHmacChain } from '../../src/verifier/native-hmac.js';
import { GRANT, NOW, appendRawCaveats } from '../helpers/tokens.js';

const caveatText = fc.stringMatching(/^[a-z]{1,8} [ -~]{1,40}$/);

const validToken = fc
  .record({
    key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    extra: fc.array(caveatText, { maxLength: 6 }),
    methods: fc.subarray(['GET', 'HEAD', 'POST', 'PUT'], { minLength: 1 }),
  })
  .map(({ key, extra, methods }) => {
    const root = new RootKey('20261122T010000Z-00000001', key);
    const minted = mintToken({ ...GRANT, methods }, { key: root, now: NOW, tokenId: newTokenId() });
    return { root, token: extra.length > 0 ? appendRawCaveats(minted.token, extra) : minted.token };
  });

/** What the reference package makes of these bytes: its fields, and whether `key` verifies them. */
function reference(
  bytes: Buffer,
  key: Uint8Array,
): { caveats: string[]; verifies: boolean } | undefined {
  let mac;
  try {
    mac = macaroon.importMacaroon(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
  let verifies = true;
  try {
    mac.verify(key, () => null);
  } catch {
    verifies = false;
  }
  return { caveats: mac.caveats.map((c) => Buffer.from(c.identifier).toString('utf8')), verifies };
}

function ours(
  bytes: Buffer,
  key: Uint8Array,
): { caveats: string[]; verifies: boolean } | undefined {
  let decoded;
  try {
    decoded = decodeMacaroonV2(bytes);
  } catch (err) {
    assert.ok(err instanceof MacaroonDecodeError, String(err));
    return undefined;
  }
  return {
    caveats: decoded.caveats.map((c) => c.toString('utf8')),
    verifies: signatureMatches(key, decoded.identifier, decoded.caveats, decoded.signature),
  };
}

const CHAINS = {
  'node:crypto': () => useNodeCryptoChain(),
  native: () =>
    assert.equal(installNativeHmacChain(), 'native', 'the native chain did not install'),
};

for (const [chain, install] of Object.entries(CHAINS))
  describe(`V2 decoding and signatures (${chain} chain) against the macaroon package`, () => {
    before(install);
    after(useNodeCryptoChain);

    it('runs the chain it names', () => assert.equal(hmacChainName(), chain));

    it('agree on random valid tokens, attenuated ones included', () => {
      fc.assert(
        fc.property(validToken, ({ root, token }) => {
          const bytes = Buffer.from(token, 'base64url');
          const mine = ours(bytes, root.secret);
          assert.deepEqual(mine, reference(bytes, root.secret));
          assert.equal(mine?.verifies, true);
          // And not with another key.
          assert.equal(ours(bytes, randomBytes(32))?.verifies, false);
        }),
        { numRuns: 300 },
      );
    });

    it('agree on random mutations: whatever both decode, both verify alike', () => {
      fc.assert(
        fc.property(
          validToken,
          fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
            minLength: 1,
            maxLength: 3,
          }),
          fc.nat(),
          ({ root, token }, flips, cut) => {
            const bytes = Buffer.from(token, 'base64url');
            for (const flip of flips) bytes[flip.at % bytes.length] = flip.value;
            const mutated = cut % 4 === 0 ? bytes.subarray(0, cut % bytes.length) : bytes;
            const mine = ours(mutated, root.secret);
            const theirs = reference(mutated, root.secret);
            // Ours refuses some forms the package reads (third-party caveats, trailing bytes):
            // never the other way round, and never a different verdict on a signature.
            if (mine !== undefined) {
              assert.ok(theirs !== undefined, 'we decoded what the reference could not');
              assert.deepEqual(mine, theirs);
            } else if (theirs?.verifies) {
              assert.fail('the reference verified a token we refused to decode');
            }
          },
        ),
        { numRuns: 2000 },
      );
    });

    it('random bytes never crash decoding and never authenticate', () => {
      const key = new RootKey('20261122T010000Z-00000001', randomBytes(32));
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (raw, prefixed) => {
          const bytes = prefixed
            ? Buffer.concat([Buffer.from([2, 1, 6]), Buffer.from('mintfs'), raw])
            : Buffer.from(raw);
          const text = bytes.toString('base64url');
          let result;
          try {
            result = authenticateToken(text, () => key);
          } catch (err) {
            assert.fail(`threw ${String(err)}`);
          }
          assert.ok('allowed' in result && result.allowed === false);
        }),
        { numRuns: 3000 },
      );
    });

    it('stops at the caveat limit before reading the rest', () => {
      const root = new RootKey('20261122T010000Z-00000001', randomBytes(32));
      const minted = mintToken(GRANT, { key: root, now: NOW, tokenId: newTokenId() });
      const many = appendRawCaveats(
        minted.token,
        Array.from({ length: 900 }, () => 'x'),
      );
      assert.throws(() => decodeMacaroonV2(Buffer.from(many, 'base64url')), /more than 32 caveats/);
      const verdict = authenticateToken(many, () => root);
      assert.ok('allowed' in verdict);
      assert.equal(verdict.code, 'ERR_TOKEN_MALFORMED');
    });
  });

describe('hmacSha256 on the one-shot hash', () => {
  it('equals createHmac for any key and message length, keys over a block included', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 300 }),
        (key, data) => {
          const expected = createHmac('sha256', key).update(data).digest();
          assert.deepEqual(hmacSha256(key, data), expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('installing a faster chain', () => {
  after(useNodeCryptoChain);

  it('refuses a chain that disagrees with node:crypto, or throws, and keeps node:crypto', () => {
    const offByOne = (key: Uint8Array, id: Uint8Array, caveats: readonly Uint8Array[]) => {
      const signature = nodeCryptoChain(key, id, caveats);
      // Wrong only past the second caveat: the self-test must try long chains.
      if (caveats.length > 2) signature[0] = (signature[0] as number) ^ 1;
      return signature;
    };
    assert.equal(useHmacChain('broken', offByOne), false);
    assert.equal(
      useHmacChain('throws', () => {
        throw new Error('no');
      }),
      false,
    );
    assert.equal(hmacChainName(), 'node:crypto');
    assert.equal(useHmacChain('copy', nodeCryptoChain), true);
    assert.equal(hmacChainName(), 'copy');
  });
});
