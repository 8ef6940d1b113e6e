/**
 * npm run bench:protocols: issue 27's two benches, each against its
 * baselines in the same run (every round runs the targets in a rotating order
 * and then backwards, each figure the mean of its two runs; medians
 * of BENCH_ROUNDS rounds, 5 by default), so that load from other processes
 * on the machine moves both sides of a ratio alike.
 *
 * HTTP/2 (h2load, Debian nghttp2-client), through an intercepted CONNECT
 * tunnel to an nginx upstream speaking HTTP/2, the same token on every
 * request (h2load sends fixed headers):
 *   (a) mintfs gateway, HTTP/2 in the tunnel, one connection, 64 streams,
 *       HTTP/2 to the upstream (`http2: true`)
 *   (b) the same gateway, HTTP/1.1 in the tunnel, 16 connections (h2load
 *       --h1), same upstream: the issue's baseline for (a)
 *   (c) the same, HTTP/1.1 to the upstream too (the default, `http2` unset)
 *   (d) mitmproxy (Debian) intercepting with its CA, HTTP/2 both sides, an
 *       addon setting the same header, one connection, 64 streams
 * h2load speaks to no proxy, so each target gets a socat bridge
 * (TCP-LISTEN -> PROXY: CONNECT api.bench.test:443) that h2load reaches
 * with --connect-to; every target pays the same bridge.
 * Goals: (a) >= 1x (b), (a) >= 5x (d).
 *
 * WebSocket (scripts/bench/ws-load.mjs, the `ws` client), to a `ws` echo
 * server:
 *   (w) through the mintfs gateway's reverse route (the handshake judged,
 *       the credential injected, every upstream message redacted)
 *   (x) through a bare `ws` relay (scripts/bench/ws-relay.mjs)
 * messages/s with 16 connections each keeping 16 messages of 128 bytes in
 * flight (a message counts when its echo is back), and round-trip latency
 * with one connection sending one message at a time. Goal: (w) >= 0.8x (x).
 *
 * BENCH_ONLY=h2 or ws runs one of the two.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCa } from '../src/intercept/ca.js';
import { initKeyring } from '../src/keys/keyring.js';
import { newTokenId } from '../src/token/identifier.js';
import { mintToken } from '../src/token/mint.js';
import { makeTestPki } from '../test/helpers/tls.js';
import { gatewayProfileFlags, median, waitForPort } from './bench-common.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'bundle', 'mintfs.js');
const BENCH = join(ROOT, 'scripts', 'bench');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ONLY = process.env.BENCH_ONLY;
const HOST = 'api.bench.test';
const HOST_H1 = 'h1.bench.test';
// The reverse route's upstream needs a name the interception CA may issue for.
const HOST_ECHO = 'echo.bench.test';
const PATH = '/repos/acme/widgets';
const PORTS = {
  nginx: 18801,
  gateway: 18802,
  mitm: 18803,
  bridgeH2: 18804,
  bridgeH1: 18805,
  bridgeH1Upstream: 18806,
  bridgeMitm: 18807,
  echo: 18808,
  relay: 18809,
};
const WS = { connections: 16, window: 16, size: 128 };

const children: ChildProcess[] = [];

interface H2load {
  rps: number;
  meanMs: number;
  /** CPU time (user + system) the proxy process spent per request, in microseconds. */
  cpuUs: number;
}

/** Processes whose CPU time each h2load run measures: the proxy under test. */
const proxyPids: { gateway?: number | undefined; mitm?: number | undefined } = {};
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const WARM_UP_SECONDS = 1;

/** User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

interface WsRound {
  gateway: number;
  bare: number;
  gatewayP50: number;
  bareP50: number;
  gatewayP99: number;
  bareP99: number;
}

async function main(work: string): Promise<void> {
  const nginx = execFileSync('bash', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim();
  const pki = makeTestPki(work);
  writeFileSync(join(work, 'leaf.pem'), pki.cert);
  writeFileSync(join(work, 'leaf.key'), pki.key, { mode: 0o600 });
  writeFileSync(
    join(work, 'nginx.conf'),
    `worker_processes 1;\npid ${work}/nginx.pid;\nerror_log ${work}/nginx.error.log;\nevents { worker_connections 1024; }\nhttp { access_log off; keepalive_requests 1000000; server { listen 127.0.0.1:${PORTS.nginx} ssl http2; ssl_certificate ${work}/leaf.pem; ssl_certificate_key ${work}/leaf.key; location / { return 200 '{"ok":true}'; } } }\n`,
  );
  start(nginx, ['-c', join(work, 'nginx.conf'), '-g', 'daemon off;']);
  start(process.execPath, [join(BENCH, 'ws-echo.mjs'), String(PORTS.echo)]);
  start(process.execPath, [
    join(BENCH, 'ws-relay.mjs'),
    String(PORTS.relay),
    `ws://127.0.0.1:${PORTS.echo}`,
  ]);

  const keys = join(work, 'keys');
  const keyring = initKeyring(keys, new Date());
  await initCa(join(work, 'ca'), { hosts: ['bench.test'], now: new Date(), validDays: 1 });
  writeFileSync(join(work, 'credential'), 'bench-credential\n', { mode: 0o600 });
  const upstream = (name: string, host: string, http2: boolean) =>
    `  ${name}:\n    url: https://127.0.0.1:${PORTS.nginx}\n    hosts: [${host}]\n    ca: ./ca.pem\n    credential: { file: ./credential }\n    inject: "Authorization: token {credential}"\n${http2 ? '    http2: true\n' : ''}`;
  writeFileSync(
    join(work, 'gateway.yaml'),
    `listen: [127.0.0.1:${PORTS.gateway}]\n# 64 streams from one agent: over the default of 32 in flight\nlimits: { agentConcurrency: 128 }\nintercept: { ca: ./ca }\nupstreams:\n${upstream('bench', HOST, true)}${upstream('bench1', HOST_H1, false)}  echo:\n    url: http://127.0.0.1:${PORTS.echo}\n    hosts: [${HOST_ECHO}]\n    credential: { file: ./credential }\n    inject: "Authorization: token {credential}"\n`,
  );
  proxyPids.gateway = start(process.execPath, [
    ...gatewayProfileFlags(),
    CLI,
    'gateway',
    join(work, 'gateway.yaml'),
    '--keys',
    keys,
  ]);
  mkdirSync(join(work, 'mitm'));
  proxyPids.mitm = start(
    'mitmdump',
    [
      '-q',
      '--listen-host',
      '127.0.0.1',
      '-p',
      String(PORTS.mitm),
      '--set',
      `confdir=${join(work, 'mitm')}`,
      '--set',
      'connection_strategy=lazy',
      '--set',
      'ssl_insecure=true',
      '-s',
      join(BENCH, 'mitm-intercept.py'),
    ],
    { MITM_UPSTREAM_PORT: String(PORTS.nginx) },
  );
  // h2load reaches each proxy's tunnel through its own bridge.
  bridge(PORTS.bridgeH2, PORTS.gateway, HOST);
  bridge(PORTS.bridgeH1, PORTS.gateway, HOST);
  bridge(PORTS.bridgeH1Upstream, PORTS.gateway, HOST_H1);
  bridge(PORTS.bridgeMitm, PORTS.mitm, HOST);
  for (const port of Object.values(PORTS)) await waitForPort(port);

  const mint = (service: string, hosts: string[]) =>
    mintToken(
      { agent: 'bench', service, hosts, methods: ['GET'], paths: ['/**'], ttlMs: 3_600_000 },
      { key: keyring.current, now: new Date(), tokenId: newTokenId() },
    ).token;
  const date = new Date().toISOString().slice(0, 10);
  console.log(
    `protocols benchmark (${date}): ${ROUNDS} rounds of ${SECONDS}s, targets run forwards then backwards in each round; medians of rounds\n`,
  );
  if (ONLY !== 'ws') http2Bench(mint('bench', [HOST]), mint('bench1', [HOST_H1]));
  if (ONLY !== 'h2') websocketBench(mint('echo', [HOST_ECHO]));
}

function http2Bench(token: string, tokenH1: string): void {
  const targets = {
    '(a) gateway, h2 in the tunnel, 1 conn x 64 streams, h2 upstream': () =>
      h2load(PORTS.bridgeH2, HOST, token, ['-c', '1', '-m', '64'], proxyPids.gateway),
    '(b) gateway, HTTP/1.1 in the tunnel, 16 conns, h2 upstream': () =>
      h2load(PORTS.bridgeH1, HOST, token, ['--h1', '-c', '16', '-m', '1'], proxyPids.gateway),
    '(c) gateway, HTTP/1.1 in the tunnel, 16 conns, HTTP/1.1 upstream': () =>
      h2load(
        PORTS.bridgeH1Upstream,
        HOST_H1,
        tokenH1,
        ['--h1', '-c', '16', '-m', '1'],
        proxyPids.gateway,
      ),
    '(d) mitmproxy + addon, h2 both sides, 1 conn x 64 streams': () =>
      h2load(PORTS.bridgeMitm, HOST, token, ['-c', '1', '-m', '64'], proxyPids.mitm),
  };
  const names = Object.keys(targets) as Array<keyof typeof targets>;
  const rounds: Array<Record<string, H2load>> = [];
  for (let round = 0; round < ROUNDS; round++) {
    // A rotating order, then the same backwards (ABCD DCBA): each target's
    // figure is the mean of its two runs, so load that rises or falls
    // through the round weighs on every target alike.
    const forward = names.map((_, i) => names[(round + i) % names.length] as keyof typeof targets);
    const runs: Record<string, H2load[]> = {};
    for (const name of [...forward, ...[...forward].reverse()])
      (runs[name] ??= []).push(targets[name]());
    const results: Record<string, H2load> = {};
    for (const [name, pair] of Object.entries(runs))
      results[name] = {
        rps: pair.reduce((sum, run) => sum + run.rps, 0) / pair.length,
        meanMs: pair.reduce((sum, run) => sum + run.meanMs, 0) / pair.length,
        cpuUs: pair.reduce((sum, run) => sum + run.cpuUs, 0) / pair.length,
      };
    rounds.push(results);
  }
  const [a, b, c, d] = names as [string, string, string, string];
  const ratio = (x: string, y: string) =>
    median(rounds.map((r) => (r[x] as H2load).rps / (r[y] as H2load).rps));
  console.log(
    'HTTP/2 through an intercepted tunnel (h2load through a socat CONNECT bridge; nginx upstream; one token)',
  );
  console.log(row(['target', 'req/s', 'mean ms', 'vs (b)', 'proxy CPU us/req']));
  for (const name of names)
    console.log(
      row([
        name,
        median(rounds.map((r) => (r[name] as H2load).rps)).toFixed(0),
        median(rounds.map((r) => (r[name] as H2load).meanMs)).toFixed(2),
        `${ratio(name, b).toFixed(2)}x`,
        median(rounds.map((r) => (r[name] as H2load).cpuUs)).toFixed(0),
      ]),
    );
  const vsH1 = ratio(a, b);
  const vsH1Upstream = ratio(a, c);
  const vsMitm = ratio(a, d);
  console.log(
    `\nper-round ratios (a)/(b): ${rounds.map((r) => ((r[a] as H2load).rps / (r[b] as H2load).rps).toFixed(2)).join(' ')}`,
  );
  console.log(
    `per-round ratios (a)/(d): ${rounds.map((r) => ((r[a] as H2load).rps / (r[d] as H2load).rps).toFixed(2)).join(' ')}`,
  );
  // CPU per request is what load from other processes moves least: a
  // target's wall-clock rate also depends on how many processes it runs
  // (16 connections: 16 socat bridges) competing with the neighbours.
  const cpuRatio = (x: string, y: string) =>
    median(rounds.map((r) => (r[y] as H2load).cpuUs / (r[x] as H2load).cpuUs));
  console.log(
    `CPU per request: the gateway spends ${cpuRatio(a, b).toFixed(2)}x less on an HTTP/2 stream than on an HTTP/1.1 request ((b)/(a)); mitmproxy ${cpuRatio(a, d).toFixed(2)}x more than the gateway ((d)/(a))`,
  );
  console.log(
    `verdict: HTTP/2 serves ${vsH1.toFixed(2)}x the gateway's HTTP/1.1 figure (target >= 1x: ${vsH1 >= 1 ? 'met' : 'NOT met'}; ${vsH1Upstream.toFixed(2)}x with HTTP/1.1 upstream too), ${vsMitm.toFixed(2)}x mitmproxy (target >= 5x: ${vsMitm >= 5 ? 'met' : 'NOT met'})\n`,
  );
}

function h2load(
  port: number,
  host: string,
  token: string,
  shape: string[],
  proxyPid: number | undefined,
): H2load {
  if (proxyPid === undefined) throw new Error('the proxy under test did not start');
  const cpuBefore = cpuSeconds(proxyPid);
  const out = spawnSync(
    'h2load',
    [
      ...shape,
      '-D',
      String(SECONDS),
      '--warm-up-time',
      String(WARM_UP_SECONDS),
      `--connect-to=127.0.0.1:${port}`,
      '-H',
      `authorization: Bearer ${token}`,
      `https://${host}${PATH}`,
    ],
    { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 },
  );
  const text = out.stdout;
  const rps = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(text)?.[1];
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(text)?.[1];
  if (out.status !== 0 || rps === undefined || status === null || mean === undefined)
    throw new Error(`h2load on ${port} failed:\n${text}\n${out.stderr}`);
  const [, ok, s3, s4, s5] = status.map(Number) as [number, number, number, number, number];
  if (ok === 0 || s3 + s4 + s5 > 0)
    throw new Error(`h2load on ${port}: ${ok} 2xx, ${s3} 3xx, ${s4} 4xx, ${s5} 5xx`);
  // The proxy's CPU over the whole run, warm-up included (at the same rate, near enough).
  const cpu = cpuSeconds(proxyPid) - cpuBefore;
  const requests = Number(rps) * (SECONDS + WARM_UP_SECONDS);
  return { rps: Number(rps), meanMs: toMs(mean), cpuUs: (cpu * 1e6) / requests };
}

function toMs(value: string): number {
  const number = Number.parseFloat(value);
  if (value.endsWith('us')) return number / 1000;
  if (value.endsWith('ms')) return number;
  return number * 1000;
}

function websocketBench(token: string): void {
  const rounds: WsRound[] = [];
  const gatewayUrl = `ws://127.0.0.1:${PORTS.gateway}/echo/ws`;
  const bareUrl = `ws://127.0.0.1:${PORTS.relay}/ws`;
  for (let round = 0; round < ROUNDS; round++) {
    // Gateway, bare, bare, gateway: each figure the mean of two runs, so
    // load that rises or falls through the round weighs on both alike.
    const abba = (mode: 'throughput' | 'latency', args: number[]) => {
      const first = wsLoad(mode, gatewayUrl, args, true, token);
      const bare = [wsLoad(mode, bareUrl, args, false, token)];
      bare.push(wsLoad(mode, bareUrl, args, false, token));
      const last = wsLoad(mode, gatewayUrl, args, true, token);
      return { gateway: meanOf([first, last]), bare: meanOf(bare) };
    };
    const { gateway: gatewayRun, bare } = abba('throughput', [
      WS.connections,
      WS.window,
      SECONDS,
      WS.size,
    ]);
    const { gateway: gatewayLat, bare: bareLatency } = abba('latency', [SECONDS, WS.size]);
    for (const load of [gatewayRun, bare])
      if (load.errors !== 0) throw new Error(`ws-load: ${load.errors} wrong echoes`);
    rounds.push({
      gateway: gatewayRun.perSecond,
      bare: bare.perSecond,
      gatewayP50: gatewayLat.p50Ms,
      bareP50: bareLatency.p50Ms,
      gatewayP99: gatewayLat.p99Ms,
      bareP99: bareLatency.p99Ms,
    });
  }
  const med = (pick: (r: WsRound) => number) => median(rounds.map(pick));
  console.log(
    `WebSocket echo (ws client, ${WS.connections} connections x ${WS.window} messages of ${WS.size} bytes in flight; latency: 1 connection, 1 message at a time)`,
  );
  console.log(row(['target', 'msgs/s', 'p50 ms', 'p99 ms']));
  console.log(
    row([
      '(w) mintfs gateway, reverse route',
      med((r) => r.gateway).toFixed(0),
      med((r) => r.gatewayP50).toFixed(3),
      med((r) => r.gatewayP99).toFixed(3),
    ]),
  );
  console.log(
    row([
      '(x) bare ws relay',
      med((r) => r.bare).toFixed(0),
      med((r) => r.bareP50).toFixed(3),
      med((r) => r.bareP99).toFixed(3),
    ]),
  );
  const ratio = med((r) => r.gateway / r.bare);
  const latency = med((r) => r.gatewayP50 / r.bareP50);
  console.log(
    `\nper-round ratios (w)/(x): ${rounds.map((r) => (r.gateway / r.bare).toFixed(2)).join(' ')}`,
  );
  console.log(
    `verdict: the gateway relays ${ratio.toFixed(2)}x the bare relay's messages/s (target >= 0.8x: ${ratio >= 0.8 ? 'met' : 'NOT met'}); p50 round trip ${latency.toFixed(2)}x`,
  );
}

function meanOf(runs: WsLoad[]): WsLoad {
  const mean = (pick: (run: WsLoad) => number) =>
    runs.reduce((sum, run) => sum + pick(run), 0) / runs.length;
  return {
    perSecond: mean((r) => r.perSecond),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    p50Ms: mean((r) => r.p50Ms),
    p99Ms: mean((r) => r.p99Ms),
  };
}

interface WsLoad {
  perSecond: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

function wsLoad(
  mode: 'throughput' | 'latency',
  url: string,
  args: number[],
  withToken: boolean,
  token: string,
): WsLoad {
  const out = spawnSync(
    process.execPath,
    [join(BENCH, 'ws-load.mjs'), mode, url, ...args.map(String), ...(withToken ? [token] : [])],
    { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 },
  );
  if (out.status !== 0) throw new Error(`ws-load ${mode} ${url}: ${out.stderr}`);
  return { perSecond: 0, errors: 0, p50Ms: 0, p99Ms: 0, ...(JSON.parse(out.stdout) as object) };
}

/**
 * A socat bridge: each connection to `port` becomes a CONNECT tunnel to
 * `host`:443 through `proxy`. TCP_NODELAY both ways: with Nagle, socat holds
 * an HTTP/2 stream's second small frame until the ACK of its first, which a
 * delayed ACK sends 40 ms later (every target measured ~45 ms a request).
 */
function bridge(port: number, proxy: number, host: string): void {
  start('socat', [
    `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,nodelay`,
    `PROXY:127.0.0.1:${host}:443,proxyport=${proxy},nodelay`,
  ]);
}

function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}): number | undefined {
  const child = spawn(command, args, {
    stdio: ['ignore', 'ignore', process.env.BENCH_VERBOSE ? 'inherit' : 'ignore'],
    env: { ...process.env, ...env },
  });
  children.push(child);
  return child.pid;
}

function row(cells: string[]): string {
  return cells
    .map((cell, i) => (i === 0 ? cell.padEnd(68) : cell.padStart(i === 4 ? 18 : 10)))
    .join('');
}

const work = mkdtempSync(join(tmpdir(), 'mintfs-bench-protocols-'));
console.error(work);
try {
  await main(work);
} finally {
  for (const child of children) child.kill('SIGTERM');
  if (!process.env.BENCH_KEEP) rmSync(work, { recursive: true, force: true });
}
