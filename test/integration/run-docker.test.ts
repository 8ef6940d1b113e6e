/**
 * `mintfs run --runtime docker`: the agent in a container of a real Docker
 * engine (a private dockerd the test starts), with a real token mount and
 * gateway in front of the real HTTPS test upstream: the same guarantees as
 * the bubblewrap sandbox, checked from inside.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RUN_DIR } from '../../src/contain/run-sandbox.js';
import { RUN_UID_COUNT, RUN_UID_FIRST } from '../../src/contain/run-uid.js';
import { mountedPaths } from '../../src/fuse/mount-table.js';
import { startDockerEngine, type DockerEngine } from '../helpers/docker-engine.js';
import {
  CREDENTIAL,
  startGatewayFixture,
  upstreamProfile,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { CLI } from '../helpers/paths.js';
import { EXPECTED_TRUST_VARIABLES } from '../helpers/trust-variables.js';
import { pollUntil } from '../helpers/poll.js';
import { runAsync, type Completed } from '../helpers/spawn.js';
import type { Teardown } from '../helpers/temp.js';

function runArgs(
  gw: GatewayFixture,
  engine: DockerEngine,
  extra: string[] = [],
  intercept = false,
): string[] {
  const profile = join(gw.dir, 'agent.yaml');
  writeFileSync(profile, upstreamProfile('docker-agent'));
  const config = join(gw.dir, 'run-gateway.yaml');
  writeFileSync(
    config,
    [
      'listen: [127.0.0.1:0]',
      'upstreams:',
      '  github:',
      `    url: ${gw.upstream.url}`,
      `    credential: { file: ${gw.credentialFile} }`,
      '    inject: "Authorization: token {credential}"',
      `    ca: ${join(gw.dir, 'ca.pem')}`,
      ...(intercept
        ? ['    hosts: [api.github.com]', 'intercept:', `  ca: ${join(gw.dir, 'intercept-ca')}`]
        : []),
      '',
    ].join('\n'),
  );
  return [
    'run',
    '--runtime',
    'docker',
    '--image',
    engine.image,
    '--profile',
    profile,
    '--gateway',
    config,
    '--keys',
    gw.keysDir,
    ...extra,
  ];
}

function mintfsRun(
  engine: DockerEngine,
  args: readonly string[],
  onSpawn?: (pid: number) => void,
): Promise<Completed> {
  return runAsync(process.execPath, [CLI, ...args], onSpawn, {
    ...process.env,
    DOCKER_HOST: engine.host,
    MINTFS_TEST_MARKER: 'operator-secret-marker',
  });
}

function runDirEntries(): string[] {
  return existsSync(RUN_DIR) ? readdirSync(RUN_DIR).filter((name) => name.startsWith('run-')) : [];
}

function containers(engine: DockerEngine): string[] {
  return engine.docker(['ps', '--all', '--quiet']).trim().split('\n').filter(Boolean);
}

function fields(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .split('\n')
      .filter((line) => /^[A-Za-z_-]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

describe('mintfs run --runtime docker (a private dockerd)', () => {
  // One engine for the file (it takes seconds to start), stopped at the end whatever happens.
  const stops: Array<() => unknown> = [];
  const suite: Teardown = { add: (fn) => stops.push(fn) };
  let engine: DockerEngine;
  before(async () => {
    engine = await startDockerEngine(suite);
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it('reads tokens with cat, reaches the upstream only through the gateway, and is contained', async (t) => {
    const gw = await startGatewayFixture(t);
    const before = runDirEntries();
    const script = `
      echo "uid=$(id -u)"
      echo "gid=$(id -g)"
      grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -d ' \\t' | sed 's/:/=/'
      T=$(cat /secrets/github/token); echo "cat=\${#T}"
      echo "busybox=$(busybox cat /secrets/github/token | wc -c)"
      echo "status=$(wget -q -S -O /dev/null --header "Authorization: Bearer $T" http://localhost/repos/acme/widgets/pulls 2>&1 | grep -c 'HTTP/1.1 200')"
      echo "routes=$(wc -l < /proc/net/route)"
      ( echo x > /secrets/github/token ) 2>/dev/null; echo "write=$?"
      ( echo x > /bin/x ) 2>/dev/null; echo "rootfs-write=$?"
      ( echo x > /work/x ) 2>/dev/null; echo "work-write=$?"
      ls ${gw.keysDir} >/dev/null 2>&1; echo "keys=$?"
      cat ${gw.credentialFile} >/dev/null 2>&1; echo "credential=$?"
      echo "marker=$(grep -l operator-secret-marker /proc/*/environ 2>/dev/null | wc -l)"
      echo "proxy=$http_proxy"
      exit 7
    `;
    const result = await mintfsRun(engine, [...runArgs(gw, engine), '--', 'sh', '-c', script]);
    assert.equal(result.code, 7, result.stderr + result.stdout);
    const out = fields(result.stdout);
    assert.ok(
      Number(out.uid) >= RUN_UID_FIRST && Number(out.uid) < RUN_UID_FIRST + RUN_UID_COUNT,
      out.uid,
    );
    assert.equal(out.gid, out.uid);
    assert.equal(out.CapEff, '0000000000000000');
    assert.equal(out.NoNewPrivs, '1');
    assert.equal(out.Seccomp, '2');
    assert.ok(Number(out.cat) > 100, 'cat read a token');
    assert.equal(out.busybox, out.cat, 'busybox cat read a whole token');
    assert.equal(out.status, '1', 'the request through the gateway succeeded');
    assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
    assert.equal(out.routes, '1', 'no route: only loopback');
    assert.notEqual(out.write, '0');
    assert.notEqual(out['rootfs-write'], '0', 'the root is read-only');
    assert.equal(out['work-write'], '0', '/work is scratch');
    assert.notEqual(out.keys, '0');
    assert.notEqual(out.credential, '0');
    assert.equal(out.marker, '0', 'the operator environment is visible');
    assert.equal(out.proxy, 'http://127.0.0.1:8787');
    // Nothing left: container, run directory, mounts.
    assert.deepEqual(containers(engine), []);
    assert.deepEqual(runDirEntries(), before);
    assert.ok(!mountedPaths().some((p) => p.startsWith(RUN_DIR)));
  });

  it('passes a signal to the command and leaves with its status; limits hold', async (t) => {
    const gw = await startGatewayFixture(t);
    // The command says "started" once its trap is set; then mintfs run gets SIGTERM.
    const child = spawn(
      process.execPath,
      [
        CLI,
        ...runArgs(gw, engine),
        '--',
        'sh',
        '-c',
        'trap "echo got-term; exit 42" TERM; echo started; while true; do sleep 0.1; done',
      ],
      { env: { ...process.env, DOCKER_HOST: engine.host }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.resume();
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    await pollUntil(
      'the command to set its trap',
      () => (stdout.includes('started') ? true : undefined),
      30_000,
    );
    child.kill('SIGTERM');
    assert.equal(await exited, 42, stdout);
    assert.match(stdout, /got-term/);
    assert.deepEqual(containers(engine), []);

    // A fork bomb meets --pids: busybox sh gives up when fork fails. The same
    // script under a higher limit runs all its processes (counted with shell
    // builtins alone), so the failure is the limit's.
    const bomb =
      'i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); done; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo "procs=$n"; exit 0';
    const limited = await mintfsRun(engine, [
      ...runArgs(gw, engine, ['--pids', '32']),
      '--',
      'sh',
      '-c',
      bomb,
    ]);
    assert.notEqual(limited.code, 0, limited.stdout);
    assert.match(limited.stderr, /fork/i);
    assert.equal(fields(limited.stdout).procs, undefined);
    const roomy = await mintfsRun(engine, [
      ...runArgs(gw, engine, ['--pids', '256']),
      '--',
      'sh',
      '-c',
      bomb,
    ]);
    assert.equal(roomy.code, 0, roomy.stderr);
    assert.ok(Number(fields(roomy.stdout).procs) > 100, roomy.stdout);
    // A memory bomb meets --memory: the shell is killed before it holds 300 MB.
    const memory = await mintfsRun(engine, [
      ...runArgs(gw, engine, ['--memory', '64M']),
      '--',
      'sh',
      '-c',
      "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert.ok(!memory.stdout.includes('survived'), 'a 300 MB shell variable fit in 64M');
    assert.notEqual(memory.code, 0);
    assert.deepEqual(containers(engine), []);
  });

  it('with HTTPS interception: the CA certificate alone is the trust bundle, under every variable', async (t) => {
    const gw = await startGatewayFixture(t, { intercept: { hosts: ['api.github.com'] } });
    const script = `
      env | grep -E '^(SSL_CERT_FILE|CURL_CA_BUNDLE|REQUESTS_CA_BUNDLE|NODE_EXTRA_CA_CERTS|GIT_SSL_CAINFO|PIP_CERT|AWS_CA_BUNDLE|HTTPS_PROXY)='
      echo "certs=$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt)"
      echo "keys=$(grep -rl 'PRIVATE KEY' /etc /work /tmp /run 2>/dev/null | wc -l)"
    `;
    const result = await mintfsRun(engine, [
      ...runArgs(gw, engine, [], true),
      '--',
      'sh',
      '-c',
      script,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const out = fields(result.stdout);
    for (const name of EXPECTED_TRUST_VARIABLES)
      assert.equal(out[name], '/etc/ssl/certs/ca-certificates.crt', name);
    assert.equal(out.HTTPS_PROXY, 'http://127.0.0.1:8787');
    assert.equal(out.certs, '1');
    assert.equal(out.keys, '0', 'a private key is readable in the container');
    assert.deepEqual(containers(engine), []);
  });

  it('refuses --runtime docker without --image, and --image without it, in one line', async (t) => {
    const gw = await startGatewayFixture(t);
    const args = runArgs(gw, engine);
    const withoutImage = args.filter((a, i) => a !== '--image' && args[i - 1] !== '--image');
    const missing = await mintfsRun(engine, [...withoutImage, '--', 'true']);
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr.trim(),
      /^mintfs: --image: name the image to run with --runtime docker$/,
    );
    const stray = await mintfsRun(engine, [
      ...withoutImage.filter((a) => a !== 'docker' && a !== '--runtime'),
      '--image',
      'x',
      '--',
      'true',
    ]);
    assert.equal(stray.code, 2);
    assert.match(stray.stderr.trim(), /^mintfs: --image: only with --runtime docker$/);
    // An image the engine cannot get fails the run with Docker's reason; nothing is left.
    const before = runDirEntries();
    const absent = await mintfsRun(engine, [
      ...args.map((a) => (a === engine.image ? 'mintfs-no-such-image:1' : a)),
      '--',
      'true',
    ]);
    assert.equal(absent.code, 3, absent.stderr);
    assert.match(absent.stderr, /\nmintfs: docker create of image mintfs-no-such-image:1 failed: /);
    assert.deepEqual(containers(engine), []);
    assert.deepEqual(runDirEntries(), before);
  });
});
