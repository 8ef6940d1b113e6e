/**
 * Path globs for the `path` caveat.
 *
 * `*` matches any characters within one segment; a `**` segment matches zero
 * or more whole segments. Globs match decoded segments of a normalised path
 * (see request-path.ts), so a glob never sees `..` or an encoded slash.
 *
 * Matching is dynamic programming over (glob segment, path segment): at most
 * (glob segments + 1) × (path segments + 1) steps whatever the pattern, so a
 * holder-appended `/**\/a/**\/a/**` costs what `/a/b` costs. Globs are
 * bounded by TOKEN_LIMITS, paths by REQUEST_LIMITS.
 */
import { TOKEN_LIMITS } from './limits.js';

export type PathGlob = readonly string[];

const GLOB_SEGMENT = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;

/** Why `glob` is not a valid path glob, or undefined when it is. */
export function pathGlobProblem(glob: string): string | undefined {
  if (!glob.startsWith('/')) return 'must start with /';
  if (glob === '/') return undefined;
  const segments = glob.slice(1).split('/');
  if (segments.length > TOKEN_LIMITS.maxGlobSegments)
    return `has more than ${TOKEN_LIMITS.maxGlobSegments} segments`;
  let doubleStars = 0;
  for (const segment of segments) {
    if (segment === '') return 'must not contain an empty segment (//) or end with /';
    if (segment === '.' || segment === '..') return 'must not contain . or .. segments';
    if (segment.includes('**') && segment !== '**') return '** must be a whole segment';
    if (segment === '**') doubleStars++;
    if (!GLOB_SEGMENT.test(segment))
      return `segment "${segment}" has a character that is not allowed`;
  }
  if (doubleStars > TOKEN_LIMITS.maxDoubleStars)
    return `has more than ${TOKEN_LIMITS.maxDoubleStars} ** segments`;
  return undefined;
}

export function parsePathGlob(glob: string): PathGlob {
  return glob === '/' ? [] : glob.slice(1).split('/');
}

/** Counts matching work, for tests that bound it (steps, not time). */
export interface MatchWork {
  steps: number;
}

export function matchPathGlob(
  glob: PathGlob,
  segments: readonly string[],
  work?: MatchWork,
): boolean {
  const n = segments.length;
  // reach[j]: the glob parts so far can match exactly segments[0..j).
  let reach = new Uint8Array(n + 1);
  reach[0] = 1;
  let next = new Uint8Array(n + 1);
  let steps = 0;
  for (const part of glob) {
    next.fill(0);
    let any = false;
    if (part === '**') {
      // Zero or more whole segments: every j at or after the first reachable one.
      let seen = 0;
      for (let j = 0; j <= n; j++) {
        seen |= reach[j] as number;
        next[j] = seen;
        any ||= seen === 1;
      }
      steps += n + 1;
    } else {
      for (let j = 0; j < n; j++) {
        if (reach[j] !== 1) continue;
        steps++;
        if (matchSegment(part, segments[j] as string)) {
          next[j + 1] = 1;
          any = true;
        }
      }
    }
    [reach, next] = [next, reach];
    if (!any) {
      if (work) work.steps += steps;
      return false;
    }
  }
  if (work) work.steps += steps;
  return reach[n] === 1;
}

/**
 * One segment against a pattern whose `*` match any run of characters:
 * greedy leftmost placement of each literal piece is exact when `*` is the
 * only wildcard, and costs at most one scan of the segment per piece.
 */
function matchSegment(pattern: string, segment: string): boolean {
  if (!pattern.includes('*')) return pattern === segment;
  const pieces = pattern.split('*');
  const first = pieces[0] as string;
  const last = pieces[pieces.length - 1] as string;
  if (segment.length < first.length + last.length) return false;
  if (!segment.startsWith(first) || !segment.endsWith(last)) return false;
  let at = first.length;
  const end = segment.length - last.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const middle = pieces[i] as string;
    const found = segment.indexOf(middle, at);
    if (found < 0 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}
