/**
 * Part of `npm run bench:gateway`: HTTPS interception. The same client
 * (scripts/bench/tunnel-load.mjs: 16 keep-alive CONNECT tunnels, a fresh
 * token on every request) against
 *   (i)  the mintfs gateway intercepting with its CA, verifying each token
 *        and injecting the credential, and
 *   (ii) mitmproxy (Debian) intercepting with its CA and injecting the same
 *        header with an addon, as deployment guides do,
 * both in front of one nginx TLS upstream, in the same run. Target: (i) at
 * least 5x (ii). Also: the cost of a new tunnel (CONNECT, TLS handshake,
 * one request) with the leaf certificate cached and without (the first
 * tunnel to each of 20 hosts makes its leaf).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initKeyring } from '../src/keys/keyring.js';
import { newTokenId } from '../src/token/identifier.js';
import { mintToken } from '../src/token/mint.js';
import { initCa } from '../src/intercept/ca.js';
import { gatewayProfileFlags, median, waitForPort } from './bench-common.js';
import { makeTestPki } from '../test/helpers/tls.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const LOAD = join(ROOT, 'scripts', 'bench', 'tunnel-load.mjs');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const HOST = 'api.bench.test';
const HANDSHAKE_HOSTS = Array.from({ length: 20 }, (_, i) => `h${i}.bench.test`);
const PORTS = { upstream: 18701, gateway: 18702, mitm: 18703 };

interface Load {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  tokensLeft: number;
}

const children: ChildProcess[] = [];

async function main(work: string): Promise<void> {
  const nginx = execFileSync('bash', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim();
  // The tests' throwaway PKI: ca.pem and leaf.pem/leaf.key for localhost and 127.0.0.1
  // (the helper writes only ca.pem since it makes one PKI per process: the leaf is written here).
  const pki = makeTestPki(work);
  writeFileSync(join(work, 'leaf.pem'), pki.cert);
  writeFileSync(join(work, 'leaf.key'), pki.key, { mode: 0o600 });
  writeFileSync(
    join(work, 'upstream.conf'),
    `worker_processes 1;\npid ${work}/nginx.pid;\nerror_log ${work}/nginx.error.log;\nevents { worker_connections 1024; }\nhttp { access_log off; keepalive_requests 1000000; server { listen 127.0.0.1:${PORTS.upstream} ssl; ssl_certificate ${work}/leaf.pem; ssl_certificate_key ${work}/leaf.key; location / { return 200 '{"ok":true}'; } } }\n`,
  );
  start(nginx, ['-c', join(work, 'upstream.conf'), '-g', 'daemon off;']);

  const keys = join(work, 'keys');
  const keyring = initKeyring(keys, new Date());
  await initCa(join(work, 'ca'), {
    hosts: ['bench.test'],
    now: new Date(),
    validDays: 1,
  });
  writeFileSync(join(work, 'credential'), 'bench-credential\n', { mode: 0o600 });
  writeFileSync(
    join(work, 'gateway.yaml'),
    `listen: [127.0.0.1:${PORTS.gateway}]\nintercept: { ca: ./ca }\nupstreams:\n  bench:\n    url: https://127.0.0.1:${PORTS.upstream}\n    hosts: [${[HOST, ...HANDSHAKE_HOSTS].join(', ')}]\n    ca: ./ca.pem\n    credential: { file: ./credential }\n    inject: "Authorization: token {credential}"\n`,
  );
  start(process.execPath, [
    ...gatewayProfileFlags(),
    CLI,
    'gateway',
    join(work, 'gateway.yaml'),
    '--keys',
    keys,
  ]);

  mkdirSync(join(work, 'mitm'));
  start(
    'mitmdump',
    [
      '-q',
      '--listen-host',
      '127.0.0.1',
      '-p',
      String(PORTS.mitm),
      '--set',
      `confdir=${join(work, 'mitm')}`,
      // No upstream at the agent's name: connect lazily, then the addon points it at nginx.
      '--set',
      'connection_strategy=lazy',
      // Cheaper for mitmproxy than verifying nginx's certificate: a conservative baseline.
      '--set',
      'ssl_insecure=true',
      '-s',
      join(ROOT, 'scripts', 'bench', 'mitm-intercept.py'),
    ],
    { MITM_UPSTREAM_PORT: String(PORTS.upstream) },
  );
  for (const port of Object.values(PORTS)) await waitForPort(port);
  const mitmCa = join(work, 'mitm', 'mitmproxy-ca-cert.pem');
  await waitForFile(mitmCa);

  const mint = (host: string) =>
    mintToken(
      {
        agent: 'bench',
        service: 'bench',
        hosts: [host],
        methods: ['GET'],
        paths: ['/**'],
        ttlMs: 3_600_000,
      },
      { key: keyring.current, now: new Date(), tokenId: newTokenId() },
    ).token;
  // More than any run sends: each run of the gateway gets its own slice (no token seen twice).
  const perRun = Number(process.env.BENCH_FRESH_TOKENS ?? 60_000);
  const gatewayCa = join(work, 'ca', 'ca.crt');

  const runs: Array<{ gateway: Load; mitm: Load }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    const file = join(work, `tokens-${round}.txt`);
    writeFileSync(file, `${Array.from({ length: perRun }, () => mint(HOST)).join('\n')}\n`);
    const gateway = load(PORTS.gateway, gatewayCa, file);
    const mitm = load(PORTS.mitm, mitmCa, file);
    if (gateway.tokensLeft === 0)
      throw new Error('the gateway run used every token: raise BENCH_FRESH_TOKENS');
    if (gateway.errors > 0 || mitm.errors > 0)
      throw new Error(`failed responses: gateway ${gateway.errors}, mitmproxy ${mitm.errors}`);
    runs.push({ gateway, mitm });
  }

  // New tunnels: the first to each host makes its leaf; the second finds it cached.
  const handshakeTokens = join(work, 'handshake-tokens.txt');
  writeFileSync(handshakeTokens, `${HANDSHAKE_HOSTS.map(mint).join('\n')}\n`);
  const cold = handshake(PORTS.gateway, gatewayCa, handshakeTokens);
  const warm = handshake(PORTS.gateway, gatewayCa, handshakeTokens);
  const mitmNew = handshake(PORTS.mitm, mitmCa, handshakeTokens);

  const ratio = median(runs.map((r) => r.gateway.rps / r.mitm.rps));
  console.log(
    `interception benchmark: ${ROUNDS} rounds of ${SECONDS}s, 16 keep-alive CONNECT tunnels, a fresh token per request, nginx TLS upstream\n`,
  );
  console.log(row(['target', 'req/s', 'p50 ms', 'p99 ms']));
  const med = (pick: (l: Load) => number, side: 'gateway' | 'mitm') =>
    median(runs.map((r) => pick(r[side])));
  for (const [name, side] of [
    ['(i) mintfs gateway', 'gateway'],
    ['(ii) mitmproxy + addon', 'mitm'],
  ] as const)
    console.log(
      row([
        name,
        med((l) => l.rps, side).toFixed(0),
        med((l) => l.p50Ms, side).toFixed(2),
        med((l) => l.p99Ms, side).toFixed(2),
      ]),
    );
  console.log(
    `\nnew tunnel (CONNECT + TLS + one request), median of 20: gateway ${median(warm).toFixed(2)} ms with the leaf cached, ${median(cold).toFixed(2)} ms when the tunnel makes it; mitmproxy ${median(mitmNew).toFixed(2)} ms`,
  );
  console.log(
    `verdict: the gateway serves ${ratio.toFixed(1)}x mitmproxy's requests (median of paired rounds; target >= 5x)`,
  );
}

function load(port: number, ca: string, tokens: string): Load {
  const out = spawnSync(
    process.execPath,
    [LOAD, 'load', String(port), HOST, '16', String(SECONDS), ca, tokens],
    { encoding: 'utf8' },
  );
  if (out.status !== 0) throw new Error(`tunnel-load on ${port}: ${out.stderr}`);
  return JSON.parse(out.stdout) as Load;
}

function handshake(port: number, ca: string, tokens: string): number[] {
  const out = spawnSync(
    process.execPath,
    [LOAD, 'handshake', String(port), ca, tokens, ...HANDSHAKE_HOSTS],
    { encoding: 'utf8' },
  );
  if (out.status !== 0) throw new Error(`tunnel-load handshake on ${port}: ${out.stderr}`);
  return (JSON.parse(out.stdout) as { ms: number[] }).ms;
}

function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}): void {
  children.push(
    spawn(command, args, {
      stdio: ['ignore', 'ignore', 'ignore'],
      env: { ...process.env, ...env },
    }),
  );
}

async function waitForFile(path: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if (readFileSync(path, 'utf8').includes('BEGIN CERTIFICATE')) return;
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) throw new Error(`${path} did not appear`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function row(cells: string[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(26) : cell.padStart(12))).join('');
}

const work = mkdtempSync(join(tmpdir(), 'mintfs-bench-intercept-'));
try {
  await main(work);
} finally {
  for (const child of children) child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
