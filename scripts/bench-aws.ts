/**
 * `npm run bench:aws`: a 256 MiB upload and download with aws-cli through
 * the gateway (HTTPS interception, re-signed with SigV4, aws-chunked with CRC
 * trailers streamed through) against the same aws-cli straight to the S3
 * stand-in (test/fixtures/aws-standin.py, which checks every signature and
 * checksum), in the same run. Target: through the gateway at least 0.8x the
 * direct throughput, the gateway's RSS flat (sampled every 100 ms: its
 * largest value during the transfers against the value before them).
 *
 * Each round runs the two arms back to back in both orders (direct, gateway,
 * gateway, direct) and its ratio is taken within the round: on a shared
 * machine the neighbours' load moves both arms alike, and the second of two
 * transfers is slower whichever arm it is. The table gives the median of
 * the rounds.
 *
 * BENCH_AWS_MIB=N changes the object size; BENCH_AWS_ROUNDS=N the rounds (5);
 * BENCH_AWS_VIA=route sends aws-cli through a gateway route (AWS_ENDPOINT_URL,
 * plain HTTP) instead, against the stand-in over plain HTTP too, so both arms
 * hash their parts the same way; BENCH_PROFILE_DIR=DIR writes a CPU profile of
 * the gateway there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initKeyring } from '../src/keys/keyring.js';
import { newTokenId } from '../src/token/identifier.js';
import { mintToken } from '../src/token/mint.js';
import { initCa } from '../src/intercept/ca.js';
import { renderContent } from '../src/fs/token-content.js';
import { gatewayProfileFlags, median, waitForPort } from './bench-common.js';
import { makeTestPki } from '../test/helpers/tls.js';
import {
  AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY,
  startAwsStandin,
} from '../test/helpers/aws-standin.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const MIB = Number(process.env.BENCH_AWS_MIB ?? 256);
/** intercept (HTTPS_PROXY, the default) or route (AWS_ENDPOINT_URL, plain HTTP to the gateway). */
const VIA = process.env.BENCH_AWS_VIA === 'route' ? 'route' : 'intercept';
// botocore names either, depending on its version's us-east-1 default.
const HOSTS = ['s3.us-east-1.amazonaws.com', 's3.amazonaws.com'];
const GATEWAY_PORT = 18731;
const ROUNDS = Number(process.env.BENCH_AWS_ROUNDS ?? 5);

const cleanups: Array<() => unknown> = [];
const children: ChildProcess[] = [];
let stopping = false;

function rssKiB(pid: number): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 0;
  }
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) =>
      code === 0
        ? resolve(Number(process.hrtime.bigint() - started) / 1e9)
        : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-500)}`)),
    );
  });
}

async function main(work: string): Promise<void> {
  const pki = makeTestPki(work);
  const standin = await startAwsStandin(
    pki,
    work,
    { add: (fn) => cleanups.push(fn) },
    { plain: VIA === 'route' },
  );
  const keys = join(work, 'keys');
  const keyring = initKeyring(keys, new Date());
  await initCa(join(work, 'ca'), { hosts: HOSTS, now: new Date(), validDays: 1 });
  writeFileSync(join(work, 'key-id'), `${AWS_ACCESS_KEY_ID}\n`, { mode: 0o600 });
  writeFileSync(join(work, 'secret'), `${AWS_SECRET_ACCESS_KEY}\n`, { mode: 0o600 });
  writeFileSync(
    join(work, 'gateway.yaml'),
    [
      `listen: [127.0.0.1:${GATEWAY_PORT}]`,
      'intercept: { ca: ./ca }',
      'limits: { maxBodyBytes: 1073741824 }',
      'upstreams:',
      '  s3:',
      `    url: ${standin.url}`,
      `    hosts: [${HOSTS.join(', ')}]`,
      '    sign: sigv4',
      '    partialResponses: allow',
      ...(VIA === 'route' ? [] : ['    ca: ./ca.pem']),
      '    credential: { aws: { accessKeyId: { file: ./key-id }, secretAccessKey: { file: ./secret } } }',
      '',
    ].join('\n'),
  );
  const gateway = spawn(
    process.execPath,
    [...gatewayProfileFlags(), CLI, 'gateway', join(work, 'gateway.yaml'), '--keys', keys],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let said = '';
  gateway.stderr.setEncoding('utf8').on('data', (c: string) => (said = (said + c).slice(-2000)));
  gateway.once('exit', (code) => {
    if (!stopping) console.error(`the gateway exited (${code}): ${said}`);
  });
  children.push(gateway);
  await waitForPort(GATEWAY_PORT);

  const minted = mintToken(
    {
      agent: 'bench-agent',
      service: 's3',
      hosts: HOSTS,
      methods: ['GET', 'HEAD', 'PUT', 'POST'],
      paths: ['/bench/**'],
      ttlMs: 3_600_000,
    },
    { key: keyring.current, now: new Date(), tokenId: newTokenId() },
  );
  writeFileSync(join(work, 'credentials.json'), renderContent(minted, 'aws-credential-process'));
  writeFileSync(
    join(work, 'aws-config'),
    `[default]\nregion = us-east-1\ncredential_process = cat ${join(work, 'credentials.json')}\ns3 =\n    addressing_style = path\n`,
  );
  const base = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('AWS_') && !/_proxy$/i.test(name),
    ),
  );
  const viaGateway = {
    ...base,
    AWS_CONFIG_FILE: join(work, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    ...(VIA === 'route'
      ? { AWS_ENDPOINT_URL: `http://127.0.0.1:${GATEWAY_PORT}/s3` }
      : {
          HTTPS_PROXY: `http://127.0.0.1:${GATEWAY_PORT}`,
          AWS_CA_BUNDLE: join(work, 'ca', 'ca.crt'),
        }),
  };
  const direct = {
    ...base,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: standin.url,
    ...(VIA === 'route' ? {} : { AWS_CA_BUNDLE: pki.caFile }),
  };

  const object = join(work, 'object');
  const fd = openSync(object, 'w');
  for (let i = 0; i < MIB; i++) writeSync(fd, randomBytes(1024 * 1024));
  closeSync(fd);

  const before = rssKiB(gateway.pid as number);
  let peak = before;
  const peaks: number[] = [];
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(gateway.pid as number))), 100);
  const transfers = {
    upload: (key: string) => ['s3', 'cp', object, `s3://bench/${key}`, '--only-show-errors'],
    download: (key: string) => [
      's3',
      'cp',
      `s3://bench/${key}`,
      join(work, `down-${key}`),
      '--only-show-errors',
    ],
  } as const;
  const rounds: Record<keyof typeof transfers, Array<{ direct: number; gateway: number }>> = {
    upload: [],
    download: [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const what of ['upload', 'download'] as const) {
      const args = transfers[what];
      // Both orders in every round, each arm's time the sum of its two runs:
      // whichever arm ran second was 20-40% slower (on a quiet machine too,
      // with dirty pages flushed between them), so a round of one order
      // measured the order, not the gateway.
      const straight = () => run('aws', args('direct'), direct);
      const through = () => run('aws', args('gateway'), viaGateway);
      const directFirst = { direct: await straight(), gateway: await through() };
      const gatewayFirst = { gateway: await through(), direct: await straight() };
      rounds[what].push({
        direct: directFirst.direct + gatewayFirst.direct,
        gateway: directFirst.gateway + gatewayFirst.gateway,
      });
    }
    peaks.push(peak);
  }
  clearInterval(sampler);
  for (const key of ['direct', 'gateway'])
    if (!readFileSync(join(work, `down-${key}`)).equals(readFileSync(object)))
      throw new Error(`the ${key} download differs from the upload`);

  console.log(
    `aws-cli, ${MIB} MiB object, via ${VIA === 'route' ? 'a gateway route (plain HTTP; the direct arm is plain HTTP too)' : 'interception (HTTPS)'}; the stand-in checks every signature and CRC trailer; median of ${ROUNDS} rounds, each ratio taken within its round (both orders, ${2 * MIB} MiB per arm)\n`,
  );
  console.log(
    '| transfer | direct MiB/s | via gateway MiB/s | ratio (median) | ratios per round |',
  );
  console.log('|---|---|---|---|---|');
  for (const what of ['upload', 'download'] as const) {
    const all = rounds[what];
    const ratios = all.map((r) => r.direct / r.gateway);
    console.log(
      `| ${what} | ${((2 * MIB) / median(all.map((r) => r.direct))).toFixed(1)} | ${((2 * MIB) / median(all.map((r) => r.gateway))).toFixed(1)} | ${median(ratios).toFixed(2)} | ${ratios.map((r) => r.toFixed(2)).join(' ')} |`,
    );
  }
  console.log(
    `\ngateway RSS: ${(before / 1024).toFixed(0)} MiB before, at most ${peaks.map((p) => (p / 1024).toFixed(0)).join(', ')} MiB after each round`,
  );
  // A CPU profile is written when the gateway stops by a signal it handles.
  if (gatewayProfileFlags().length > 0) {
    const exited = new Promise((resolve) => gateway.once('exit', resolve));
    stopping = true;
    gateway.kill('SIGTERM');
    await exited;
  }
}

const work = mkdtempSync(join(tmpdir(), 'mintfs-bench-aws-'));
main(work)
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  })
  .finally(async () => {
    stopping = true;
    for (const child of children) child.kill('SIGKILL');
    for (const cleanup of cleanups.reverse()) await cleanup();
    rmSync(work, { recursive: true, force: true });
  });
