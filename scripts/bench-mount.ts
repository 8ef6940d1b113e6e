/**
 * npm run bench: the cost of reading a token from a mintfs mount, against
 *   - a tmpfs file of the same size (no FUSE at all), and
 *   - a minimal C libfuse3 file system serving a static string with direct_io
 *     (the FUSE floor: the same kernel round trips, no JS, no minting).
 * Targets alternate within each round so drift hits all of them alike.
 * Also: mints/s in process, and how often concurrent sendfile readers
 * (busybox cat) share a page-cached token on the fuse-native backend.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MintFs } from '../src/fs/mint-fs.js';
import { buildTree } from '../src/fs/virtual-tree.js';
import { mountedPaths } from '../src/fuse/mount-table.js';
import { initKeyring } from '../src/keys/keyring.js';
import { createLogger } from '../src/log/logger.js';
import { parseProfile } from '../src/profile/load-profile.js';
import { newTokenId } from '../src/token/identifier.js';
import { mintToken } from '../src/token/mint.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);

const PROFILE = `agent: bench-agent
files:
  github/token:
    service: github
    hosts: [api.github.com]
    methods: [GET, HEAD]
    paths: ["/repos/acme/widgets/**"]
`;

interface ReaderResult {
  reads: number;
  failures: number;
  readsPerSecond: number;
  p50Us: number;
  p99Us: number;
}

const cleanups: Array<() => void> = [];

function main(): void {
  const work = mkdtempSync(join(tmpdir(), 'mintfs-bench-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const reader = compile(work);

  const keys = join(work, 'keys');
  initKeyring(keys, new Date());
  writeFileSync(join(work, 'profile.yaml'), PROFILE);
  const mintMount = join(work, 'mintfs');
  mkdirSync(mintMount);
  const logFd = openSync(join(work, 'mintfs.log'), 'w');
  startDaemon(
    process.execPath,
    [CLI, 'mount', join(work, 'profile.yaml'), mintMount, '--keys', keys],
    mintMount,
    logFd,
  );
  const tokenFile = join(mintMount, 'github/token');
  const size = statSync(tokenFile).size;

  const floorMount = join(work, 'c-floor');
  mkdirSync(floorMount);
  startDaemon(join(work, 'static-fuse'), [floorMount, 'x'.repeat(size)], floorMount, 'ignore');
  // Issue 6's fair floor: a fresh inode per lookup, zero timeouts, a distinct string per open.
  const perOpenMount = join(work, 'c-per-open');
  mkdirSync(perOpenMount);
  startDaemon(join(work, 'per-open-fuse'), [perOpenMount, String(size)], perOpenMount, 'ignore');

  const shm = mkdtempSync(join('/dev/shm', 'mintfs-bench-'));
  cleanups.push(() => rmSync(shm, { recursive: true, force: true }));
  writeFileSync(join(shm, 'token'), 'x'.repeat(size));

  const targets = [
    { name: 'tmpfs file', file: join(shm, 'token') },
    { name: 'C libfuse3 floor', file: join(floorMount, 'token') },
    { name: 'C per-open floor', file: join(perOpenMount, 'token') },
    { name: 'mintfs (fuse-native)', file: tokenFile },
  ];

  console.log(
    `mintfs mount benchmark: ${size}-byte token, ${ROUNDS} alternating rounds of ${SECONDS}s per target\n`,
  );

  const measure = (threads: number) => {
    const samples = new Map<string, ReaderResult[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const target of order)
        samples.get(target.name)!.push(runReader(reader, target.file, size, threads));
    }
    return new Map([...samples].map(([name, results]) => [name, summarise(results)]));
  };

  const single = measure(1);
  const eight = measure(8);
  const floor1 = single.get('C libfuse3 floor')!;
  const tmpfs1 = single.get('tmpfs file')!;
  const floor8 = eight.get('C libfuse3 floor')!;
  console.log('open+read+close, 1 reader (median of rounds)');
  console.log(row(['target', 'p50 µs', 'p99 µs', 'reads/s', 'p50 vs C floor', 'p50 vs tmpfs']));
  for (const [name, r] of single)
    console.log(
      row([
        name,
        r.p50Us.toFixed(1),
        r.p99Us.toFixed(1),
        r.readsPerSecond.toFixed(0),
        ratio(r.p50Us, floor1.p50Us),
        ratio(r.p50Us, tmpfs1.p50Us),
      ]),
    );
  console.log('\nthroughput, 8 concurrent readers (median of rounds)');
  console.log(row(['target', 'reads/s', 'vs C floor', 'p50 µs', 'p99 µs']));
  for (const [name, r] of eight)
    console.log(
      row([
        name,
        r.readsPerSecond.toFixed(0),
        ratio(r.readsPerSecond, floor8.readsPerSecond),
        r.p50Us.toFixed(1),
        r.p99Us.toFixed(1),
      ]),
    );

  const mints = benchMints();
  console.log('\nminting in process (no FUSE)');
  console.log(row(['operation', 'per second', 'µs each']));
  for (const [name, perSecond] of mints)
    console.log(row([name, perSecond.toFixed(0), (1e6 / perSecond).toFixed(1)]));

  const sharing = busyboxSharing(tokenFile, work);
  console.log(
    `\nsendfile readers (8 busybox cat x 50, concurrent): ${sharing.distinct} distinct tokens of ${sharing.reads} reads (${((100 * sharing.distinct) / sharing.reads).toFixed(0)}%)`,
  );
}

function compile(work: string): string {
  const flags = execFileSync('pkg-config', ['fuse3', '--cflags', '--libs'], { encoding: 'utf8' })
    .trim()
    .split(/\s+/);
  const src = join(ROOT, 'scripts', 'bench');
  execFileSync('gcc', [
    '-O2',
    '-o',
    join(work, 'static-fuse'),
    join(src, 'static-fuse.c'),
    ...flags,
  ]);
  execFileSync('gcc', [
    '-O2',
    '-o',
    join(work, 'per-open-fuse'),
    join(src, 'per-open-fuse.c'),
    ...flags,
  ]);
  execFileSync('gcc', [
    '-O2',
    '-pthread',
    '-o',
    join(work, 'bench-reader'),
    join(src, 'bench-reader.c'),
  ]);
  return join(work, 'bench-reader');
}

function startDaemon(
  command: string,
  args: string[],
  mountpoint: string,
  stderr: number | 'ignore',
): void {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'ignore', stderr] });
  cleanups.push(() => {
    child.kill('SIGTERM');
    if (mountedPaths().includes(mountpoint))
      spawnSync('fusermount3', ['-u', '-z', '--', mountpoint]);
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if (mountedPaths().includes(mountpoint) && readdirSync(mountpoint).length > 0) return;
    } catch {
      // not serving yet
    }
    if (child.exitCode !== null) throw new Error(`${command} exited ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${command} did not mount ${mountpoint}`);
    spawnSync('sleep', ['0.02']);
  }
}

function runReader(reader: string, file: string, size: number, threads: number): ReaderResult {
  const out = execFileSync(reader, [file, String(size), String(threads), String(SECONDS)], {
    encoding: 'utf8',
  });
  const result = JSON.parse(out) as ReaderResult;
  if (result.failures > 0)
    throw new Error(`${file}: ${result.failures} reads did not return ${size} bytes`);
  return result;
}

function summarise(results: ReaderResult[]): ReaderResult {
  const median = (pick: (r: ReaderResult) => number) => {
    const values = results.map(pick).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)]!;
  };
  return {
    reads: results.reduce((n, r) => n + r.reads, 0),
    failures: 0,
    readsPerSecond: median((r) => r.readsPerSecond),
    p50Us: median((r) => r.p50Us),
    p99Us: median((r) => r.p99Us),
  };
}

function benchMints(): Array<[string, number]> {
  const keyring = initKeyring(mkdtempSync(join(tmpdir(), 'mintfs-bench-keys-')), new Date());
  cleanups.push(() => rmSync(keyring.dir, { recursive: true, force: true }));
  const tree = buildTree(parseProfile(PROFILE, 'bench'));
  const grant = tree.files.get('github/token')!.grant;
  const fs = new MintFs({
    tree: () => tree,
    keyring: () => keyring,
    clock: () => new Date(),
    newTokenId,
    logger: createLogger({ destination: '/dev/null' }),
  });
  const rate = (work: () => void): number => {
    for (let i = 0; i < 2000; i++) work();
    let n = 0;
    const start = process.hrtime.bigint();
    const end = start + BigInt(Math.round(SECONDS * 1e9));
    let now = start;
    while (now < end) {
      for (let i = 0; i < 100; i++) work();
      n += 100;
      now = process.hrtime.bigint();
    }
    return n / (Number(now - start) / 1e9);
  };
  return [
    [
      'mintToken (sign + encode)',
      rate(() =>
        mintToken(grant, { key: keyring.current, now: new Date(), tokenId: newTokenId() }),
      ),
    ],
    [
      'MintFs open+read+release (with audit log)',
      rate(() => {
        const handle = fs.open('/github/token', 0);
        fs.read(handle, 4096, 0);
        fs.release(handle);
      }),
    ],
  ];
}

function busyboxSharing(file: string, work: string): { reads: number; distinct: number } {
  // Eight concurrent loops, each writing its own file so their lines cannot interleave.
  const script =
    'for j in 1 2 3 4 5 6 7 8; do (for i in $(seq 50); do busybox cat "$1"; echo; done > "$2/busybox.$j") & done; wait';
  spawnSync('bash', ['-c', script, 'bash', file, work]);
  const tokens = Array.from({ length: 8 }, (_, j) =>
    readFileSync(join(work, `busybox.${j + 1}`), 'utf8'),
  ).flatMap((out) => out.split('\n').filter(Boolean));
  return { reads: tokens.length, distinct: new Set(tokens).size };
}

function ratio(value: number, base: number): string {
  return `${(value / base).toFixed(2)}x`;
}

function row(cells: string[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(44) : cell.padStart(15))).join('');
}

try {
  main();
} finally {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch {
      // best effort: keep cleaning
    }
  }
}
