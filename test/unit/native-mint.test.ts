/**
 * The native backend mints in C. These vectors hold it to the TypeScript
 * minter byte for byte (same key, clock reading and token id give the same
 * file content, in every format), and pymacaroons, an independent
 * implementation, verifies what C signs, reader caveat included.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { renderContent } from '../../src/fs/token-content.js';
import { formatInstant } from '../../src/util/instant.js';
import type { VirtualFile } from '../../src/fs/virtual-tree.js';
import { loadNativeAddon } from '../../src/fuse/native-addon.js';
import { nativeFile } from '../../src/fuse/native-tree.js';
import { TOKEN_FORMATS, type TokenFormat } from '../../src/profile/schema.js';
import { decodeToken } from '../../src/token/token-text.js';
import { mintToken, type TokenGrant } from '../../src/token/mint.js';
import { TOKEN_LIMITS } from '../../src/token/limits.js';
import { READER_CAVEAT_INDEX, authenticateToken } from '../../src/token/verify.js';
import { pymacaroonsVerify } from '../helpers/pymacaroons.js';
import { GRANT, NOW, keyLookup, newKey } from '../helpers/tokens.js';

const native = loadNativeAddon();

function fileOf(
  grant: TokenGrant,
  format: TokenFormat,
  readerCaveat = false,
  prefix = '',
): VirtualFile {
  return {
    path: 'x/token',
    grant,
    format,
    prefix,
    uid: 0,
    gid: 0,
    mode: 0o440,
    readers: undefined,
    readerCaveat,
  };
}

const GRANTS: TokenGrant[] = [
  GRANT,
  {
    agent: 'ci-bot@example.org',
    service: 'gitlab',
    hosts: ['gitlab.example.com', 'registry.example.com'],
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    paths: [
      '/**',
      '/api/v4/projects/*/merge_requests',
      '/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/**',
    ],
    ttlMs: 3_600_000,
  },
  { ...GRANT, ttlMs: 10_000 },
  // An approval caveat (third-party, sealed with libsodium in C, tweetnacl in TypeScript).
  { ...GRANT, approval: { methods: ['POST', 'DELETE'], paths: ['/repos/*/*/pulls/*/merge'] } },
  { ...GRANT, approval: { methods: ['PUT'] } },
];

describe('native HMAC-SHA256', () => {
  it('matches RFC 4231 test cases 1 and 2', () => {
    const case1 = native.hmacSha256(Buffer.alloc(20, 0x0b), Buffer.from('Hi There'));
    assert.equal(
      case1.toString('hex'),
      'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    );
    const case2 = native.hmacSha256(
      Buffer.from('Jefe'),
      Buffer.from('what do ya want for nothing?'),
    );
    assert.equal(
      case2.toString('hex'),
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  // Both compressions: the CPU's SHA extensions where it has them, and the portable C.
  for (const portable of [false, true]) {
    it(`matches node:crypto at every length around the block boundaries (${portable ? 'portable C' : 'default'} compression)`, () => {
      for (const keyLength of [0, 1, 32, 63, 64, 65, 200]) {
        for (let dataLength = 0; dataLength <= 200; dataLength++) {
          const key = randomBytes(keyLength);
          const data = randomBytes(dataLength);
          assert.equal(
            native.hmacSha256(key, data, portable).toString('hex'),
            createHmac('sha256', key).update(data).digest('hex'),
            `key ${keyLength} bytes, data ${dataLength} bytes`,
          );
        }
      }
    });
  }

  it('reports whether it uses the SHA extensions, as /proc/cpuinfo says the CPU has them', () => {
    const cpuHasSha = /^flags\s*:.*\bsha_ni\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
    assert.equal(native.sha256Accelerated(), process.arch === 'x64' && cpuHasSha);
  });
});

describe('native minting', () => {
  it('renders exactly what mintToken and renderContent render, in every format, with and without a prefix', () => {
    let compared = 0;
    for (const [grant, prefix] of GRANTS.flatMap(
      (g) =>
        [
          [g, ''],
          [g, 'ghp_'],
        ] as const,
    )) {
      for (const format of TOKEN_FORMATS) {
        for (const keyId of ['20261122T010000Z-00000001', 'k', 'a'.repeat(64)]) {
          const key = newKey(keyId);
          for (const now of [
            NOW,
            new Date('2026-11-22T01:18:00.999Z'),
            new Date(1_999_999_999_000),
          ]) {
            const id = randomBytes(16);
            const expected = renderContent(
              mintToken(grant, { key, now, tokenId: id.toString('base64url') }),
              format,
              prefix,
            );
            const actual = native.mint(
              nativeFile(fileOf(grant, format, false, prefix), key),
              now.getTime(),
              id,
              null,
            );
            assert.equal(
              actual.toString(),
              expected.toString(),
              `${format} ${keyId} ${now.toISOString()} prefix "${prefix}"`,
            );
            compared++;
          }
        }
      }
    }
    assert.equal(compared, GRANTS.length * 2 * TOKEN_FORMATS.length * 9);
  });

  it('knows no format of its own: it renders whatever layout it is given, filling in only the two placeholders', () => {
    const key = newKey();
    const id = randomBytes(16);
    const token = mintToken(GRANT, { key, now: NOW, tokenId: id.toString('base64url') });
    const actual = native
      .mint(
        {
          ...nativeFile(fileOf(GRANT, 'raw', false, 'ghp_'), key),
          before: '<<',
          after: '|{tokenId}|{expiresAt}|{tokenId}|{other}|{|}>>',
        },
        NOW.getTime(),
        id,
        null,
      )
      .toString();
    const expires = formatInstant(token.expiresAt);
    assert.equal(
      actual,
      `<<ghp_${token.token}|${token.tokenId}|${expires}|${token.tokenId}|{other}|{|}>>`,
    );
    // A layout longer than any FORMAT_LAYOUTS entry is not one of ours: refused.
    assert.throws(
      () =>
        native.mint(
          { ...nativeFile(fileOf(GRANT, 'raw'), key), after: 'x'.repeat(129) },
          NOW.getTime(),
          id,
          null,
        ),
      /format layout is too long/,
    );
  });

  it('writes the reader caveat second; our verifier and pymacaroons accept the signature', () => {
    const key = newKey();
    const reader = 'reader uid=1000 gid=1000 pid=4242 start=99 exe=/usr/bin/cat cgroup=/ctr%20x';
    const token = native
      .mint(nativeFile(fileOf(GRANT, 'raw', true), key), NOW.getTime(), randomBytes(16), reader)
      .toString();
    const decoded = decodeToken(token);
    assert.equal(decoded.caveats[READER_CAVEAT_INDEX], reader);
    assert.match(decoded.caveats[0] ?? '', /^time-before /);
    assert.equal(decoded.caveats.length, 7);
    const authenticated = authenticateToken(token, keyLookup(key));
    assert.ok('authenticated' in authenticated, JSON.stringify(authenticated));
    assert.equal(authenticated.reader, reader.slice('reader '.length));
    const py = pymacaroonsVerify(token, key.secret.toString('hex'));
    assert.equal(py.ok, true);
    assert.deepEqual(py.caveats, decoded.caveats);
    assert.equal(pymacaroonsVerify(token, newKey().secret.toString('hex')).ok, false);
  });

  it('the C reader caveat buffer is sized by the token caveat limit', () => {
    const header = readFileSync(new URL('../../../native/addon/reader.h', import.meta.url), 'utf8');
    const max = Number(/#define READER_CAVEAT_MAX (\d+)/.exec(header)?.[1]);
    assert.equal(max, TOKEN_LIMITS.maxCaveatBytes);
  });

  it('never sees the root key: the template carries the derived key alone', () => {
    const key = newKey();
    const template = nativeFile(fileOf(GRANT, 'raw'), key);
    assert.notDeepEqual(template.derivedKey, key.secret);
    assert.deepEqual(
      template.derivedKey,
      createHmac('sha256', 'macaroons-key-generator').update(key.secret).digest(),
    );
  });
});
