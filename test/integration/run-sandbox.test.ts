/**
 * `mintfs run`: a command in a real bubblewrap sandbox, with a real token
 * mount and gateway in front of the real HTTPS test upstream.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { RUN_DIR } from '../../src/contain/run-sandbox.js';
import { RUN_UID_COUNT, RUN_UID_FIRST } from '../../src/contain/run-uid.js';
import { diagnostics, runCli } from '../helpers/cli.js';
import {
  CREDENTIAL,
  runGatewayConfig,
  startGatewayFixture,
  upstreamProfile,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { NOTHING_LEFT, runDirEntries, runLeftovers, runsIn } from '../helpers/run-leftovers.js';
import { runAsync, type Completed } from '../helpers/spawn.js';
import { CLI } from '../helpers/paths.js';
import { EXPECTED_TRUST_VARIABLES } from '../helpers/trust-variables.js';
import { startMountFixture } from '../helpers/mount-fixture.js';
import { pollUntil } from '../helpers/poll.js';

const PROFILE = upstreamProfile('sandboxed-agent');

/** Writes a profile and a gateway config for the fixture's upstream; returns `mintfs run` args. */
function runArgs(gw: GatewayFixture, intercept?: { hosts: string[] }): string[] {
  const profile = join(gw.dir, 'agent.yaml');
  writeFileSync(
    profile,
    intercept === undefined
      ? PROFILE
      : PROFILE.replace('hosts: [localhost]', `hosts: [${intercept.hosts.join(', ')}]`),
  );
  const config = runGatewayConfig(gw, intercept?.hosts);
  return ['run', '--profile', profile, '--gateway', config, '--keys', gw.keysDir];
}

function mintfsRun(
  args: readonly string[],
  onSpawn?: (pid: number) => void,
  env?: NodeJS.ProcessEnv,
): Promise<Completed> {
  return runAsync(process.execPath, [CLI, ...args], onSpawn, env);
}

/** Host pids of processes whose command line is exactly `args`, running as a uid of the run range. */
async function sandboxedPids(args: string): Promise<number[]> {
  const ps = await runAsync('ps', ['-eo', 'pid=,uid=,args=']);
  return ps.stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .filter(
      ([, , uid, command]) =>
        command === args &&
        Number(uid) >= RUN_UID_FIRST &&
        Number(uid) < RUN_UID_FIRST + RUN_UID_COUNT,
    )
    .map(([, pid]) => Number(pid));
}

/** What the runs named on `stderr` left: nothing, and there were `expected` of them. */
function assertNothingLeft(stderr: string, expected: number): void {
  const runs = runsIn(stderr);
  assert.equal(runs.length, expected, `runs named on stderr: ${runs.join(', ')}`);
  assert.deepEqual(runLeftovers(runs), NOTHING_LEFT);
}

// What every runtime must give (uid, privileges, tokens, network, writes,
// limits, signals, cleanup, daemon restarts) is containment.test.ts; here,
// what is particular to the bubblewrap sandbox.
describe('mintfs run: a command in a bubblewrap sandbox', () => {
  it('with HTTPS interception: tools reach https://api.github.com, trusting only the CA certificate', async (t) => {
    const hosts = ['api.github.com'];
    const gw = await startGatewayFixture(t, { intercept: { hosts } });
    const caDir = join(gw.dir, 'intercept-ca');
    const script = `
      T=$(cat /secrets/github/token)
      echo "curl=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T" https://api.github.com/repos/acme/widgets/pulls)"
      echo "python=$(/usr/bin/python3 -c 'import requests,sys; print(requests.get("https://api.github.com/repos/acme/widgets/pulls", headers={"Authorization": "Bearer " + sys.argv[1]}).status_code)' "$T")"
      for v in SSL_CERT_FILE CURL_CA_BUNDLE REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO PIP_CERT AWS_CA_BUNDLE HTTPS_PROXY https_proxy NODE_USE_ENV_PROXY; do echo "$v=$(printenv $v)"; done
      echo "trust=$(find /etc/ssl -type f | tr '\n' ,)"
      echo "bundle-certs=$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt)"
      grep -rls 'PRIVATE KEY' /etc /work /tmp /run 2>/dev/null | head -1 | sed 's/^/key-file=/'
      ls ${caDir} >/dev/null 2>&1; echo "ca-dir=$?"
    `;
    const result = await mintfsRun([...runArgs(gw, { hosts }), '--', 'bash', '-c', script]);
    assert.equal(result.code, 0, result.stderr);
    const out = Object.fromEntries(
      result.stdout
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    assert.equal(out.curl, '200', result.stdout);
    assert.equal(out.python, '200', result.stdout);
    assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
    for (const name of EXPECTED_TRUST_VARIABLES)
      assert.equal(out[name], '/etc/ssl/certs/ca-certificates.crt', name);
    assert.equal(out.HTTPS_PROXY, 'http://127.0.0.1:8787');
    assert.equal(out.https_proxy, 'http://127.0.0.1:8787');
    assert.equal(out.NODE_USE_ENV_PROXY, '1');
    // The only trust is the CA certificate: one certificate, the host's bundle absent.
    assert.equal(out.trust, '/etc/ssl/certs/ca-certificates.crt,');
    assert.equal(out['bundle-certs'], '1');
    assert.equal(out['key-file'], undefined, 'a private key is readable in the sandbox');
    assert.notEqual(out['ca-dir'], '0', 'the CA directory is reachable');
    // The certificate's copy goes with the run directory.
    assertNothingLeft(result.stderr, 1);
  });

  it('passes signals to the command and leaves with its status', async (t) => {
    const gw = await startGatewayFixture(t);
    let pid = 0;
    const running = mintfsRun([...runArgs(gw), '--', 'sleep', '60'], (p) => (pid = p));
    await pollUntil('the run to start', () => pid > 0);
    // The sandbox starts after the mount: wait until sleep runs as the sandbox user.
    await pollUntil(
      'sleep in the sandbox',
      async () => (await sandboxedPids('sleep 60')).length > 0,
    );
    process.kill(pid, 'SIGTERM');
    const result = await running;
    assert.equal(result.code, 128 + 15, result.stderr);
    assertNothingLeft(result.stderr, 1);
  });

  it("relays piped stdin and stdout whole, and ends though the caller's stdin stays open", async (t) => {
    const gw = await startGatewayFixture(t);
    const run = (script: string, input?: string) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, ...runArgs(gw), '--', 'sh', '-c', script], {
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
        child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        child.once('close', (code) => resolve({ code, stdout, stderr }));
        // Left open when there is no input: the run must end with its command anyway.
        if (input !== undefined) child.stdin.end(input);
        t.after(() => child.kill('SIGKILL'));
      });
    const piped = await run(
      'echo "in=$(wc -c)"; echo "fd0=$(readlink /proc/self/fd/0)"; head -c 300000 /dev/zero | tr "\\0" a',
      'x'.repeat(100_000),
    );
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /^in=100000\n/);
    assert.match(piped.stdout, /fd0=(pipe|socket):\[\d+\]\n/);
    assert.equal(piped.stdout.split('\n').at(-1)?.length, 300_000, 'the output arrived whole');
    const open = await run('echo done');
    assert.equal(open.code, 0, open.stderr);
    assert.equal(open.stdout, 'done\n');
    assertNothingLeft(piped.stderr + open.stderr, 2);
  });

  it('refuses bad input with one line and exit 2, before mounting anything', () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', '--profile', 'p.yaml', '--gateway', 'g.yaml'], /name the command after --/],
      [['run', '--gateway', 'g.yaml', '--', 'true'], /--profile: give --profile or --mount/],
      [
        ['run', '--profile', 'p', '--mount', 'm', '--gateway', 'g', '--', 'true'],
        /give --profile or --mount/,
      ],
      [
        ['run', '--profile', 'p', '--gateway', 'g', '--uid', '0', '--', 'true'],
        /--uid: must not be root/,
      ],
    ];
    for (const [args, message] of cases) {
      const result = runCli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      const lines = diagnostics(result.stderr);
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0] as string, message);
    }
  });
});

describe('mintfs run: from inside, as a hostile agent', () => {
  it('sees nothing of the operator environment, nor host paths, in any process', async (t) => {
    const gw = await startGatewayFixture(t);
    const args = runArgs(gw);
    // The gateway credential from the environment, as `credential: { env: NAME }` does.
    const config = join(gw.dir, 'env-gateway.yaml');
    writeFileSync(
      config,
      readFileSync(join(gw.dir, 'run-gateway.yaml'), 'utf8').replace(
        /credential: \{ file: [^}]+\}/,
        'credential: { env: MINTFS_TEST_GH_CREDENTIAL }',
      ),
    );
    args[args.indexOf('--gateway') + 1] = config;
    const marker = 'operator-secret-7f3a9c';
    // The patterns travel base64-encoded, so the script's own command line does not hold them.
    const patterns = Buffer.from(
      [marker, CREDENTIAL, '/run/mintfs-run', gw.dir].join('\n'),
    ).toString('base64');
    const script = `
      echo ${patterns} | base64 -d > /tmp/patterns
      head -2 /tmp/patterns > /tmp/operator; tail -2 /tmp/patterns > /tmp/hostpaths
      for p in /proc/[0-9]*; do cat $p/environ $p/cmdline 2>/dev/null; done | tr '\\0' '\\n' > /tmp/seen
      echo "pids=$(ls -d /proc/[0-9]* | wc -l)"
      echo "operator=$(grep -c -F -f /tmp/operator /tmp/seen)"
      echo "hostpaths=$(grep -c -F -f /tmp/hostpaths /tmp/seen)"
      echo "pid1=$(tr '\\0' ' ' </proc/1/cmdline | cut -c1-24)"
    `;
    const result = await mintfsRun([...args, '--', 'bash', '-c', script], undefined, {
      ...process.env,
      MINTFS_TEST_MARKER: marker,
      MINTFS_TEST_GH_CREDENTIAL: CREDENTIAL,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(Number(/pids=(\d+)/.exec(result.stdout)?.[1]) >= 3, result.stdout);
    assert.match(result.stdout, /operator=0\b/);
    assert.match(result.stdout, /hostpaths=0\b/);
    // pid 1 is mintfs-run-init, bound from the run's stage (not bubblewrap).
    assert.match(result.stdout, /pid1=\/run\/mintfs\/init --no-wa/);
  });

  it('runs as a fresh uid no host process has, in a run directory only that uid can enter', async (t) => {
    const gw = await startGatewayFixture(t);
    let pid = 0;
    const running = mintfsRun([...runArgs(gw), '--', 'sleep', '31'], (p) => (pid = p));
    const [sleeper] = await pollUntil('the sandboxed sleep', async () => {
      const pids = await sandboxedPids('sleep 31');
      return pids.length > 0 ? pids : undefined;
    });
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${sleeper}/status`, 'utf8'))?.[1]);
    const hostUsers = (await runAsync('ps', ['-eo', 'uid='])).stdout
      .split('\n')
      .filter((u) => Number(u) === uid);
    // Only the sandbox's own processes (bwrap, its pid 1 mintfs-run-init, socat, sleep) have it.
    const sandboxed = (await runAsync('ps', ['-eo', 'uid=,comm='])).stdout
      .split('\n')
      .filter((line) => Number(line.trim().split(/\s+/)[0]) === uid)
      .map((line) => line.trim().split(/\s+/)[1]);
    assert.equal(hostUsers.length, sandboxed.length);
    for (const comm of sandboxed) assert.match(comm ?? '', /^(bwrap|init|bash|socat|sleep)$/);
    // The run directory of this sandbox's uid (other files' runs may be under way too).
    const dir = runDirEntries().find((name) => {
      try {
        return statSync(join(RUN_DIR, name)).uid === uid;
      } catch {
        return false; // another run's, removed as we looked
      }
    });
    assert.ok(dir !== undefined, `no run directory owned by uid ${uid}`);
    const info = statSync(join(RUN_DIR, dir));
    assert.equal(info.uid, uid);
    assert.equal(info.mode & 0o777, 0o700);
    // Another uid (the host's nobody) cannot enter it.
    const nobody = await runAsync('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'ls',
      join(RUN_DIR, dir),
    ]);
    assert.notEqual(nobody.code, 0);
    process.kill(pid, 'SIGTERM');
    await running;
  });

  it('refuses --uid of a host process, and a profile or config the sandbox could write', async (t) => {
    const gw = await startGatewayFixture(t);
    const args = runArgs(gw);
    // A host daemon running as uid 4242.
    const daemon = spawn(
      'setpriv',
      ['--reuid=4242', '--regid=4242', '--clear-groups', 'sleep', '60'],
      {
        stdio: 'ignore',
      },
    );
    t.after(() => daemon.kill('SIGKILL'));
    await pollUntil(
      'the host daemon',
      () =>
        readFileSync(`/proc/${daemon.pid}/status`, 'utf8').includes('\tUid:\t4242') ||
        /^Uid:\s+4242/m.test(readFileSync(`/proc/${daemon.pid}/status`, 'utf8')),
    );
    const refused = runCli([...args, '--uid', '4242', '--', 'true']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(diagnostics(refused.stderr)[0] ?? '', /host process \d+ runs as this uid/);
    const workdir = join(gw.dir, 'work');
    mkdirSync(workdir);
    const inside = join(workdir, 'agent.yaml');
    writeFileSync(inside, PROFILE);
    const result = runCli([
      ...args.map((a) => (a.endsWith('agent.yaml') ? inside : a)),
      '--workdir',
      workdir,
      '--',
      'true',
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      diagnostics(result.stderr)[0] ?? '',
      /inside --workdir .* which the sandbox can write/,
    );
    // Refused before anything was made for it.
    assert.deepEqual(runsIn(result.stderr), []);
  });

  it('a --mount or --gateway-socket the sandbox user cannot reach is refused up front, naming it', async (t) => {
    const gw = await startGatewayFixture(t);
    // The fixture's mount: files 0440 owned by root, which a fresh run uid cannot read.
    const mount = await startMountFixture(t, upstreamProfile('sandboxed-agent'), {
      keysDir: gw.keysDir,
    });
    runArgs(gw);
    const config = join(gw.dir, 'run-gateway.yaml');
    const unreadable = await mintfsRun([
      'run',
      '--mount',
      mount.mountpoint,
      '--gateway',
      config,
      '--keys',
      gw.keysDir,
      '--',
      'true',
    ]);
    assert.equal(unreadable.code, 2, unreadable.stderr);
    assert.match(
      diagnostics(unreadable.stderr)[0] ?? '',
      new RegExp(
        `--mount ${mount.mountpoint}: the sandbox user \\(uid \\d+\\) cannot read ${mount.mountpoint}/github/token`,
      ),
    );
    // The fixture gateway's socket is root's (0660): unreachable too.
    const socket = await mintfsRun([
      'run',
      '--profile',
      join(gw.dir, 'agent.yaml'),
      '--gateway-socket',
      gw.socketPath,
      '--keys',
      gw.keysDir,
      '--',
      'true',
    ]);
    assert.equal(socket.code, 2, socket.stderr);
    assert.match(
      diagnostics(socket.stderr)[0] ?? '',
      /--gateway-socket .*: the sandbox user \(uid \d+\) cannot connect to it/,
    );
    assertNothingLeft(unreadable.stderr + socket.stderr, 2);
  });

  it(
    'contains fork and memory bombs, and denies io_uring and vsock',
    { timeout: 120_000 },
    async (t) => {
      const gw = await startGatewayFixture(t);
      const script = `
      python3 - <<'PY'
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
r = libc.syscall(425, 4, ctypes.c_void_p(0))  # io_uring_setup
print("io_uring", r, ctypes.get_errno())
try:
    socket.socket(40, socket.SOCK_STREAM)  # AF_VSOCK
    print("vsock 0")
except OSError as e:
    print("vsock", e.errno)
PY
      python3 - <<'PY'
import os, time
n = 0
for i in range(100):
    try:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        n += 1
    except OSError:
        pass
print("forks=%d" % n)
PY
      python3 -c 'b = bytearray(512 * 1024 * 1024); print("allocated")' >/dev/null 2>&1; echo "memory=$?"
    `;
      const result = await mintfsRun([
        ...runArgs(gw),
        '--pids',
        '32',
        '--memory',
        '256M',
        '--',
        'bash',
        '-c',
        script,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /io_uring -1 1\b/, 'io_uring_setup: EPERM');
      assert.match(result.stdout, /vsock 97\b/, 'socket(AF_VSOCK): EAFNOSUPPORT');
      const forks = Number(/forks=(\d+)/.exec(result.stdout)?.[1]);
      assert.ok(forks < 100, `the pids limit stopped some of 100 forks (${forks} started)`);
      assert.match(result.stdout, /memory=137/, 'the memory bomb was killed');
      assertNothingLeft(result.stderr, 1);
    },
  );

  it(
    'an interrupt reaches the whole tree: sh -c sleep stops at once, nothing left behind',
    { timeout: 60_000 },
    async (t) => {
      const gw = await startGatewayFixture(t);
      let pid = 0;
      const running = mintfsRun(
        [...runArgs(gw), '--', 'sh', '-c', 'sleep 20; echo done'],
        (p) => (pid = p),
      );
      await pollUntil(
        'sleep in the sandbox',
        async () => (await sandboxedPids('sleep 20')).length > 0,
      );
      const sent = Date.now();
      process.kill(pid, 'SIGINT');
      const result = await running;
      assert.ok(Date.now() - sent < 4_000, 'stopped well before the sleep would end');
      assert.equal(result.code, 130, result.stderr);
      assert.deepEqual(await sandboxedPids('sleep 20'), []);
      assertNothingLeft(result.stderr, 1);
    },
  );

  it(
    'interrupted at any point of start-up, leaves no mount, directory, cgroup or process',
    { timeout: 180_000 },
    async (t) => {
      const gw = await startGatewayFixture(t);
      for (const delayMs of [0, 50, 100, 200, 300, 450, 600, 800, 1000, 1300]) {
        let pid = 0;
        const running = mintfsRun([...runArgs(gw), '--', 'sleep', '32'], (p) => (pid = p));
        await pollUntil('the run to start', () => pid > 0);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        process.kill(pid, 'SIGINT');
        const result = await running;
        // Killed by the signal itself (null) before Node installed any handler, else 130.
        assert.ok(
          result.code === 130 || result.code === null,
          `after ${delayMs} ms: exit ${result.code}: ${result.stderr}`,
        );
        // Interrupted before or after it prepared its directory: either way, nothing of it is left.
        const runs = runsIn(result.stderr);
        assert.ok(runs.length <= 1, result.stderr);
        assert.deepEqual(runLeftovers(runs), NOTHING_LEFT, `after ${delayMs} ms`);
        assert.deepEqual(await sandboxedPids('sleep 32'), [], `a process left after ${delayMs} ms`);
      }
    },
  );
});
