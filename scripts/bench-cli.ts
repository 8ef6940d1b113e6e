/**
 * npm run bench:cli: start-up time of the one-shot commands (inspect,
 * verify, attenuate) against a bare `node -e 0`, as the median of paired
 * runs (each pair back to back, so machine noise hits both alike). Then,
 * with no target, how long `mintfs gateway` takes to print its readiness
 * line (`gateway-listening`): what a restart costs before traffic flows.
 * Target: at most 2.0x (issue 30), with the compile cache warm (the executable keeps
 * V8's compile cache in ~/.cache/mintfs/v8: src/cli/compile-cache.ts), which
 * is the state of any command run more than once. The cold figure (cache
 * off) is printed beside it for the first run after an install.
 */
import { spawn, spawnSync } from 'node:child_process';
import { median } from './bench-common.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initKeyring } from '../src/keys/keyring.js';
import { newTokenId } from '../src/token/identifier.js';
import { mintToken } from '../src/token/mint.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'bundle', 'mintfs.js');
const PAIRS = Number(process.env.BENCH_PAIRS ?? 15);
const TARGET = 2.0;

function timed(args: readonly string[], env: NodeJS.ProcessEnv = process.env): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: 'ignore', env });
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const dir = mkdtempSync(join(tmpdir(), 'mintfs-bench-cli-'));
try {
  const keyring = initKeyring(join(dir, 'keys'), new Date());
  const token = mintToken(
    {
      agent: 'bench',
      service: 'github',
      hosts: ['api.github.com'],
      methods: ['GET'],
      paths: ['/repos/acme/**'],
      ttlMs: 300_000,
    },
    { key: keyring.current, now: new Date(), tokenId: newTokenId() },
  ).token;
  const commands: Array<[string, string[]]> = [
    ['inspect', [CLI, 'inspect', token]],
    [
      'verify',
      [
        CLI,
        'verify',
        token,
        '--keys',
        join(dir, 'keys'),
        '--service',
        'github',
        '--method',
        'GET',
        '--url',
        'https://api.github.com/repos/acme/x',
      ],
    ],
    ['attenuate', [CLI, 'attenuate', token, '--caveat', 'method GET']],
  ];
  console.log(`node ${process.version}, ${PAIRS} paired runs each, median ms`);
  console.log('command     node -e 0   mintfs   ratio   target   no cache');
  const cold = { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' };
  let worst = 0;
  for (const [name, args] of commands) {
    timed(args); // fills the compile cache if this build has not run yet
    const bare: number[] = [];
    const cli: number[] = [];
    const uncached: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      bare.push(timed(['-e', '0']));
      cli.push(timed(args));
      uncached.push(timed(args, cold));
    }
    const ratio = median(cli) / median(bare);
    worst = Math.max(worst, ratio);
    console.log(
      `${name.padEnd(10)}  ${median(bare).toFixed(1).padStart(9)}  ${median(cli).toFixed(1).padStart(7)}  ${ratio.toFixed(2).padStart(5)}x  <= ${TARGET.toFixed(1)}x  ${(median(uncached) / median(bare)).toFixed(2).padStart(7)}x`,
    );
  }
  console.log(
    `verdict: worst ${worst.toFixed(2)}x ${worst <= TARGET ? 'meets' : 'misses'} the ${TARGET.toFixed(1)}x target`,
  );
  writeFileSync(join(dir, 'credential'), 'bench-credential\n', { mode: 0o600 });
  writeFileSync(
    join(dir, 'gateway.yaml'),
    'listen: [127.0.0.1:0]\nupstreams:\n  github:\n    url: https://127.0.0.1:9\n    credential: { file: ./credential }\n    inject: "Authorization: token {credential}"\n',
  );
  const bare: number[] = [];
  const ready: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    bare.push(timed(['-e', '0']));
    ready.push(
      await gatewayReady([CLI, 'gateway', join(dir, 'gateway.yaml'), '--keys', join(dir, 'keys')]),
    );
  }
  console.log(
    `gateway ready (no target): ${median(ready).toFixed(1)} ms, ${(median(ready) / median(bare)).toFixed(2)}x node -e 0`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Milliseconds from spawning a gateway to its readiness line on stderr; then stops it. */
async function gatewayReady(args: readonly string[]): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const elapsed = await new Promise<number>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('"event":"gateway-listening"'))
        resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
    child.once('exit', (code) => reject(new Error(`mintfs gateway exited ${code}: ${stderr}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return elapsed;
}
