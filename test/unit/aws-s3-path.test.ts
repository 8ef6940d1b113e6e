/**
 * S3 keys are judged exactly: whatever an agent sends, an accepted path's
 * segments are the bucket and key S3 reads from it (percent-decoded, nothing
 * merged: a trailing slash, `//`, dot segments and escapes are kept or the
 * path refused), so two distinct keys never meet one judgement. Held against
 * a byte-level reference decoder and encoder written here, not the code's.
 * (test/integration/gateway-aws.test.ts sends aws-cli's spelling of such keys.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { s3Path } from '../../src/aws/s3-path.js';
import { matchPathGlob, parsePathGlob } from '../../src/token/path-glob.js';

/** What S3 reads from a path-style request path: the bucket, and the key after it (or none). */
function s3Reads(
  rawPath: string,
): { bucket: string | undefined; key: string | undefined } | undefined {
  const decode = (text: string): string | undefined => {
    const bytes: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string;
      if (c === '%') {
        const hex = text.slice(i + 1, i + 3);
        if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else bytes.push(...Buffer.from(c, 'utf8'));
    }
    const buffer = Buffer.from(bytes);
    const decoded = buffer.toString('utf8');
    return Buffer.from(decoded, 'utf8').equals(buffer) ? decoded : undefined;
  };
  const rest = rawPath.slice(1);
  if (rest === '') return { bucket: undefined, key: undefined };
  const slash = rest.indexOf('/');
  const bucket = decode(slash < 0 ? rest : rest.slice(0, slash));
  if (bucket === undefined) return undefined;
  if (slash < 0 || slash === rest.length - 1) return { bucket, key: undefined };
  const key = decode(rest.slice(slash + 1));
  return key === undefined ? undefined : { bucket, key };
}

/** The spelling SDKs give a key: unreserved bytes as they are, every other byte %XX. */
function sdkSpelling(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const judgedAs = (segments: readonly string[]) => ({
  bucket: segments[0],
  key: segments.length > 1 ? segments.slice(1).join('/') : undefined,
});

// Characters that make paths ambiguous somewhere: separators, dots, escapes, sub-delims.
const HOSTILE = fc.constantFrom(
  ...'ab/.%2fF5cC3B0+!=~-_ é'.split(''),
  '%2F',
  '%2f',
  '%25',
  '%2E',
  '%20',
  '%2B',
  '%C3%A9',
  '%c3%a9',
);

describe('S3 paths judged as S3 reads them', () => {
  it('an accepted path is judged as exactly the bucket and key S3 reads from it', () => {
    fc.assert(
      fc.property(fc.array(HOSTILE, { maxLength: 24 }), (parts) => {
        const raw = `/${parts.join('')}`;
        const judged = s3Path(raw);
        if (!judged.ok) return;
        assert.deepEqual(judgedAs(judged.segments), s3Reads(raw), raw);
      }),
      { numRuns: 20_000 },
    );
  });

  it('every key in the spelling SDKs send is judged exactly, when the generic rules accept it', () => {
    const segment = fc
      .string({
        unit: fc.oneof(
          fc.constantFrom('a', '.', ' ', '+', '=', '!', '~', '%', '?', '#'),
          fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
        ),
      })
      .filter(
        // Well-formed UTF-16 only (a lone surrogate has no UTF-8), and no dot segment.
        (s) => s !== '' && Buffer.from(s).toString() === s && !/^[.\s]*\.[.\s]*$/.test(s),
      );
    fc.assert(
      fc.property(
        fc.array(segment, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (segments, trailing) => {
          const key = `${segments.join('/')}${trailing ? '/' : ''}`;
          const raw = `/bucket/${sdkSpelling(key)}`;
          const judged = s3Path(raw);
          // The generic rules still refuse some keys (control characters, NFKC, a leading
          // space, a trailing dot); those are refused, never judged as another key.
          if (!judged.ok) return;
          assert.deepEqual(judgedAs(judged.segments), { bucket: 'bucket', key }, raw);
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('a trailing slash names another key: caveats for /b/x do not allow /b/x/', () => {
    const plain = s3Path('/b/x');
    const slash = s3Path('/b/x/');
    assert.ok(plain.ok && slash.ok);
    assert.deepEqual(plain.segments, ['b', 'x']);
    assert.deepEqual(slash.segments, ['b', 'x', '']);
    const allows = (glob: string, segments: readonly string[]) =>
      matchPathGlob(parsePathGlob(glob), segments);
    assert.equal(allows('/b/x', slash.segments), false);
    assert.equal(allows('/b/x/**', slash.segments), true);
    assert.equal(allows('/b/x/*', slash.segments), true);
    assert.equal(allows('/b/*', slash.segments), false);
    // A bucket's own path is the bucket, with or without its slash.
    const bucket = s3Path('/b/');
    assert.deepEqual(bucket.ok ? bucket.segments : [], ['b']);
  });

  it('refuses every other spelling of a key instead of reading it as another', () => {
    for (const raw of [
      '/b/a+b',
      '/b/a!b',
      '/b/a=b',
      '/b/a%2bb',
      '/b/a%c3%a9',
      '/b/é',
      '/b/a//b',
      '/b/a/./b',
      '/b/a/../b',
      '/b/a%2Fb',
      '/b/a%25b',
      '/b/%61',
    ])
      assert.equal(s3Path(raw).ok, false, raw);
    for (const raw of ['/', '/b', '/b/a%2Bb', '/b/a%20b/', '/b/%C3%A9', '/b/a~b-c_d.e'])
      assert.equal(s3Path(raw).ok, true, raw);
  });
});
