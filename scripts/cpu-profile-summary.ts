/**
 * Turns V8 CPU profiles (`node --cpu-prof`, as the benches write them with
 * BENCH_PROFILE_DIR) into what a person reads without a browser or network:
 *   PROFILE.folded  one line per stack, `frame;frame;frame samples`, the input
 *                   of flamegraph.pl, speedscope and inferno;
 *   PROFILE.svg     a flame graph of those stacks (widths are sample counts);
 *   stdout          the functions with the most self time, and the most
 *                   inclusive time, as shares of all samples.
 *
 *   node dist/scripts/cpu-profile-summary.js DIR_OR_PROFILE... [--top N]
 *
 * V8 samples on a wall-clock interval: on a machine whose cores are shared,
 * a process descheduled inside a system call (writev, write, fsync) has its
 * waiting counted there, so those frames read larger than their CPU cost.
 * The bench's CPU time per request is the measure to compare changes by.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

/** A frame's name: the function, and the file it is in without the long prefix. */
function frameName(frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (frame.url === '') return name;
  const file = frame.url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/dist\//, '');
  return `${name} ${file}:${frame.lineNumber + 1}`;
}

/** Sample counts per full stack (root first), folded. */
export function foldProfile(profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const folded = new Map<string, number>();
  for (const [id, count] of hits) {
    const frames: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at);
      if (node === undefined || node.callFrame.functionName === '(root)') break;
      frames.push(frameName(node.callFrame).replaceAll(';', ','));
    }
    const stack = frames.reverse().join(';');
    folded.set(stack, (folded.get(stack) ?? 0) + count);
  }
  return folded;
}

interface Tree {
  readonly name: string;
  value: number;
  readonly children: Map<string, Tree>;
}

function treeOf(folded: Map<string, number>): Tree {
  const root: Tree = { name: 'all', value: 0, children: new Map() };
  for (const [stack, count] of folded) {
    root.value += count;
    let at = root;
    for (const frame of stack.split(';')) {
      let next = at.children.get(frame);
      if (next === undefined) {
        next = { name: frame, value: 0, children: new Map() };
        at.children.set(frame, next);
      }
      next.value += count;
      at = next;
    }
  }
  return root;
}

const escapeXml = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** A plain flame graph: root at the bottom, each frame as wide as its samples, names where they fit. */
export function flameSvg(folded: Map<string, number>, title: string): string {
  const root = treeOf(folded);
  const width = 1600;
  const row = 16;
  const rects: string[] = [];
  let depth = 0;
  const place = (node: Tree, x: number, level: number) => {
    depth = Math.max(depth, level);
    const w = (node.value / Math.max(1, root.value)) * width;
    if (w < 0.3) return;
    rects.push(
      `<g><title>${escapeXml(node.name)} (${node.value} samples, ${((100 * node.value) / root.value).toFixed(1)}%)</title>` +
        `<rect x="${x.toFixed(1)}" y="LEVEL${level}" width="${w.toFixed(1)}" height="${row - 1}" fill="hsl(${20 + ((node.name.length * 7) % 40)},85%,${55 + (level % 3) * 6}%)"/>` +
        (w > 40
          ? `<text x="${(x + 3).toFixed(1)}" y="LEVEL${level}T" font-size="11" font-family="monospace">${escapeXml(node.name.slice(0, Math.floor(w / 6.6)))}</text>`
          : '') +
        '</g>',
    );
    let offset = x;
    for (const child of [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      place(child, offset, level + 1);
      offset += (child.value / root.value) * width;
    }
  };
  place(root, 0, 0);
  const height = (depth + 3) * row;
  const body = rects
    .join('\n')
    .replace(/LEVEL(\d+)T/g, (_, l: string) => String(height - (Number(l) + 1) * row + 11))
    .replace(/LEVEL(\d+)/g, (_, l: string) => String(height - (Number(l) + 1) * row));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n<text x="4" y="14" font-size="13" font-family="sans-serif">${escapeXml(title)}</text>\n${body}\n</svg>\n`;
}

/**
 * The top functions by self and by inclusive samples, as lines of text, as
 * shares of the busy samples: a bench's gateway idles while tokens are read
 * and other targets run, and `(idle)` would drown everything else.
 */
export function summarise(folded: Map<string, number>, top: number): string {
  let total = 0;
  let idle = 0;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [stack, count] of folded) {
    if (stack === '(idle)') {
      idle += count;
      continue;
    }
    total += count;
    const frames = stack.split(';');
    const leaf = frames[frames.length - 1] ?? '(empty)';
    self.set(leaf, (self.get(leaf) ?? 0) + count);
    for (const frame of new Set(frames)) inclusive.set(frame, (inclusive.get(frame) ?? 0) + count);
  }
  const table = (counts: Map<string, number>) =>
    [...counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, count]) => `  ${((100 * count) / total).toFixed(1).padStart(5)}%  ${name}`)
      .join('\n');
  return `${total} busy samples (and ${idle} idle); shares of the busy ones\nself:\n${table(self)}\ninclusive:\n${table(inclusive)}\n`;
}

function main(argv: readonly string[]): void {
  const topAt = argv.indexOf('--top');
  const top = topAt >= 0 ? Number(argv[topAt + 1]) : 30;
  const inputs = topAt < 0 ? argv : argv.filter((_, i) => i !== topAt && i !== topAt + 1);
  const files = inputs.flatMap((input) =>
    statSync(input).isDirectory()
      ? readdirSync(input)
          .filter((name) => name.endsWith('.cpuprofile'))
          .map((name) => join(input, name))
      : [input],
  );
  if (files.length === 0) throw new Error('no .cpuprofile files given');
  for (const file of files) {
    const folded = foldProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
    const base = file.replace(/\.cpuprofile$/, '');
    writeFileSync(
      `${base}.folded`,
      [...folded].map(([stack, count]) => `${stack} ${count}`).join('\n') + '\n',
    );
    writeFileSync(`${base}.svg`, flameSvg(folded, file));
    console.log(`${file} (-> ${base}.folded, ${base}.svg)\n${summarise(folded, top)}`);
  }
}

main(process.argv.slice(2));
