/**
 * npm run bench:gateway: requests/s and latency through the gateway, against
 * the same nginx upstream serving a static response, with the same client
 * (wrk), at 1 and 16 connections, for:
 *   (a) client -> upstream directly
 *   (b) client -> mintfs gateway -> upstream (token verified, credential injected, audit logged)
 *   (c) client -> a bare Node.js pass-through proxy that only sets the header
 *   (d) client -> nginx reverse proxy setting a static header
 *   (e) client -> mitmproxy in reverse mode with a header-injection addon
 *   (f) client -> mintfs gateway with a fresh token on every request, as agents
 *       that `cat` the token file per request send them: more distinct tokens
 *       than requests, each read from a real mount beforehand
 *   (g) the same with `workers: auto` (one gateway process per core)
 * Targets run in a rotating order within each round. The gateway's resident
 * memory is sampled after each of its runs.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initKeyring } from '../src/keys/keyring.js';
import { newTokenId } from '../src/token/identifier.js';
import { mintToken } from '../src/token/mint.js';
import { gatewayProfileFlags, waitForPort } from './bench-common.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'bundle', 'mintfs.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const DURATION = process.env.BENCH_SECONDS ?? '4';
/** BENCH_ONLY=i,j runs only those targets (and prints only the ratios they make). */
const ONLY = process.env.BENCH_ONLY?.split(',').map((letter) => `(${letter.trim()})`);
const PORTS = {
  upstream: 18601,
  gateway: 18602,
  bare: 18603,
  nginx: 18604,
  mitm: 18605,
  workers: 18606,
  redis: 18607,
  shared: 18608,
  local: 18609,
};

interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Fresh-token runs: the index of the first token not sent. */
  freshNext: number | undefined;
  /** CPU time (user + system) the server's processes spent per request, in µs; NaN for nginx and mitmproxy. */
  cpuUs: number;
}

const children: ChildProcess[] = [];
const cleanups: Array<() => void> = [];
/** The gateway that BENCH_PROFILE_DIR profiles (b and f). */
let profiledGateway: ChildProcess | undefined;

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'mintfs-bench-gw-'));
  // BENCH_KEEP=1 leaves the work directory (logs, configs, tokens) for a look afterwards.
  if (!process.env.BENCH_KEEP) cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const nginx = execFileSync('bash', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim();

  writeFileSync(
    join(work, 'upstream.conf'),
    nginxConf(
      work,
      'upstream',
      `listen 127.0.0.1:${PORTS.upstream}; location / { return 200 '{"ok":true}'; }`,
    ),
  );
  writeFileSync(
    join(work, 'proxy.conf'),
    nginxConf(
      work,
      'proxy',
      `listen 127.0.0.1:${PORTS.nginx}; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Authorization "token bench-credential"; }`,
      `upstream up { server 127.0.0.1:${PORTS.upstream}; keepalive 64; }`,
    ),
  );
  start(nginx, ['-c', join(work, 'upstream.conf'), '-g', 'daemon off;']);
  start(nginx, ['-c', join(work, 'proxy.conf'), '-g', 'daemon off;']);
  const bareChild = start(
    process.execPath,
    [join(ROOT, 'scripts', 'bench', 'bare-proxy.mjs'), String(PORTS.bare), String(PORTS.upstream)],
    'ignore',
    'server',
  );
  start('mitmdump', [
    '-q',
    '--mode',
    `reverse:http://127.0.0.1:${PORTS.upstream}`,
    '--listen-host',
    '127.0.0.1',
    '-p',
    String(PORTS.mitm),
    '-s',
    join(ROOT, 'scripts', 'bench', 'mitm-inject.py'),
  ]);

  const keys = join(work, 'keys');
  const keyring = initKeyring(keys, new Date());
  writeFileSync(join(work, 'credential'), 'bench-credential\n', { mode: 0o600 });
  writeFileSync(
    join(work, 'gateway.yaml'),
    `listen: [127.0.0.1:${PORTS.gateway}]\nupstreams:\n  bench:\n    url: http://127.0.0.1:${PORTS.upstream}\n    credential: { file: ./credential }\n    inject: "Authorization: token {credential}"\n`,
  );
  writeFileSync(
    join(work, 'gateway-workers.yaml'),
    `listen: [127.0.0.1:${PORTS.workers}]\nworkers: auto\nupstreams:\n  bench:\n    url: http://127.0.0.1:${PORTS.upstream}\n    credential: { file: ./credential }\n    inject: "Authorization: token {credential}"\n`,
  );
  const workersChild = start(
    process.execPath,
    [CLI, 'gateway', join(work, 'gateway-workers.yaml'), '--keys', keys],
    openSync(join(work, 'gateway-workers.log'), 'w'),
    'server',
  );
  // Shared state: the same gateway with Redis (use budgets counted there,
  // revocations subscribed and reloaded) and without (budgets in memory).
  // Redis as a deployment would run it: append-only, fsync every second.
  mkdirSync(join(work, 'redis'));
  start('redis-server', [
    '--port',
    String(PORTS.redis),
    '--bind',
    '127.0.0.1',
    '--dir',
    join(work, 'redis'),
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--save',
    '',
  ]);
  for (const [name, port, redis] of [
    ['shared', PORTS.shared, `redis: redis://127.0.0.1:${PORTS.redis}\n`],
    ['local', PORTS.local, ''],
  ] as const) {
    writeFileSync(
      join(work, `gateway-${name}.yaml`),
      `listen: [127.0.0.1:${port}]\n${redis}upstreams:\n  bench:\n    url: http://127.0.0.1:${PORTS.upstream}\n    credential: { file: ./credential }\n    inject: "Authorization: token {credential}"\n`,
    );
    start(
      process.execPath,
      [CLI, 'gateway', join(work, `gateway-${name}.yaml`), '--keys', keys],
      openSync(join(work, `gateway-${name}.log`), 'w'),
      'server',
    );
  }
  // Audit lines go to a file, as in production; they are part of the cost.
  const gatewayChild = start(
    process.execPath,
    [...gatewayProfileFlags(), CLI, 'gateway', join(work, 'gateway.yaml'), '--keys', keys],
    openSync(join(work, 'gateway.log'), 'w'),
    'server',
  );
  profiledGateway = gatewayChild;
  const token = mintToken(
    {
      agent: 'bench',
      service: 'bench',
      hosts: ['127.0.0.1'],
      methods: ['GET'],
      paths: ['/**'],
      ttlMs: 3_600_000,
    },
    { key: keyring.current, now: new Date(), tokenId: newTokenId() },
  ).token;

  for (const port of Object.values(PORTS)) await waitForPort(port);

  // Fresh tokens, read from a real mount of the same keyring (one open and read each).
  const freshFile = join(work, 'fresh-tokens.txt');
  const needed = Number(process.env.BENCH_FRESH_TOKENS ?? 200_000);
  const mountpoint = join(work, 'mnt');
  mkdirSync(mountpoint);
  writeFileSync(
    join(work, 'profile.yaml'),
    'agent: bench\nttl: 1h\nfiles:\n  token:\n    service: bench\n    hosts: [127.0.0.1]\n    methods: [GET]\n    paths: ["/**"]\n  single-use:\n    service: bench\n    hosts: [127.0.0.1]\n    methods: [GET]\n    paths: ["/**"]\n    uses: 1\n',
  );
  const mount = spawn(
    process.execPath,
    [CLI, 'mount', join(work, 'profile.yaml'), mountpoint, '--keys', keys],
    {
      stdio: 'ignore',
    },
  );
  children.push(mount);
  cleanups.unshift(() => spawnSync('fusermount3', ['-u', '-z', '--', mountpoint]));
  const deadline = Date.now() + 30_000;
  while (!existsSync(join(mountpoint, 'token'))) {
    if (Date.now() > deadline) throw new Error('the bench mount did not come up');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const fresh: string[] = [];
  for (let i = 0; i < needed; i++) fresh.push(readFileSync(join(mountpoint, 'token'), 'utf8'));
  writeFileSync(freshFile, `${fresh.join('\n')}\n`);
  writeFileSync(join(work, 'fresh.lua'), freshLua(freshFile));
  // Single-use tokens (uses: 1), each spent once: one budget count per request.
  // Read only when a target that spends them runs (reading 200,000 takes a minute here).
  const budgetFile = join(work, 'budget-tokens.txt');
  const budgeted: string[] = [];
  const spendsBudgets = !ONLY || ONLY.some((id) => id === '(i)' || id === '(j)');
  for (let i = 0; spendsBudgets && i < needed; i++)
    budgeted.push(readFileSync(join(mountpoint, 'single-use'), 'utf8'));
  writeFileSync(budgetFile, `${budgeted.join('\n')}\n`);
  writeFileSync(join(work, 'budget.lua'), freshLua(budgetFile));

  const allTargets = [
    {
      name: '(a) direct to upstream',
      url: `http://127.0.0.1:${PORTS.upstream}/repos/acme/widgets`,
      auth: false,
    },
    {
      name: '(b) mintfs gateway',
      url: `http://127.0.0.1:${PORTS.gateway}/bench/repos/acme/widgets`,
      auth: true,
    },
    {
      name: '(c) bare Node.js proxy',
      url: `http://127.0.0.1:${PORTS.bare}/repos/acme/widgets`,
      auth: false,
    },
    {
      name: '(d) nginx reverse proxy',
      url: `http://127.0.0.1:${PORTS.nginx}/repos/acme/widgets`,
      auth: false,
    },
    {
      name: '(e) mitmproxy reverse',
      url: `http://127.0.0.1:${PORTS.mitm}/repos/acme/widgets`,
      auth: false,
    },
    {
      name: '(f) gateway, fresh tokens',
      url: `http://127.0.0.1:${PORTS.gateway}/bench/repos/acme/widgets`,
      auth: false,
      script: join(work, 'fresh.lua'),
    },
    {
      name: '(g) workers: auto, fresh',
      url: `http://127.0.0.1:${PORTS.workers}/bench/repos/acme/widgets`,
      auth: false,
      script: join(work, 'fresh.lua'),
    },
    {
      // The baseline for (f) and (g): the same client work (a distinct
      // Authorization header per request, chosen in Lua) against bare Node.
      name: '(h) bare Node, fresh headers',
      url: `http://127.0.0.1:${PORTS.bare}/repos/acme/widgets`,
      auth: false,
      script: join(work, 'fresh.lua'),
    },
    {
      name: '(i) single-use, Redis',
      url: `http://127.0.0.1:${PORTS.shared}/bench/repos/acme/widgets`,
      auth: false,
      script: join(work, 'budget.lua'),
    },
    {
      name: '(j) single-use, in memory',
      url: `http://127.0.0.1:${PORTS.local}/bench/repos/acme/widgets`,
      auth: false,
      script: join(work, 'budget.lua'),
    },
  ];
  const targets = allTargets.filter((t) => !ONLY || ONLY.some((id) => t.name.startsWith(id)));
  if (targets.length === 0) throw new Error(`BENCH_ONLY matched no target: ${ONLY?.join(', ')}`);
  // Each gateway sees every token once: a run starts where that process's
  // last run stopped, so none reaches the verification cache (which keeps a
  // token from its second use).
  const tokensUsed = new Map<string, number>();
  const check = spawnSync(
    'curl',
    [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      `Authorization: Bearer ${token}`,
      allTargets[1]!.url,
    ],
    { encoding: 'utf8' },
  );
  if (check.stdout !== '200') throw new Error(`the gateway answered ${check.stdout}, not 200`);

  console.log(
    `gateway benchmark: wrk, ${DURATION}s per run, ${ROUNDS} rounds, same nginx upstream, ${needed} fresh tokens\n`,
  );
  const gatewayPid = gatewayChild.pid ?? 0;
  // The processes whose CPU time a run is charged (a workers gateway: the primary and its workers).
  const serverOf = new Map<string, number | undefined>([
    [String(PORTS.gateway), gatewayChild.pid],
    [String(PORTS.bare), bareChild.pid],
    [String(PORTS.workers), workersChild.pid],
  ]);
  const rssSamples: number[] = [];
  const results = new Map<string, Map<number, WrkResult[]>>(
    targets.map((t) => [
      t.name,
      new Map([
        [1, []],
        [16, []],
      ]),
    ]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const connections of [1, 16]) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const target of order) {
        const headers = target.auth ? ['-H', `Authorization: Bearer ${token}`] : [];
        const port = new URL(target.url).port;
        const offset = tokensUsed.get(port) ?? 0;
        const args =
          'script' in target ? ['--', String(offset), String(wrkThreads(connections))] : [];
        if ('script' in target) headers.push('-s', target.script);
        const server = serverOf.get(port);
        const cpuBefore = server === undefined ? NaN : cpuSeconds(server);
        const result = wrk(target.url, connections, headers, args);
        if (server !== undefined)
          result.cpuUs = ((cpuSeconds(server) - cpuBefore) / result.requests) * 1e6;
        if ('script' in target) {
          // +1: a thread may have taken a token whose request never completed.
          const next = (result.freshNext ?? Infinity) + 1;
          tokensUsed.set(port, next);
          if (next > needed)
            throw new Error(
              `${target.name} needed more than ${needed} fresh tokens: set BENCH_FRESH_TOKENS higher`,
            );
        }
        results.get(target.name)!.get(connections)!.push(result);
        if (target.url.includes(String(PORTS.gateway))) rssSamples.push(rssMiB(gatewayPid));
      }
    }
  }
  const median = (runs: WrkResult[], pick: (r: WrkResult) => number) => {
    const values = runs.map(pick).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)]!;
  };
  const summary = new Map(
    [...results].map(([name, byConn]) => [
      name,
      new Map(
        [...byConn].map(([c, runs]) => [
          c,
          {
            rps: median(runs, (r) => r.rps),
            p50Ms: median(runs, (r) => r.p50Ms),
            p99Ms: median(runs, (r) => r.p99Ms),
            cpuUs: median(runs, (r) => r.cpuUs),
          },
        ]),
      ),
    ]),
  );
  /** The median figures of target (letter) at c connections, if it ran. */
  const of = (letter: string, c: number) =>
    [...summary].find(([name]) => name.startsWith(`(${letter})`))?.[1].get(c);
  const ratio = (a: { rps: number } | undefined, b: { rps: number } | undefined) =>
    a && b ? `${(a.rps / b.rps).toFixed(2)}x` : 'n/a';
  const direct1 = of('a', 1);
  const bare16 = of('c', 16);
  console.log(
    row([
      'target',
      'c=1 req/s',
      'c=1 p50 ms',
      'c=1 p99 ms',
      '+p50 vs direct',
      'c=16 req/s',
      'c=16 p99 ms',
      'c=16 vs bare Node',
      'c=16 CPU µs/req',
    ]),
  );
  for (const [name, byConn] of summary) {
    const one = byConn.get(1)!;
    const sixteen = byConn.get(16)!;
    console.log(
      row([
        name,
        one.rps.toFixed(0),
        one.p50Ms.toFixed(3),
        one.p99Ms.toFixed(3),
        direct1 ? `${(one.p50Ms - direct1.p50Ms).toFixed(3)} ms` : 'n/a',
        sixteen.rps.toFixed(0),
        sixteen.p99Ms.toFixed(3),
        ratio(sixteen, bare16),
        Number.isNaN(sixteen.cpuUs) ? '' : sixteen.cpuUs.toFixed(0),
      ]),
    );
  }
  if (of('f', 16) && of('h', 16))
    console.log(
      `fresh tokens: ${ratio(of('f', 16), of('h', 16))} the bare Node proxy at 16 connections, both sent a distinct header per request (target >= 0.9x; ${ratio(of('f', 16), bare16)} against (c)); with workers: auto ${ratio(of('g', 16), of('h', 16))}; one reused token: ${ratio(of('b', 16), bare16)}; gateway RSS after each run: ${rssSamples.map((m) => m.toFixed(0)).join(', ')} MiB`,
    );
  const fresh16 = of('f', 16);
  const workers = of('g', 16);
  const bareFresh = of('h', 16);
  if (fresh16 && bareFresh)
    console.log(
      `CPU per request at 16 connections: gateway ${fresh16.cpuUs.toFixed(0)} µs, bare Node ${bareFresh.cpuUs.toFixed(0)} µs (${(bareFresh.cpuUs / fresh16.cpuUs).toFixed(2)}x the bare proxy's requests per CPU-second)`,
    );
  if (workers && bareFresh)
    // Here wrk, nginx and every worker share the cores, so (g) cannot show
    // what workers buy. With a core per worker and the load elsewhere, each
    // worker serves 1/cpuUs requests a second and the bare proxy 1/its cpuUs.
    console.log(
      process.env.BENCH_SERVER_CPUS
        ? `workers: auto on cores ${process.env.BENCH_SERVER_CPUS}, load on ${process.env.BENCH_LOAD_CPUS ?? 'any'}: ${ratio(workers, bareFresh)} the one-process bare proxy (target >= 1.3x), ${workers.cpuUs.toFixed(0)} CPU µs per request`
        : `workers: auto (${availableParallelism()} cores, shared with the load): ${workers.cpuUs.toFixed(0)} CPU µs per request; with a free core per worker, 2 workers would serve ${((2 * bareFresh.cpuUs) / workers.cpuUs).toFixed(2)}x and 4 workers ${((4 * bareFresh.cpuUs) / workers.cpuUs).toFixed(2)}x the one-process bare proxy (target >= 1.3x; BENCH_SERVER_CPUS and BENCH_LOAD_CPUS measure it)`,
    );
  if (of('i', 16) && of('j', 16))
    console.log(
      `shared state: single-use tokens with Redis (counted in Redis, revocations subscribed) ${ratio(of('i', 16), of('j', 16))} the same gateway counting in memory at 16 connections (target >= 0.7x)`,
    );
  const gateway1 = of('b', 1);
  const bare1 = of('c', 1);
  if (gateway1 && direct1 && bare1)
    console.log(
      `\ntargets: gateway throughput at 16 connections ${ratio(of('b', 16), bare16)} the bare Node proxy (target >= 0.8x); ` +
        `added p50 at 1 connection ${(gateway1.p50Ms - direct1.p50Ms).toFixed(3)} ms (target < 0.5 ms; bare Node adds ${(bare1.p50Ms - direct1.p50Ms).toFixed(3)} ms)`,
    );
}

/** wrk script: every request carries the next unused token; each thread has its own stride. */
function freshLua(file: string): string {
  return `
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  tokens = {}
  for line in io.lines("${file}") do tokens[#tokens + 1] = line end
  step = tonumber(args[2] or "2")
  start = tonumber(args[1] or "0") + id + 1
  i = start
end
function request()
  local token = tokens[i]
  i = i + step
  -- Past the end only if the bench miscounted; it refuses such a run.
  if i > #tokens then
    i = id + 1
    wrapped = 1
  end
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
end
function done(summary, latency, requests)
  -- The first token no thread has sent: where the next run must start.
  local next = 0
  for _, thread in ipairs(threads) do
    local at = thread:get("i")
    if at > next then next = at end
    if thread:get("wrapped") then next = math.huge end
  end
  io.write("fresh-next " .. (next - 1) .. "\\n")
end
`;
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds (user + system) a process and its live descendants have used. */
function cpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  let total = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let listed = '';
    try {
      listed = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of listed.split(' ').filter(Boolean)) total += cpuSeconds(Number(child));
  }
  return total;
}

function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

function nginxConf(work: string, name: string, server: string, http = ''): string {
  return `worker_processes 1;\npid ${work}/${name}.pid;\nerror_log ${work}/${name}.error.log;\nevents { worker_connections 1024; }\nhttp { access_log off; ${http} server { ${server} } }\n`;
}

/**
 * BENCH_SERVER_CPUS and BENCH_LOAD_CPUS (taskset lists such as 0-3): the
 * proxies under test on some cores, wrk and the upstream on others. On a
 * machine with more cores than the load needs, that is how (g) against (h)
 * shows what `workers: auto` buys (auto counts the cores it is given).
 */
function pinned(role: 'server' | 'load', command: string, args: string[]): [string, string[]] {
  const cpus = role === 'server' ? process.env.BENCH_SERVER_CPUS : process.env.BENCH_LOAD_CPUS;
  return cpus ? ['taskset', ['-c', cpus, command, ...args]] : [command, args];
}

function start(
  command: string,
  args: string[],
  stderr: number | 'ignore' = 'ignore',
  role: 'server' | 'load' = 'load',
): ChildProcess {
  // taskset execs the command: the child's pid is the command's (its CPU time is read by pid).
  const child = spawn(...pinned(role, command, args), { stdio: ['ignore', 'ignore', stderr] });
  children.push(child);
  return child;
}

function wrk(url: string, connections: number, headers: string[], args: string[]): WrkResult {
  const threads = wrkThreads(connections);
  const out = execFileSync(
    ...pinned('load', 'wrk', [
      `-t${threads}`,
      `-c${connections}`,
      `-d${DURATION}s`,
      '--latency',
      ...headers,
      url,
      ...args,
    ]),
    { encoding: 'utf8' },
  );
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50Ms = toMs(/\n\s+50%\s+([\d.]+\w+)/.exec(out)?.[1]);
  const p99Ms = toMs(/\n\s+99%\s+([\d.]+\w+)/.exec(out)?.[1]);
  // inf: a thread ran out of tokens and wrapped round, sending spent ones.
  const freshNext = /fresh-next (\d+|inf)/.exec(out)?.[1];
  if (freshNext === 'inf')
    throw new Error(`${url}: ran out of fresh tokens: set BENCH_FRESH_TOKENS higher`);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (errors) throw new Error(`${url}: ${errors[1]} failed responses`);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  return {
    rps,
    p50Ms,
    p99Ms,
    requests,
    freshNext: freshNext === undefined ? undefined : Number(freshNext),
    cpuUs: NaN,
  };
}

function wrkThreads(connections: number): number {
  return connections === 1 ? 1 : 2;
}

function toMs(text: string | undefined): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text ?? '');
  if (!match) return NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

function row(cells: string[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(30) : cell.padStart(18))).join('');
}

try {
  await main();
} finally {
  for (const child of children) child.kill('SIGTERM');
  for (const cleanup of cleanups) cleanup();
  await summariseProfiles(profiledGateway);
}

/** BENCH_PROFILE_DIR: once the profiled gateway has written its profile, a flame graph and summary beside it. */
async function summariseProfiles(profiled: ChildProcess | undefined): Promise<void> {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (!dir || !profiled) return;
  if (profiled.exitCode === null && profiled.signalCode === null)
    await new Promise((resolve) => profiled.once('exit', resolve));
  const summary = spawnSync(
    process.execPath,
    [join(ROOT, 'dist', 'scripts', 'cpu-profile-summary.js'), dir, '--top', '40'],
    { encoding: 'utf8' },
  );
  writeFileSync(join(dir, 'summary.txt'), summary.stdout + summary.stderr);
  console.log(`\nCPU profile: ${dir} (*.cpuprofile, *.folded, *.svg flame graph, summary.txt)`);
}
