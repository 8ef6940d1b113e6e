/**
 * One containment suite, run on every runtime of `mintfs run`: bubblewrap,
 * runc (a busybox root file system built here) and Docker (a private dockerd
 * the file starts, with the same root file system imported as an image).
 * Each gets a real token mount, a real gateway and the real HTTPS test
 * upstream, and is checked from inside, as the agent: who it runs as, what
 * it can read, reach and write, its limits, signals and exit status, what
 * is left afterwards, and a daemon restart (`--takeover`) under a running
 * sandbox.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { BRIDGE_CONNECTIONS, BRIDGE_LIMITS } from '../../src/contain/gateway-bridge.js';
import { RUN_DIR } from '../../src/contain/run-sandbox.js';
import { RUN_UID_COUNT, RUN_UID_FIRST } from '../../src/contain/run-uid.js';
import { addProgram, buildBusyboxRootfs } from '../helpers/busybox-rootfs.js';
import { startDockerEngine, type DockerEngine } from '../helpers/docker-engine.js';
import {
  CREDENTIAL,
  runGatewayConfig,
  startGatewayFixture,
  upstreamProfile,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { CLI, REPO_ROOT } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';
import {
  bridges,
  NOTHING_LEFT,
  runCgroups,
  runLeftovers,
  runsIn,
} from '../helpers/run-leftovers.js';
import { BACKENDS } from '../helpers/backends.js';
import { describeOnFirstPass, FIRST_NODE_PASS } from '../helpers/node-passes.js';
import { buildSandboxProbe, PROBE_NAME } from '../helpers/sandbox-probe.js';
import { runAsync, type Completed } from '../helpers/spawn.js';
import { tempDir, teardownOf, type Teardown } from '../helpers/temp.js';
import { EXPECTED_TRUST_VARIABLES } from '../helpers/trust-variables.js';
import { authenticateToken, verifyToken } from '../../src/token/verify.js';

interface Runtime {
  readonly name: 'bwrap' | 'runc' | 'docker' | 'runsc';
  /** The `mintfs run` options that pick it. */
  args(): string[];
  env(): NodeJS.ProcessEnv;
  /** Names of this runtime's containers that still exist (bubblewrap: the runs' cgroups). */
  containers(): string[];
}

const MARKER = 'operator-secret-marker';

// One engine and one root file system for the file (starting dockerd takes seconds).
const stops: Array<() => unknown> = [];
const suite: Teardown = { add: (fn) => stops.push(fn) };
let engine: DockerEngine;
let rootfs: string;
before(async () => {
  engine = await startDockerEngine(suite);
  rootfs = buildBusyboxRootfs(join(tempDir(suite, 'mintfs-rootfs-'), 'rootfs'));
});
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

const RUNTIMES: Runtime[] = [
  {
    name: 'bwrap',
    args: () => [],
    env: () => ({}),
    containers: () => runCgroups(),
  },
  {
    name: 'runc',
    args: () => ['--runtime', 'runc', '--rootfs', rootfs],
    env: () => ({}),
    containers: () =>
      execFileSync('runc', ['list', '--quiet'], { encoding: 'utf8' })
        .split('\n')
        .filter((name) => name.startsWith('mintfs-run-')),
  },
  {
    name: 'docker',
    args: () => ['--runtime', 'docker', '--image', engine.image],
    env: () => ({ DOCKER_HOST: engine.host }),
    containers: () =>
      engine.docker(['ps', '--all', '--format', '{{.Names}}']).trim().split('\n').filter(Boolean),
  },
  {
    // gVisor: the same root file system as runc, under a user-space kernel.
    name: 'runsc',
    args: () => ['--runtime', 'runsc', '--rootfs', rootfs],
    env: () => ({}),
    containers: () =>
      execFileSync('runsc', ['list', '--quiet'], { encoding: 'utf8' })
        .split('\n')
        .filter((name) => name.startsWith('mintfs-run-')),
  },
];

/** A gateway config for the fixture's upstream (optionally intercepting api.github.com). */
function gatewayConfig(gw: GatewayFixture, intercept = false): string {
  return runGatewayConfig(gw, intercept ? ['api.github.com'] : undefined);
}

/** `mintfs run` options for a private mount and gateway on `runtime`. */
function privateRunArgs(runtime: Runtime, gw: GatewayFixture, intercept = false): string[] {
  const profile = join(gw.dir, 'agent.yaml');
  writeFileSync(profile, upstreamProfile('contained-agent'));
  return [
    'run',
    ...runtime.args(),
    '--profile',
    profile,
    '--gateway',
    gatewayConfig(gw, intercept),
    '--keys',
    gw.keysDir,
  ];
}

function mintfsRun(runtime: Runtime, args: readonly string[]): Promise<Completed> {
  return runAsync(process.execPath, [CLI, ...args], undefined, {
    ...process.env,
    ...runtime.env(),
    MINTFS_TEST_MARKER: MARKER,
  });
}

function spawnMintfs(runtime: Runtime, args: readonly string[], cwd?: string): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...runtime.env() },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd }),
  });
}

function fields(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .split('\n')
      .filter((line) => /^[A-Za-z_-]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

/**
 * What the runs named on `stderr` left on `runtime`, checked to be nothing; and
 * that there were `expected` of them (a run that never said its name would
 * make the check vacuous).
 */
function assertNothingLeft(runtime: Runtime, stderr: string, expected: number): void {
  const runs = runsIn(stderr);
  assert.equal(runs.length, expected, `runs named on stderr: ${runs.join(', ')}`);
  assert.deepEqual(
    runLeftovers(runs, () => runtime.containers()),
    NOTHING_LEFT,
  );
}

/** bubblewrap on every Node.js pass; runc, Docker and gVisor on the first (test/helpers/node-passes.ts). */
const onThisPass = (runtime: Runtime): boolean => runtime.name === 'bwrap' || FIRST_NODE_PASS;

for (const runtime of RUNTIMES.filter(onThisPass)) {
  describe(`containment on ${runtime.name}`, () => {
    it('is a fresh non-root uid without privileges; reads tokens with both cats; reaches the upstream only through the gateway', async (t) => {
      const gw = await startGatewayFixture(t);
      const script = `
        echo "uid=$(id -u)"
        echo "gid=$(id -g)"
        grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -d ' \\t' | sed 's/:/=/'
        T=$(/usr/bin/cat /secrets/github/token); echo "cat=\${#T}"
        echo "coreutils=$(/usr/bin/cat --version | grep -c 'GNU coreutils')"
        B=$(busybox cat /secrets/github/token); echo "busybox=\${#B}"
        [ "$T" != "$B" ]; echo "fresh=$?"
        echo "status=$(busybox wget -q -S -O /dev/null --header "Authorization: Bearer $T" http://localhost/repos/acme/widgets/pulls 2>&1 | grep -c 'HTTP/1.1 200')"
        busybox wget -q -O /dev/null -T 3 http://127.0.0.1:${gw.upstream.port}/ 2>/dev/null; echo "direct=$?"
        echo "routes=$(wc -l < /proc/net/route)"
        echo "interfaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"
        ( echo x > /secrets/github/token ) 2>/dev/null; echo "write=$?"
        ( echo x > /secrets/new ) 2>/dev/null; echo "create=$?"
        ( echo x > /usr/bin/x ) 2>/dev/null; echo "rootfs-write=$?"
        ( echo x > /work/x ) 2>/dev/null; echo "work-write=$?"
        echo "tmp-error=$( ( echo x > /tmp/x ) 2>&1 | tr '\\n' ' ')"; ( echo x > /tmp/x ) 2>/dev/null; echo "tmp-write=$?"
        busybox unshare -U true 2>/dev/null; echo "unshare=$?"
        ls ${gw.keysDir} >/dev/null 2>&1; echo "keys=$?"
        cat ${gw.credentialFile} >/dev/null 2>&1; echo "credential=$?"
        echo "credential-in-env=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '${CREDENTIAL}')"
        echo "marker=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c ${MARKER})"
        echo "proxy=$http_proxy"
        exit 7
      `;
      const result = await mintfsRun(runtime, [
        ...privateRunArgs(runtime, gw),
        '--',
        'busybox',
        'sh',
        '-c',
        script,
      ]);
      assert.equal(result.code, 7, result.stderr + result.stdout);
      const out = fields(result.stdout);
      const uid = Number(out.uid);
      assert.ok(uid >= RUN_UID_FIRST && uid < RUN_UID_FIRST + RUN_UID_COUNT, out.uid);
      assert.equal(out.gid, out.uid);
      assert.equal(out.CapEff, '0000000000000000');
      // gVisor's /proc/PID/status has no NoNewPrivs line; the probe asks
      // prctl instead, on every runtime (the pid 1 test).
      assert.equal(out.NoNewPrivs, runtime.name === 'runsc' ? undefined : '1');
      // Under gVisor, 2 is the sentry's own seccomp (runsc --oci-seccomp).
      assert.equal(out.Seccomp, '2');
      assert.ok(Number(out.cat) > 100, 'cat read a token');
      assert.equal(out.coreutils, '1', 'coreutils cat');
      assert.equal(out.busybox, out.cat, 'busybox cat read a whole token');
      assert.equal(out.fresh, '0', 'each read mints a new token');
      assert.equal(out.status, '1', 'the request through the gateway succeeded');
      assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
      assert.notEqual(out.direct, '0', 'reached the upstream without the gateway');
      assert.equal(out.routes, '1', 'a route out');
      assert.equal(out.interfaces?.trim(), 'lo');
      for (const denied of ['write', 'create', 'rootfs-write', 'unshare', 'keys', 'credential'])
        assert.notEqual(out[denied], '0', `${denied} must fail`);
      assert.equal(out['work-write'], '0', '/work is scratch');
      assert.equal(out['tmp-write'], '0', `/tmp is scratch: ${out['tmp-error']}`);
      assert.equal(out['credential-in-env'], '0');
      assert.equal(out.marker, '0', "the operator's environment is visible");
      assert.equal(out.proxy, 'http://127.0.0.1:8787');
      assertNothingLeft(runtime, result.stderr, 1);
    });

    it('contains a fork bomb and a memory bomb', async (t) => {
      const gw = await startGatewayFixture(t);
      const args = privateRunArgs(runtime, gw);
      // busybox sh gives up when fork fails. The same script under a higher
      // limit runs all its processes (counted with builtins alone), so the
      // failure is the limit's.
      const bomb =
        'i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); done; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo "procs=$n"; exit 0';
      const limited = await mintfsRun(runtime, [
        ...args,
        '--pids',
        '32',
        '--',
        'busybox',
        'sh',
        '-c',
        bomb,
      ]);
      assert.notEqual(limited.code, 0, limited.stdout);
      assert.match(limited.stderr, /fork/i);
      assert.equal(fields(limited.stdout).procs, undefined);
      const roomy = await mintfsRun(runtime, [
        ...args,
        '--pids',
        '256',
        '--',
        'busybox',
        'sh',
        '-c',
        bomb,
      ]);
      assert.equal(roomy.code, 0, roomy.stderr);
      assert.ok(Number(fields(roomy.stdout).procs) > 100, roomy.stdout);
      // A 300 MiB buffer filled by one read under --memory 64M: killed before
      // it is whole. One read, not a shell variable grown from a pipe: under
      // gVisor's ptrace platform every syscall is trapped, and the pipe took
      // 40 s to reach the limit where this takes under one.
      const memory = await mintfsRun(runtime, [
        ...args,
        '--memory',
        '64M',
        '--',
        'busybox',
        'sh',
        '-c',
        'busybox dd if=/dev/zero of=/dev/null bs=300M count=1 && echo survived',
      ]);
      assert.ok(!memory.stdout.includes('survived'), 'a 300 MiB buffer fit in 64M');
      assert.notEqual(memory.code, 0);
      assertNothingLeft(runtime, limited.stderr + roomy.stderr + memory.stderr, 3);
    });

    it('passes a signal to the command and leaves with its status', async (t) => {
      const gw = await startGatewayFixture(t);
      const child = spawnMintfs(runtime, [
        ...privateRunArgs(runtime, gw),
        '--',
        'busybox',
        'sh',
        '-c',
        'trap "echo got-term; exit 42" TERM; echo started; while true; do sleep 0.1; done',
      ]);
      teardownOf(t).add(() => child.kill('SIGKILL'));
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      await pollUntil('the command to set its trap', () => stdout.includes('started'), 30_000);
      child.kill('SIGTERM');
      assert.equal(await exited, 42, stdout);
      assert.match(stdout, /got-term/);
      assertNothingLeft(runtime, stderr, 1);
    });

    it('with HTTPS interception, trusts the CA certificate alone, under every variable', async (t) => {
      const gw = await startGatewayFixture(t, { intercept: { hosts: ['api.github.com'] } });
      const script = `
        env | grep -E '^(SSL_CERT_FILE|CURL_CA_BUNDLE|REQUESTS_CA_BUNDLE|NODE_EXTRA_CA_CERTS|GIT_SSL_CAINFO|PIP_CERT|AWS_CA_BUNDLE|HTTPS_PROXY)='
        echo "certs=$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt)"
        echo "keys=$(find /etc /work /tmp /run /secrets -type f 2>/dev/null | while read -r f; do grep -l 'PRIVATE KEY' "$f"; done | tr '\\n' ' ')"
      `;
      const result = await mintfsRun(runtime, [
        ...privateRunArgs(runtime, gw, true),
        '--',
        'busybox',
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
      assert.equal(out.keys, '', 'a private key is readable inside');
      assertNothingLeft(runtime, result.stderr, 1);
    });

    it("shows nothing of the operator's process inside: environment, cwd, arguments, descriptors, run directory, install path", async (t) => {
      await seesNothingOfTheOperator(t, runtime);
    });

    it('cannot read or steer pid 1 (its supervisor): pidfd_getfd and /proc/1/mem fail', async (t) => {
      const gw = await startGatewayFixture(t);
      const work = buildSandboxProbe(tempDir(t));
      const result = await mintfsRun(runtime, [
        ...privateRunArgs(runtime, gw),
        '--workdir',
        work,
        '--',
        `/work/${PROBE_NAME}`,
      ]);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const out = fields(result.stdout);
      // Both must fail: EPERM (seccomp, or no ptrace access) for the descriptor,
      // EACCES for the memory of a process that is not dumpable.
      assert.ok(out.pidfd_getfd !== undefined && out.pidfd_getfd !== 'ok', result.stdout);
      assert.ok(out.mem !== undefined && out.mem !== 'ok', result.stdout);
      assert.equal(out.no_new_privs, '1', result.stdout);
      // gVisor implements no pidfd_open (ENOSYS), so there is no pidfd to steal with.
      if (runtime.name === 'runsc') assert.equal(out.pidfd_getfd, '38', result.stdout);
      assertNothingLeft(runtime, result.stderr, 1);
    });

    it('seccomp answers EPERM to calls it denies that an unprivileged process could otherwise make', async (t) => {
      const gw = await startGatewayFixture(t);
      const work = buildSandboxProbe(tempDir(t));
      const probe = join(work, PROBE_NAME);
      // Not vacuous: on the host, as an unprivileged uid, each call succeeds.
      const host = fields(
        execFileSync(
          'setpriv',
          ['--reuid=2100000002', '--regid=2100000002', '--clear-groups', probe],
          {
            encoding: 'utf8',
          },
        ),
      );
      const denied = Object.keys(host).filter((name) => name.startsWith('denied_'));
      assert.ok(denied.length >= 4, JSON.stringify(host));
      for (const name of denied) assert.equal(host[name], 'ok', `${name} on the host`);
      const result = await mintfsRun(runtime, [
        ...privateRunArgs(runtime, gw),
        '--workdir',
        work,
        '--',
        `/work/${PROBE_NAME}`,
      ]);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const out = fields(result.stdout);
      // EPERM (1) on every runtime. Under gVisor the sentry applies the same
      // profile itself (runsc --oci-seccomp) before its own implementation of
      // the call is reached; without that flag runsc ignores the profile and
      // these would run inside gVisor's kernel.
      for (const name of denied) assert.equal(out[name], '1', `${name}: ${result.stdout}`);
      // ...and threads still work: libc tries clone3 first (runc: ENOSYS from
      // the filter; gVisor: ENOSYS of its own, the rule left out because its
      // sentry would answer EPERM, on which libc does not fall back to clone).
      assert.equal(out.thread, 'ok', result.stdout);
      assertNothingLeft(runtime, result.stderr, 1);
    });

    it('keeps reading through a daemon restart (--takeover) of a running --mount', async (t) => {
      await followsTakeover(t, runtime);
    });
  });
}

/**
 * `mintfs run` started the way an operator might: from a directory of their
 * own (the profile and gateway config named relative to it), with a
 * variable of their own in the environment and a descriptor of theirs open
 * (fd 64, on a file in that directory), its stdout a file there. From inside, every process's
 * environ, cmdline, maps, cwd/root/exe links, descriptor links and
 * mountinfo are read: none may show the directory, the variable, the file,
 * the operator's arguments, the run directory or where mintfs is installed.
 */
async function seesNothingOfTheOperator(t: TestContext, runtime: Runtime): Promise<void> {
  const gw = await startGatewayFixture(t);
  const cwd = mkdtempSync(join(tempDir(t), 'operator-cwd-'));
  writeFileSync(join(cwd, 'agent.yaml'), upstreamProfile('contained-agent'));
  writeFileSync(join(cwd, 'gateway.yaml'), readFileSync(gatewayConfig(gw)));
  const openFile = join(cwd, 'operator-open-file-4d1c');
  writeFileSync(openFile, "the operator's data\n");
  const fd = openSync(openFile, 'r');
  // Its stdout goes to a file there too, as `mintfs run ... > out.log` does.
  const outFile = join(cwd, 'operator-out-log-7e2a');
  const outFd = openSync(outFile, 'w');
  t.after(() => {
    closeSync(fd);
    closeSync(outFd);
  });
  const marker = 'operator-variable-9b2e51';
  const patterns = [
    cwd,
    'operator-cwd-',
    'operator-open-file-4d1c',
    'operator-out-log-7e2a',
    marker,
    gw.dir,
    RUN_DIR,
    join(REPO_ROOT, 'dist'),
  ];
  // The patterns travel base64-encoded: the script's own command line must not hold them.
  const encoded = Buffer.from(`${patterns.join('\n')}\n`).toString('base64');
  const script = `
    echo ${encoded} | base64 -d > /tmp/patterns
    for p in /proc/[0-9]*; do
      cat $p/environ $p/cmdline 2>/dev/null | tr '\\0' '\\n'
      cat $p/maps $p/mountinfo 2>/dev/null
      readlink $p/cwd $p/root $p/exe 2>/dev/null
      for f in $p/fd/*; do readlink $f 2>/dev/null; done
    done > /tmp/seen
    echo "pids=$(ls -d /proc/[0-9]* | wc -l)"
    echo "own-environ=$(grep -c '^MINTFS_GATEWAY=' /tmp/seen)"
    echo "secrets-mount=$(grep -c ' /secrets ' /proc/self/mountinfo)"
    echo "seen=$(grep -F -f /tmp/patterns /tmp/seen | head -5 | tr '\\n' '|')"
  `;
  const child = spawn(
    process.execPath,
    [
      CLI,
      'run',
      ...runtime.args(),
      '--profile',
      'agent.yaml',
      '--gateway',
      'gateway.yaml',
      '--keys',
      gw.keysDir,
      '--',
      'busybox',
      'sh',
      '-c',
      script,
    ],
    {
      cwd,
      env: { ...process.env, ...runtime.env(), MINTFS_TEST_OPERATOR: marker },
      // fd 64, as a shell's `exec 64<file` leaves it (Node passes on descriptors that high).
      stdio: ['ignore', outFd, 'pipe', ...Array<'ignore'>(61).fill('ignore'), fd],
    },
  );
  teardownOf(t).add(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const stdout = readFileSync(outFile, 'utf8');
  assert.equal(code, 0, stderr + stdout);
  const out = fields(stdout);
  // Not vacuous: the processes were there and their files were read.
  assert.ok(Number(out.pids) >= 2, stdout);
  assert.ok(Number(out['own-environ']) >= 1, stdout);
  assert.equal(out['secrets-mount'], '1', stdout);
  assert.equal(
    out.seen,
    '',
    "the operator's process, the run directory or the install path shows inside",
  );
  assertNothingLeft(runtime, stderr, 1);
}

for (const runtime of RUNTIMES.filter(
  (r) => r.name !== 'bwrap' && r.name !== 'runsc' && onThisPass(r),
)) {
  // bubblewrap's and gVisor's bridges run inside the sandbox, as the agent, under the run's limits.
  describe(`the host-side gateway bridge on ${runtime.name}`, () => {
    it('many connections from inside: the bridge stays within its cap and its own cgroup, runs as the run uid, and serves after', async (t) => {
      await bridgeStaysBounded(t, runtime);
    });
  });
}

/**
 * The agent opens CONNECTIONS idle connections to the bridge and holds
 * them. Once the bridge is saturated, its processes are at most the cap
 * (and the listener), every one in the run's bridge cgroup, none root; then
 * the agent drops its connections and a request through the gateway works.
 */
async function bridgeStaysBounded(t: TestContext, runtime: Runtime): Promise<void> {
  const CONNECTIONS = 150;
  // Idle connections are held for the whole test, however slowly a busy
  // machine opens them (the default 10 s head timeout would close the first
  // before the last are open).
  const gw = await startGatewayFixture(t);
  const work = tempDir(t);
  chmodSync(work, 0o755);
  const script = `
    until printf 'X\\r\\n\\r\\n' | nc 127.0.0.1 8787 >/dev/null 2>&1; do sleep 0.1; done
    i=0; while [ $i -lt ${CONNECTIONS} ]; do (sleep 600 | nc 127.0.0.1 8787 >/dev/null 2>&1) & i=$((i+1)); done
    echo opened
    while [ ! -e /work/stop ]; do sleep 0.1; done
    kill -9 -1
    T=$(cat /secrets/github/token)
    echo "status=$(busybox wget -q -S -O /dev/null --header "Authorization: Bearer $T" http://localhost/repos/acme/widgets/pulls 2>&1 | grep -c 'HTTP/1.1 200')"
  `;
  const args = privateRunArgs(runtime, gw);
  // The run's gateway holds idle connections for the whole test, however
  // slowly a busy machine opens them (its 10 s head timeout would close the
  // first before the last are open).
  const config = args[args.indexOf('--gateway') + 1] as string;
  writeFileSync(
    config,
    `${readFileSync(config, 'utf8')}limits:\n  headersTimeout: 120s\n  requestTimeout: 300s\n`,
  );
  const child = spawnMintfs(runtime, [
    ...args,
    '--pids',
    '1024',
    '--workdir',
    work,
    '--',
    'busybox',
    'sh',
    '-c',
    script,
  ]);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  // Even when an assertion fails: let the agent finish, then stop the run
  // with a signal it cleans up after (a SIGKILL would leave the container).
  teardownOf(t).add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    writeFileSync(join(work, 'stop'), '');
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(killer);
  });
  await pollUntil('the agent to open its connections', () => stdout.includes('opened'), 30_000);
  const [run] = runsIn(stderr);
  assert.ok(run !== undefined, stderr);
  const ours = () =>
    bridges()
      .filter((line) => line.includes(run))
      .map((line) => Number(line.split(' ')[0]));
  // Most of its cap: the listener and a process per connection it took. Not
  // exactly at it: on a busy host runs settled at 57-63 of 65 (connections
  // still in SYN retries when the wait ends; not understood further, see the
  // session notes). The bound below is what this test is for: unbounded, the
  // bridge passes the cap at once (the old bridge: 72 processes for these 150).
  await pollUntil(
    'the bridge to take connections up to its cap',
    () => ours().length >= Math.floor((BRIDGE_CONNECTIONS * 3) / 4),
    // 150 connects at once overflow socat's listen backlog; the kernel's SYN
    // retries (1 s, 3 s, 7 s, ...) bring the rest in, slowly on a busy host.
    90_000,
    () =>
      `(${ours().length} bridge processes; the run said: ${stdout.trim()} ${stderr.trim().split('\n').slice(-3).join(' | ')})`,
  );
  const pids = ours();
  assert.ok(
    pids.length <= BRIDGE_CONNECTIONS + 1,
    `${pids.length} bridge processes for ${CONNECTIONS} connections`,
  );
  const cgroupOf = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    } catch {
      return 'gone';
    }
  };
  const statusOf = (pid: number) => {
    try {
      return /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 'gone';
    } catch {
      return 'gone';
    }
  };
  const outside = pids.filter((pid) => {
    const cgroup = cgroupOf(pid);
    return cgroup !== 'gone' && !cgroup.includes(`mintfs-${run}-bridge`);
  });
  assert.deepEqual(outside, [], "bridge processes outside the run's bridge cgroup");
  assert.ok(!pids.some((pid) => statusOf(pid) === '0'), 'a bridge process runs as root');
  const pidsMax = ['/sys/fs/cgroup', '/sys/fs/cgroup/pids']
    .map((root) => join(root, `mintfs-${run}-bridge`, 'pids.max'))
    .find((file) => existsSync(file));
  assert.ok(pidsMax !== undefined);
  assert.equal(readFileSync(pidsMax, 'utf8').trim(), String(BRIDGE_LIMITS.pids));

  writeFileSync(join(work, 'stop'), '');
  await pollUntil(
    'the run to end',
    () => child.exitCode !== null || child.signalCode !== null,
    60_000,
    () => stdout,
  );
  assert.equal(await exited, 0, stderr + stdout);
  assert.equal(fields(stdout).status, '1', 'a request through the gateway after the flood');
  assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
  assertNothingLeft(runtime, stderr, 1);
}

/** A `mintfs` process on the host (a mount daemon, a gateway), stopped with SIGTERM at the end. */
function hostMintfs(teardown: Teardown, args: readonly string[]): ChildProcess {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.resume();
  teardown.add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await gone;
  });
  return child;
}

/**
 * A directory of the test's own under /run/mintfs-test, traversable by the
 * sandbox user, for a mount's shared parent; its self-bind (if
 * --shared-parent made one) and itself removed at the end.
 */
function runTestDir(teardown: Teardown, prefix: string): string {
  mkdirSync('/run/mintfs-test', { recursive: true });
  const dir = mkdtempSync(`/run/mintfs-test/${prefix}-`);
  chmodSync(dir, 0o755);
  teardown.add(() => {
    try {
      execFileSync('umount', ['--lazy', dir], { stdio: 'ignore' });
    } catch {
      // not mounted
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** The uid the restart test's mount and sandbox share (no host process has it). */
const SHARED_UID = 2_100_000_001;

/**
 * A running mount served with --shared-parent and a running gateway, a
 * sandbox reading its token in a loop, and a second daemon taking the mount
 * over while it reads: not one read may fail, before, during or after (when
 * only the new daemon serves), and a request through the gateway works at
 * the end.
 */
async function followsTakeover(t: TestContext, runtime: Runtime): Promise<void> {
  const teardown = teardownOf(t);
  const gw = await startGatewayFixture(t);
  const profile = join(gw.dir, 'shared.yaml');
  writeFileSync(
    profile,
    upstreamProfile('restarted-agent', `uid: ${SHARED_UID}\ngid: ${SHARED_UID}\n`),
  );
  // Registered before the daemons, so removed after they stop.
  const mountpoint = join(runTestDir(teardown, runtime.name), 'secrets');
  const work = tempDir(t);
  chownSync(work, SHARED_UID, SHARED_UID);

  const daemon = (extra: string[]): ChildProcess =>
    hostMintfs(teardown, ['mount', profile, mountpoint, '--keys', gw.keysDir, ...extra]);
  const first = daemon(['--shared-parent']);
  await pollUntil(
    'the first daemon to serve',
    () => existsSync(join(mountpoint, 'github', 'token')),
    15_000,
  );

  const loop = `
    ok=0; fail=0
    while [ ! -e /work/stop ]; do
      T=$(cat /secrets/github/token 2>/dev/null)
      if [ \${#T} -gt 100 ]; then ok=$((ok+1)); else fail=$((fail+1)); fi
      echo "$ok $fail" > /work/progress.new; mv /work/progress.new /work/progress
    done
    echo "ok=$ok"; echo "fail=$fail"
    T=$(cat /secrets/github/token)
    echo "status=$(busybox wget -q -S -O /dev/null --header "Authorization: Bearer $T" http://localhost/repos/acme/widgets/pulls 2>&1 | grep -c 'HTTP/1.1 200')"
  `;
  // The running gateway's socket, for the sandbox user (the bridge of runc
  // and Docker connects as root; bubblewrap's runs inside, as that user).
  chmodSync(gw.dir, 0o711);
  chownSync(gw.socketPath, SHARED_UID, SHARED_UID);
  const run = spawnMintfs(
    runtime,
    [
      'run',
      ...runtime.args(),
      '--mount',
      mountpoint,
      '--gateway-socket',
      gw.socketPath,
      '--keys',
      gw.keysDir,
      '--uid',
      String(SHARED_UID),
      '--workdir',
      work,
      '--',
      'busybox',
      'sh',
      '-c',
      loop,
    ],
    // Started from a directory the sandbox user cannot enter (a private
    // checkout): mintfs run's checks as that user must not depend on it.
    tempDir(t),
  );
  teardown.add(() => run.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  run.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  run.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const finished = new Promise<number | null>((resolve) => run.once('close', resolve));
  const progress = (): { ok: number; fail: number } => {
    try {
      const [ok, fail] = readFileSync(join(work, 'progress'), 'utf8').trim().split(' ');
      return { ok: Number(ok), fail: Number(fail) };
    } catch {
      return { ok: 0, fail: 0 };
    }
  };
  const readsPast = (count: number, what: string) =>
    pollUntil(
      what,
      () => {
        if (run.exitCode !== null) throw new Error(`mintfs run ended: ${stderr}`);
        return progress().ok >= count;
      },
      30_000,
    );
  await readsPast(20, 'the sandbox to read tokens');

  const second = daemon(['--takeover']);
  const firstExit = await new Promise<number | null>((resolve) => first.once('exit', resolve));
  assert.equal(firstExit, 0, 'the first daemon hands over and exits 0');
  assert.equal(second.exitCode, null, 'the second daemon serves');
  // Only the new daemon is left: reads go on, served by it.
  await readsPast(progress().ok + 50, 'reads after the old daemon has gone');

  writeFileSync(join(work, 'stop'), '');
  assert.equal(await finished, 0, stderr);
  const out = fields(stdout);
  assert.equal(out.fail, '0', `reads failed across the takeover (ok=${out.ok})`);
  assert.ok(Number(out.ok) >= 70, out.ok);
  assert.equal(
    out.status,
    '1',
    'a request through the running gateway, with a token of the new daemon',
  );
  assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
  assertNothingLeft(runtime, stderr, 1);
}

/**
 * Tokens read through gVisor's gofer: the sandbox's processes never open
 * the mount themselves; runsc's gofer does, for all of them, and gVisor's
 * sentry reads one host handle per cached file for every process whose
 * open it joined there. The mount mints per read for the gofer (a fresh
 * token for each read from offset 0: src/fs/token-reads.ts). Eight readers
 * at once, each reading repeatedly: every read is a whole token that the
 * gateway's keyring verifies, all 80 are distinct, and the reader caveat
 * names the gofer (uid 0, runsc), not the agent's process.
 */
describeOnFirstPass('tokens through gVisor (runsc)', () => {
  for (const backend of BACKENDS)
    it(`8 concurrent readers inside gVisor (${backend}): every token whole, verifiable and distinct`, async (t) => {
      const runsc = RUNTIMES.find((r) => r.name === 'runsc') as Runtime;
      const gw = await startGatewayFixture(t);
      const READERS = 8;
      const READS = 10;
      // Each reader writes its tokens, one a line, to a file of its own; then all are printed.
      // Reader 0 reads 7 bytes at a time (dd), the others whole (cat): a short
      // read from 0 and its continuations must stay on one token while the
      // others' reads come between them.
      const script = `
      i=0
      while [ $i -lt ${READERS} ]; do
        if [ $i = 0 ]; then read='dd bs=7 if=/secrets/github/token 2>/dev/null'; else read='cat /secrets/github/token'; fi
        ( j=0; while [ $j -lt ${READS} ]; do echo "$i $(eval "$read")"; j=$((j+1)); done > /tmp/reader.$i ) &
        i=$((i+1))
      done
      wait
      cat /tmp/reader.*
    `;
      const args = [...privateRunArgs(runsc, gw), '--backend', backend];
      // The same grant, with the reader stamped into each token (the native
      // backend alone can tell who reads; fuse-native refuses the caveat).
      const native = backend === 'native';
      if (native)
        writeFileSync(
          args[args.indexOf('--profile') + 1] as string,
          `${upstreamProfile('gvisor-readers')}    readerCaveat: true\n`,
        );
      const result = await mintfsRun(runsc, [...args, '--', 'busybox', 'sh', '-c', script]);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.split('\n').filter((line) => line !== '');
      assert.equal(lines.length, READERS * READS, result.stdout);
      const tokens = lines.map((line) => line.split(' ')[1] ?? '');
      for (let reader = 0; reader < READERS; reader++) {
        const own = lines.filter((line) => line.startsWith(`${reader} `));
        assert.equal(own.length, READS);
        assert.equal(new Set(own).size, READS, `reader ${reader} read one token twice`);
      }
      assert.equal(new Set(tokens).size, tokens.length, 'two reads got one token');
      const keyring = gw.keyring();
      const readers = new Set<string>();
      for (const token of tokens) {
        const verdict = verifyToken(
          token,
          {
            service: 'github',
            host: 'localhost',
            method: 'GET',
            rawPath: '/repos/acme/widgets/pulls',
          },
          { keyById: (id) => keyring.keyById(id), now: new Date() },
        );
        assert.ok(verdict.allowed, `a token the keyring refuses: ${JSON.stringify(verdict)}`);
        const authenticated = authenticateToken(token, (id) => keyring.keyById(id));
        if ('reader' in authenticated && authenticated.reader !== undefined)
          readers.add(authenticated.reader.replace(/ pid=\d+ start=\d+/, ''));
      }
      if (native) {
        // The mount saw the gofer, not the agent: one reader for all 80 reads.
        assert.equal(readers.size, 1, [...readers].join('\n'));
        // ...uid 0 and runsc's executable; its cgroup still names the sandbox's container.
        const [run] = runsIn(result.stderr);
        assert.match(
          [...readers][0] ?? '',
          new RegExp(`^uid=0 gid=0 exe=\\S*runsc cgroup=\\S*${run}`),
        );
      }
      assertNothingLeft(runsc, result.stderr, 1);
    });
});

/**
 * gVisor on KVM: the operator's choice where it works. Debian's runsc (2022)
 * hangs starting a sandbox on KVM on a current kernel although /dev/kvm is
 * there; mintfs run must then fail within its start deadline naming the
 * platform, not hang, and leave nothing behind. What this host gives is
 * asked of it, and each answer is held to what it should do.
 */
describeOnFirstPass('gVisor platforms', () => {
  it('kvm runs where it works, is refused at once without /dev/kvm, and is named and cleaned up where it hangs', async (t) => {
    const runsc = RUNTIMES.find((r) => r.name === 'runsc') as Runtime;
    const gw = await startGatewayFixture(t);
    const started = performance.now();
    const result = await mintfsRun(runsc, [
      ...privateRunArgs(runsc, gw),
      '--gvisor-platform',
      'kvm',
      // Where KVM hangs, the run gives up at this deadline (30 s unless told).
      '--gvisor-start-timeout',
      '4s',
      '--',
      'echo',
      'on-kvm',
    ]);
    const seconds = (performance.now() - started) / 1000;
    if (!existsSync('/dev/kvm')) {
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr.trim(), /^mintfs: --gvisor-platform kvm: \/dev\/kvm is missing/);
      return;
    }
    if (result.code === 0) {
      assert.equal(result.stdout.trim(), 'on-kvm');
    } else {
      assert.match(
        result.stderr,
        /^mintfs: runsc did not start the sandbox within 4 s on the kvm platform; this host cannot run it \(try --gvisor-platform ptrace, or a longer --gvisor-start-timeout on a slow host\)$/m,
      );
      assert.ok(seconds >= 4 && seconds < 30, `gave up after ${seconds} s: ${result.stderr}`);
    }
    assert.match(result.stderr, /"event":"sandbox-start".*"platform":"kvm"/);
    assertNothingLeft(runsc, result.stderr, 1);
  });
});

describe('runtime-specific input', () => {
  it('refuses --image or --rootfs without their runtime, and a missing runsc, in one line', async (t) => {
    const gw = await startGatewayFixture(t);
    const [bwrap, runc, docker] = RUNTIMES as [Runtime, Runtime, Runtime];
    const base = privateRunArgs(bwrap, gw);
    const cases: Array<[string[], RegExp]> = [
      [['--runtime', 'docker'], /^mintfs: --image: name the image to run with --runtime docker$/],
      [['--image', 'x'], /^mintfs: --image: only with --runtime docker$/],
      [
        ['--runtime', 'runc'],
        /^mintfs: --rootfs: name the root file system to run with --runtime runc$/,
      ],
      [['--rootfs', rootfs], /^mintfs: --rootfs: only with --runtime runc or runsc$/],
      [
        ['--runtime', 'runc', '--rootfs', rootfs, '--gvisor-platform', 'ptrace'],
        /^mintfs: --gvisor-platform: only with --runtime runsc$/,
      ],
      [
        ['--runtime', 'runc', '--rootfs', rootfs, '--gvisor-start-timeout', '5s'],
        /^mintfs: --gvisor-start-timeout: only with --runtime runsc$/,
      ],
      [
        ['--runtime', 'runsc', '--rootfs', rootfs, '--gvisor-start-timeout', '500ms'],
        /^mintfs: --gvisor-start-timeout: "500ms" is not a duration from 1s to 10m, such as 30s or 2m$/,
      ],
      [['--runtime', 'runc', '--rootfs', '/'], /^mintfs: --rootfs \/: the host's root is not/],
      [
        ['--runtime', 'runc', '--rootfs', join(gw.dir, 'missing')],
        /^mintfs: --rootfs .*missing: ENOENT/,
      ],
    ];
    let refusals = '';
    for (const [extra, message] of cases) {
      const result = await mintfsRun(runc, [...base, ...extra, '--', 'true']);
      assert.equal(result.code, 2, `${extra.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr.trim(), message);
      refusals += result.stderr;
    }
    // runsc not on the PATH: said plainly, nothing left behind.
    const runsc = await mintfsRun({ ...runc, env: () => ({ PATH: '/nonexistent' }) }, [
      ...base,
      '--runtime',
      'runsc',
      '--rootfs',
      rootfs,
      '--',
      'true',
    ]);
    assert.equal(runsc.code, 3, runsc.stderr);
    assert.match(runsc.stderr, /^mintfs: --runtime runsc: runsc \(gVisor\) is not installed/m);
    // Refused before anything was made for the run.
    assert.deepEqual(runsIn(refusals + runsc.stderr), []);
    // An image the engine cannot get fails the run with Docker's reason.
    const absent = await mintfsRun(docker, [
      ...base,
      '--runtime',
      'docker',
      '--image',
      'mintfs-no-such-image:1',
      '--',
      'true',
    ]);
    assert.equal(absent.code, 3, absent.stderr);
    assert.match(absent.stderr, /\nmintfs: docker create of image mintfs-no-such-image:1 failed: /);
    assertNothingLeft(docker, absent.stderr, 1);
  });

  it('refuses a followed mount whose parent holds anything else (the sandbox would see it)', async (t) => {
    const gw = await startGatewayFixture(t);
    const teardown = teardownOf(t);
    const parent = runTestDir(teardown, 'crowded');
    const mountpoint = join(parent, 'secrets');
    const profile = join(gw.dir, 'shared.yaml');
    writeFileSync(
      profile,
      upstreamProfile('crowded-agent', `uid: ${SHARED_UID}\ngid: ${SHARED_UID}\n`),
    );
    hostMintfs(teardown, ['mount', profile, mountpoint, '--keys', gw.keysDir, '--shared-parent']);
    await pollUntil('the daemon to serve', () => existsSync(join(mountpoint, 'github')), 15_000);
    writeFileSync(join(parent, 'gateway.sock'), '');
    const result = await mintfsRun(RUNTIMES[0] as Runtime, [
      'run',
      '--mount',
      mountpoint,
      '--gateway',
      gatewayConfig(gw),
      '--keys',
      gw.keysDir,
      '--uid',
      String(SHARED_UID),
      '--',
      'true',
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^mintfs: --mount .*secrets: its parent .* also holds "gateway.sock", which the sandbox would see/m,
    );
    assertNothingLeft(RUNTIMES[0] as Runtime, result.stderr, 1);
  });
});

describeOnFirstPass('the containment walkthrough (docs/containment.md)', () => {
  it('runs as printed: a busybox root file system under runc, then imported and run under Docker', async (t) => {
    const gw = await startGatewayFixture(t);
    const dir = tempDir(t);
    // The walkthrough's agent.yaml and gateway.yaml: the fixture's upstream answering for api.github.com.
    writeFileSync(
      join(dir, 'agent.yaml'),
      upstreamProfile('walkthrough-agent').replace('hosts: [localhost]', 'hosts: [api.github.com]'),
    );
    writeFileSync(
      join(dir, 'gateway.yaml'),
      readFileSync(gatewayConfig(gw), 'utf8').replace(
        /^( {4}url: .*)$/m,
        '$1\n    hosts: [api.github.com]',
      ),
    );
    const steps = ['walkthrough-runc', 'walkthrough-docker'].map((name) => walkthroughBlock(name));
    const script = [
      'set -euo pipefail',
      'mintfs() { "$MINTFS_NODE" "$MINTFS_CLI" "$@"; }',
      ...steps.map(
        (code, i) => `echo "== step ${i}"\n${code.replaceAll('/var/lib/mintfs/keys', gw.keysDir)}`,
      ),
    ].join('\n');
    const result = await runAsync(
      'bash',
      ['-c', script],
      undefined,
      {
        ...process.env,
        DOCKER_HOST: engine.host,
        MINTFS_NODE: process.execPath,
        MINTFS_CLI: CLI,
        MINTFS_LOG_LEVEL: 'info',
      },
      dir,
    );
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const [, runc, docker] = result.stdout.split(/== step \d\n/);
    // Each printed the upstream's answer, which the gateway fetched with the real credential.
    for (const [name, out] of [
      ['runc', runc],
      ['docker', docker],
    ] as const)
      assert.match(out ?? '', /"path":"\/repos\/acme\/widgets\/pulls"/, `${name}: ${out}`);
    const answered = gw.upstream.requests.filter((r) => r.url === '/repos/acme/widgets/pulls');
    assert.equal(answered.length, 2);
    for (const r of answered) assert.equal(r.headers.authorization, `token ${CREDENTIAL}`);
    const runs = runsIn(result.stderr);
    assert.equal(runs.length, 2, result.stderr);
    assert.deepEqual(
      runLeftovers(runs, () => [
        ...(RUNTIMES[1] as Runtime).containers(),
        ...(RUNTIMES[2] as Runtime).containers(),
      ]),
      NOTHING_LEFT,
    );
  });
});

/** The shell block of docs/containment.md whose marker names `name` (a walkthrough step). */
function walkthroughBlock(name: string): string {
  const lines = readFileSync(join(REPO_ROOT, 'docs', 'containment.md'), 'utf8').split('\n');
  const marker = lines.findIndex(
    (line) => line.startsWith('<!-- example: ') && line.includes(`as ${name})`),
  );
  assert.ok(marker >= 0, `docs/containment.md has no block marked ${name}`);
  const start = lines.indexOf('```sh', marker) + 1;
  const end = lines.indexOf('```', start);
  assert.ok(start > marker && start <= marker + 3 && end > start, `the block after ${name}`);
  return lines.slice(start, end).join('\n');
}

describeOnFirstPass('the Docker Compose example (mount-profiles/compose)', () => {
  it('runs an agent that reads its token and reaches the upstream through the bridge, and nothing else', async (t) => {
    const teardown = teardownOf(t);
    const gw = await startGatewayFixture(t);
    // One image for both services: busybox, socat (for the bridge), and the
    // /secrets link the example asks agent images for.
    const image = 'mintfs-test-compose:1';
    const root = buildBusyboxRootfs(join(tempDir(t), 'rootfs'));
    addProgram(root, '/usr/bin/socat');
    symlinkSync('/run/mintfs/mount/secrets', join(root, 'secrets'));
    const tarball = join(tempDir(t), 'rootfs.tar');
    execFileSync('tar', ['-C', root, '-cf', tarball, '.']);
    engine.docker(['import', tarball, image]);

    // The host side, as the example's comments say: a mount with a shared parent, a gateway on a socket.
    const agentDir = runTestDir(teardown, 'compose-agent');
    const gatewayDir = runTestDir(teardown, 'compose-gateway');
    const profile = join(gw.dir, 'compose.yaml');
    writeFileSync(
      profile,
      upstreamProfile('compose-agent', `uid: ${SHARED_UID}\ngid: ${SHARED_UID}\n`),
    );
    const gatewayFile = join(gw.dir, 'compose-gateway.yaml');
    writeFileSync(
      gatewayFile,
      readFileSync(gatewayConfig(gw), 'utf8').replace(
        'listen: [127.0.0.1:0]',
        `listen: [unix:${gatewayDir}/gateway.sock]`,
      ),
    );
    hostMintfs(teardown, [
      'mount',
      profile,
      join(agentDir, 'secrets'),
      '--shared-parent',
      '--keys',
      gw.keysDir,
    ]);
    hostMintfs(teardown, ['gateway', gatewayFile, '--keys', gw.keysDir]);
    await pollUntil(
      'the mount and the gateway',
      () =>
        existsSync(join(agentDir, 'secrets', 'github')) &&
        existsSync(join(gatewayDir, 'gateway.sock')),
      15_000,
    );

    const composeDir = join(REPO_ROOT, 'mount-profiles', 'compose');
    const project = `mintfs${process.pid}`;
    const env = {
      ...process.env,
      DOCKER_HOST: engine.host,
      AGENT_IMAGE: image,
      BRIDGE_IMAGE: image,
      AGENT_UID: String(SHARED_UID),
      MINTFS_AGENT_DIR: agentDir,
      MINTFS_GATEWAY_DIR: gatewayDir,
    };
    const compose = (args: string[]) =>
      runAsync('docker-compose', ['--project-name', project, ...args], undefined, env, composeDir);
    teardown.add(() => compose(['down', '--volumes', '--remove-orphans']));
    const script = `
      echo "uid=$(id -u)"
      grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -d ' \\t' | sed 's/:/=/'
      T=$(cat /secrets/github/token); echo "token=\${#T}"
      echo "status=$(wget -q -S -O /dev/null --header "Authorization: Bearer $T" http://localhost/repos/acme/widgets/pulls 2>&1 | grep -c 'HTTP/1.1 200')"
      echo "routes=$(wc -l < /proc/net/route)"
      ls /run/mintfs/gateway >/dev/null 2>&1; echo "socket-dir=$?"
      ( echo x > /secrets/github/token ) 2>/dev/null; echo "write=$?"
      ( echo x > /bin/x ) 2>/dev/null; echo "rootfs-write=$?"
    `;
    const result = await compose(['run', '--rm', 'agent', 'sh', '-c', script]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const out = fields(result.stdout);
    assert.equal(out.uid, String(SHARED_UID));
    assert.equal(out.CapEff, '0000000000000000');
    assert.equal(out.NoNewPrivs, '1');
    assert.equal(out.Seccomp, '2');
    assert.ok(Number(out.token) > 100, result.stdout);
    assert.equal(out.status, '1', 'the request through the bridge and gateway succeeded');
    assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
    assert.equal(out.routes, '1', 'a route out');
    assert.notEqual(out['socket-dir'], '0', "the gateway's socket is in the agent");
    assert.notEqual(out.write, '0');
    assert.notEqual(out['rootfs-write'], '0');
    const down = await compose(['down', '--volumes', '--remove-orphans']);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(RUNTIMES[2]?.containers(), [], 'compose down left containers');
  });
});
