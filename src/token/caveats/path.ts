/** `path /repos/acme/** [...]`: globs over the normalised request path (see path-glob.ts). */
import { matchPathGlob, parsePathGlob, pathGlobProblem, type PathGlob } from '../path-glob.js';
import type { Caveat, CaveatKind } from './kind.js';

export const path: CaveatKind = {
  name: 'path',
  parse(values, text, malformed) {
    const globs: PathGlob[] = [];
    for (const value of values) {
      const problem = pathGlobProblem(value);
      if (problem) return malformed(`glob ${value} ${problem}`);
      globs.push(parsePathGlob(value));
    }
    const caveat: Caveat = {
      kind: 'path',
      text,
      check: (request) =>
        globs.some((glob) => matchPathGlob(glob, request.pathSegments))
          ? undefined
          : `path /${request.pathSegments.join('/')} is not allowed`,
    };
    return { ok: true, caveat };
  },
  fromGrant: (grant) => `path ${grant.paths.join(' ')}`,
};
