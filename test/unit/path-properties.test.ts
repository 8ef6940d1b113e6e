/**
 * Property tests for the two pieces that decide what a `path` caveat allows:
 * the request-path normaliser and the glob matcher. The normaliser's promise
 * is that an accepted path cannot be read as another path by an upstream that
 * decodes twice or drops `;` parameters before resolving dots; the matcher's
 * is that it agrees with a plain backtracking reference and does bounded work
 * on any input (counted in steps, not timed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TOKEN_LIMITS } from '../../src/token/limits.js';
import {
  matchPathGlob,
  parsePathGlob,
  pathGlobProblem,
  type MatchWork,
} from '../../src/token/path-glob.js';
import { normaliseRequestPath } from '../../src/token/request-path.js';

// Pieces an attacker combines: dots, ;, escapes of dots, slashes and %, unicode look-alikes.
const PIECES = [
  'a',
  'b',
  'repos',
  '.',
  '..',
  ';',
  ';x=1',
  '%2e',
  '%2E',
  '%25',
  '%252e',
  '%2f',
  '%5c',
  '%3b',
  '%20',
  '%41',
  '%C3%A9',
  '%EF%BC%8E',
  '\uFF0E',
  '~',
  '-',
  '_',
  '%',
  '%zz',
  ' ',
  '\\',
];
const segment = fc
  .array(fc.constantFrom(...PIECES), { minLength: 0, maxLength: 4 })
  .map((p) => p.join(''));
const rawPath = fc.array(segment, { minLength: 0, maxLength: 6 }).map((s) => `/${s.join('/')}`);

/** What Tomcat/Spring/Jetty do: drop ;parameters, decode, then resolve dot segments. */
function semicolonNormaliser(path: string): string[] | undefined {
  const out: string[] = [];
  for (const raw of path.split('/').slice(1)) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw.split(';')[0] ?? '');
    } catch {
      return undefined;
    }
    if (decoded === '..') out.pop();
    else if (decoded !== '.' && decoded !== '') out.push(decoded);
  }
  return out;
}

describe('request path normalisation (properties)', () => {
  it('an accepted path reads the same to a second decode, a ;-dropping normaliser and NFKC', () => {
    fc.assert(
      fc.property(rawPath, (path) => {
        const result = normaliseRequestPath(path);
        if (!result.ok) return;
        for (const seg of result.segments) {
          // A second decode changes nothing: no % survives the first.
          assert.equal(seg.includes('%'), false, path);
          assert.equal(seg.normalize('NFKC'), seg, path);
          assert.doesNotMatch(seg, /^[.\s]+$|^\s|[.\s]$/, path);
        }
        const other = semicolonNormaliser(path);
        const trimmed = result.segments;
        assert.deepEqual(other, [...trimmed], `${path} reads differently after ;-stripping`);
      }),
      { numRuns: 5000 },
    );
  });

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        const result = normaliseRequestPath(`/${text}`);
        assert.equal(typeof result.ok, 'boolean');
      }),
      { numRuns: 3000 },
    );
  });
});

/** The obvious backtracking matcher: exponential in the worst case, exact on small inputs. */
function referenceMatch(glob: readonly string[], segments: readonly string[]): boolean {
  if (glob.length === 0) return segments.length === 0;
  const [head, ...rest] = glob as [string, ...string[]];
  if (head === '**') {
    for (let i = 0; i <= segments.length; i++)
      if (referenceMatch(rest, segments.slice(i))) return true;
    return false;
  }
  if (segments.length === 0) return false;
  const pattern = new RegExp(`^${head.split('*').map(escapeRegExp).join('.*')}$`, 's');
  return pattern.test(segments[0] as string) && referenceMatch(rest, segments.slice(1));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const globPart = fc.constantFrom('**', '*', 'a', 'b', 'a*', '*b', 'a*b', '*a*', 'ab');
const pathPart = fc.constantFrom('a', 'b', 'ab', 'ba', 'aab', 'x', '');

describe('path glob matching (properties)', () => {
  it('agrees with a backtracking reference on small inputs', () => {
    fc.assert(
      fc.property(
        fc.array(globPart, { maxLength: 6 }),
        fc.array(pathPart, { maxLength: 7 }),
        (glob, segments) => {
          assert.equal(
            matchPathGlob(glob, segments),
            referenceMatch(glob, segments),
            `/${glob.join('/')} vs /${segments.join('/')}`,
          );
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('does at most (glob + 1) x (path + 1) steps, ** interleavings included', () => {
    const worst = [
      '/**/**/**/**/z',
      '/**/a/**/a/**/a/**/z',
      `/${Array.from({ length: TOKEN_LIMITS.maxGlobSegments }, (_, i) => (i % 2 ? 'a' : '**')).join('/')}`,
    ];
    const path = Array.from({ length: 128 }, () => 'a');
    for (const text of worst) {
      const glob = parsePathGlob(text);
      const work: MatchWork = { steps: 0 };
      matchPathGlob(glob, path, work);
      assert.ok(work.steps > 0);
      assert.ok(
        work.steps <= (glob.length + 1) * (path.length + 1),
        `${text}: ${work.steps} steps`,
      );
    }
  });

  it('bounds work on random globs too', () => {
    fc.assert(
      fc.property(
        fc.array(globPart, { maxLength: TOKEN_LIMITS.maxGlobSegments }),
        fc.array(pathPart, { maxLength: 128 }),
        (glob, segments) => {
          const work: MatchWork = { steps: 0 };
          matchPathGlob(glob, segments, work);
          assert.ok(work.steps <= (glob.length + 1) * (segments.length + 1));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses globs past the limits', () => {
    assert.match(pathGlobProblem(`/${'a/'.repeat(32)}a`) ?? '', /more than 32 segments/);
    assert.match(pathGlobProblem('/**/a/**/a/**/a/**/a/**') ?? '', /more than 4 \*\*/);
    assert.equal(pathGlobProblem('/**/a/**/a/**/a/**'), undefined);
  });
});
