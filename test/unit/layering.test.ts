/**
 * The module map holds: token/ is the bottom (pure token code, importing only
 * errors and util), and no two directories of src/ import each other in a
 * cycle. Read from the TypeScript sources' import lines.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';

const SRC = join(REPO_ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The top-level part of src/ a file belongs to: `token`, `gateway`, or `errors`. */
function areaOf(file: string): string {
  return (relative(SRC, file).split('/')[0] as string).replace(/\.(ts|js)$/, '');
}

/** Area -> the areas its files import (type-only imports included: they are coupling too). */
function areaGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sources(SRC)) {
    const from = areaOf(file);
    const deps = graph.get(from) ?? new Set<string>();
    graph.set(from, deps);
    for (const match of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      const target = resolve(dirname(file), match[1] as string);
      const to = areaOf(target);
      if (to !== from && !to.startsWith('..')) deps.add(to);
    }
  }
  return graph;
}

describe('layering', () => {
  it('token/ imports nothing but errors and util', () => {
    const deps = [...(areaGraph().get('token') ?? [])].sort();
    assert.deepEqual(
      deps.filter((d) => d !== 'errors' && d !== 'util'),
      [],
    );
  });

  it('no cycle between the directories of src/', () => {
    const graph = areaGraph();
    const cycles: string[] = [];
    const visit = (area: string, path: string[]) => {
      if (path.includes(area)) {
        cycles.push([...path.slice(path.indexOf(area)), area].join(' -> '));
        return;
      }
      for (const next of graph.get(area) ?? []) visit(next, [...path, area]);
    };
    for (const area of graph.keys()) visit(area, []);
    assert.deepEqual([...new Set(cycles)], []);
  });
});
