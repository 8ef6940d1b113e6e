/**
 * Path globs for the `path` caveat.
 *
 * `*` matches any characters within one segment; a `**` segment matches zero
 * or more whole segments. Globs match decoded segments of a normalised path
 * (see request-path.ts), so a glob never sees `..` or an encoded slash.
 */
export type PathGlob = readonly string[];

const GLOB_SEGMENT = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;

/** Why `glob` is not a valid path glob, or undefined when it is. */
export function pathGlobProblem(glob: string): string | undefined {
  if (!glob.startsWith('/')) return 'must start with /';
  if (glob === '/') return undefined;
  const segments = glob.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '') return 'must not contain an empty segment (//) or end with /';
    if (segment === '.' || segment === '..') return 'must not contain . or .. segments';
    if (segment.includes('**') && segment !== '**') return '** must be a whole segment';
    if (!GLOB_SEGMENT.test(segment))
      return `segment "${segment}" has a character that is not allowed`;
  }
  return undefined;
}

export function parsePathGlob(glob: string): PathGlob {
  return glob === '/' ? [] : glob.slice(1).split('/');
}

export function matchPathGlob(glob: PathGlob, segments: readonly string[]): boolean {
  return matchFrom(glob, 0, segments, 0);
}

function matchFrom(glob: PathGlob, gi: number, segments: readonly string[], si: number): boolean {
  for (; gi < glob.length; gi++) {
    const part = glob[gi] as string;
    if (part === '**') {
      // Collapse runs of ** and try every split point.
      for (let rest = si; rest <= segments.length; rest++) {
        if (matchFrom(glob, gi + 1, segments, rest)) return true;
      }
      return false;
    }
    if (si >= segments.length || !matchSegment(part, segments[si] as string)) return false;
    si++;
  }
  return si === segments.length;
}

function matchSegment(pattern: string, segment: string): boolean {
  if (!pattern.includes('*')) return pattern === segment;
  const pieces = pattern.split('*');
  const first = pieces[0] as string;
  const last = pieces[pieces.length - 1] as string;
  if (!segment.startsWith(first) || segment.length < first.length + last.length) return false;
  if (!segment.endsWith(last)) return false;
  let at = first.length;
  const end = segment.length - last.length;
  for (const middle of pieces.slice(1, -1)) {
    const found = segment.indexOf(middle, at);
    if (found < 0 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}
