/**
 * Token reads inside a sandbox, gVisor (runsc) against bubblewrap in one
 * run: `mintfs run` on each runtime with a private mount, running the
 * benchmark's C reader (open+read+close in a loop, static, from /work) with
 * 1 and then 8 threads. Rounds alternate the runtimes; medians are printed
 * with the ratio gVisor / bubblewrap. No target: a figure for operators
 * choosing a runtime (docs/benchmarks.md).
 *
 *   npm run bench:runtimes      (BENCH_ROUNDS, BENCH_SECONDS to change the defaults)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initKeyring } from '../src/keys/keyring.js';
import { median } from './bench-common.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(REPO, 'dist', 'src', 'bundle', 'mintfs.js');

interface ReaderResult {
  readonly reads: number;
  readonly failures: number;
  readonly readsPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

const RUNTIMES = {
  bubblewrap: (_rootfs: string): string[] => [],
  gVisor: (rootfs: string): string[] => ['--runtime', 'runsc', '--rootfs', rootfs],
} as const;
type RuntimeName = keyof typeof RUNTIMES;

function setUp(work: string): { args: string[]; rootfs: string; workdir: string } {
  const keys = join(work, 'keys');
  initKeyring(keys, new Date());
  const profile = join(work, 'agent.yaml');
  writeFileSync(
    profile,
    'agent: bench-agent\nfiles:\n  github/token:\n    service: github\n    hosts: [api.github.com]\n    methods: [GET]\n    paths: ["/repos/acme/widgets/**"]\n',
  );
  const credential = join(work, 'credential');
  writeFileSync(credential, 'ghp_bench\n', { mode: 0o600 });
  // The gateway is never asked here; the run needs one.
  const gateway = join(work, 'gateway.yaml');
  writeFileSync(
    gateway,
    `listen: [127.0.0.1:0]\nupstreams:\n  github:\n    url: http://127.0.0.1:9\n    credential: { file: ${credential} }\n    inject: "Authorization: token {credential}"\n`,
  );
  // gVisor's root: empty directories (the reader is static, in /work).
  const rootfs = join(work, 'rootfs');
  for (const dir of ['etc', 'tmp', 'proc', 'dev', 'sys', 'run'])
    mkdirSync(join(rootfs, dir), { recursive: true });
  const workdir = join(work, 'work');
  mkdirSync(workdir);
  execFileSync('gcc', [
    '-O2',
    '-static',
    '-pthread',
    '-o',
    join(workdir, 'bench-reader'),
    join(REPO, 'scripts', 'bench', 'bench-reader.c'),
  ]);
  chmodSync(work, 0o755);
  chmodSync(workdir, 0o755);
  return {
    args: ['--profile', profile, '--gateway', gateway, '--keys', keys, '--log-level', 'warn'],
    rootfs,
    workdir,
  };
}

/** One run of the reader in a fresh sandbox of `runtime`. */
function readInSandbox(
  runtime: RuntimeName,
  setup: ReturnType<typeof setUp>,
  size: number,
  threads: number,
): ReaderResult {
  const result = spawnSync(
    process.execPath,
    [
      CLI,
      'run',
      ...RUNTIMES[runtime](setup.rootfs),
      ...setup.args,
      '--workdir',
      setup.workdir,
      '--',
      '/work/bench-reader',
      '/secrets/github/token',
      String(size),
      String(threads),
      String(SECONDS),
    ],
    { encoding: 'utf8', timeout: (SECONDS + 60) * 1000 },
  );
  const line = result.stdout.split('\n').find((l) => l.startsWith('{'));
  if (result.status !== 0 || line === undefined)
    throw new Error(`${runtime}: mintfs run exited ${result.status}: ${result.stderr}`);
  const parsed = JSON.parse(line) as ReaderResult;
  if (parsed.failures > 0) throw new Error(`${runtime}: ${parsed.failures} short or failed reads`);
  return parsed;
}

function main(): void {
  const work = mkdtempSync(join(tmpdir(), 'mintfs-bench-runtimes-'));
  try {
    const setup = setUp(work);
    const size = tokenSize(setup);
    const samples: Record<string, ReaderResult[]> = {};
    for (let round = 0; round < ROUNDS; round++)
      for (const threads of [1, 8])
        for (const runtime of Object.keys(RUNTIMES) as RuntimeName[]) {
          const key = `${runtime} ${threads}`;
          (samples[key] ??= []).push(readInSandbox(runtime, setup, size, threads));
        }
    console.log(`token: ${size} bytes; ${ROUNDS} rounds of ${SECONDS} s; medians`);
    console.log('runtime      readers  reads/s   p50 µs   p99 µs');
    const med = (key: string, field: keyof ReaderResult) =>
      median((samples[key] ?? []).map((r) => r[field]));
    for (const threads of [1, 8])
      for (const runtime of Object.keys(RUNTIMES))
        console.log(
          `${runtime.padEnd(12)} ${String(threads).padStart(7)} ${med(`${runtime} ${threads}`, 'readsPerSecond').toFixed(0).padStart(8)} ${med(`${runtime} ${threads}`, 'p50Us').toFixed(1).padStart(8)} ${med(`${runtime} ${threads}`, 'p99Us').toFixed(1).padStart(8)}`,
        );
    for (const threads of [1, 8]) {
      const ratio =
        med(`gVisor ${threads}`, 'readsPerSecond') / med(`bubblewrap ${threads}`, 'readsPerSecond');
      const latency = med(`gVisor ${threads}`, 'p50Us') / med(`bubblewrap ${threads}`, 'p50Us');
      console.log(
        `gVisor / bubblewrap, ${threads} reader${threads === 1 ? '' : 's'}: throughput ${ratio.toFixed(2)}x, p50 latency ${latency.toFixed(2)}x`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The token's length: `mintfs mint` prints one exactly as a read of the mount gives it. */
function tokenSize(setup: ReturnType<typeof setUp>): number {
  const profile = setup.args[setup.args.indexOf('--profile') + 1] as string;
  const keys = setup.args[setup.args.indexOf('--keys') + 1] as string;
  const token = execFileSync(process.execPath, [
    CLI,
    'mint',
    profile,
    'github/token',
    '--keys',
    keys,
  ]);
  return token.length;
}

main();
