/**
 * The runc path (scripts/runc/): a real container with a small rootfs (the
 * host's /usr bound read-only, so busybox, coreutils and curl exist), the
 * token mount's shared parent bound as a slave, no network but the gateway
 * bridge, no capabilities, seccomp and cgroup limits. Checked from inside,
 * as the container's non-root user, with `runc exec`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startMountFixture } from '../helpers/mount-fixture.js';
import { CREDENTIAL, startGatewayFixture, upstreamProfile } from '../helpers/gateway-fixture.js';
import { runAsync, type Completed } from '../helpers/spawn.js';
import { REPO_ROOT as ROOT } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir, teardownOf, type Teardown } from '../helpers/temp.js';

const RUN_AGENT = join(ROOT, 'scripts', 'runc', 'run-agent.sh');
const AGENT_UID = 1000;

const PROFILE = upstreamProfile('contained-agent', `uid: ${AGENT_UID}\ngid: ${AGENT_UID}\n`);

const run = runAsync;

/** A rootfs of symlinks into /usr (bound from the host), an agent user, and /secrets. */
function buildRootfs(teardown: Teardown): string {
  const rootfs = join(tempDir(teardown, 'mintfs-rootfs-'), 'rootfs');
  for (const dir of ['proc', 'dev', 'sys', 'tmp', 'run', 'usr', 'etc'])
    mkdirSync(join(rootfs, dir), { recursive: true });
  for (const dir of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${dir}`, join(rootfs, dir));
  symlinkSync('/run/mintfs/secrets', join(rootfs, 'secrets'));
  writeFileSync(join(rootfs, 'etc/passwd'), `agent:x:${AGENT_UID}:${AGENT_UID}::/tmp:/bin/sh\n`);
  writeFileSync(join(rootfs, 'etc/group'), `agent:x:${AGENT_UID}:\n`);
  copyFileSync('/etc/nsswitch.conf', join(rootfs, 'etc/nsswitch.conf'));
  return rootfs;
}

let containers = 0;

async function startContainer(
  teardown: Teardown,
  options: { rootfs: string; mintfsDir: string; socket: string },
): Promise<{ name: string; exec: (script: string) => Promise<Completed>; agent: ChildProcess }> {
  const name = `mintfs-t${process.pid}-${++containers}`;
  const agent = spawn(
    RUN_AGENT,
    [
      '--name',
      name,
      '--rootfs',
      options.rootfs,
      '--mintfs-dir',
      options.mintfsDir,
      '--gateway-socket',
      options.socket,
      '--uid',
      String(AGENT_UID),
      '--memory',
      '64M',
      '--pids',
      '32',
      '--cpus',
      '0.5',
      '--ro-bind',
      '/usr:/usr',
      '--',
      // pid 1 must reap orphans (bash does; sleep would leave zombies that count as pids).
      'bash',
      '-c',
      'while :; do sleep 1; done',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  agent.stdout?.setEncoding('utf8').on('data', (c: string) => (output += c));
  agent.stderr?.setEncoding('utf8').on('data', (c: string) => (output += c));
  const exited = new Promise<void>((resolve) => agent.once('close', () => resolve()));
  teardown.add(async () => {
    await run('runc', ['kill', name, 'KILL']);
    await exited;
  });
  await pollUntil(
    'the container to run',
    async () => {
      if (agent.exitCode !== null) throw new Error(`run-agent exited ${agent.exitCode}: ${output}`);
      return (await run('runc', ['state', name])).stdout.includes('"running"');
    },
    20_000,
  );
  return { name, agent, exec: (script) => run('runc', ['exec', name, 'sh', '-c', script]) };
}

describe('runc: an agent container', () => {
  it('reads tokens, reaches the upstream only through the gateway, is contained and limited, and follows a daemon restart', async (t) => {
    const teardown = teardownOf(t);
    const gw = await startGatewayFixture(t);
    const mount = await startMountFixture(t, PROFILE, { keysDir: gw.keysDir, sharedParent: true });
    const container = await startContainer(teardown, {
      rootfs: buildRootfs(teardown),
      mintfsDir: join(mount.dir, 'agent'),
      socket: gw.socketPath,
    });
    const exec = container.exec;

    const who = await exec(`id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status`);
    assert.equal(who.code, 0, who.stderr);
    assert.deepEqual(
      who.stdout
        .trim()
        .split('\n')
        .map((l) => l.replace(/\s+/g, ' ')),
      [String(AGENT_UID), 'CapEff: 0000000000000000', 'NoNewPrivs: 1', 'Seccomp: 2'],
    );

    const tokens = await exec('cat /secrets/github/token; echo; busybox cat /secrets/github/token');
    assert.equal(tokens.code, 0, tokens.stderr);
    const [viaCat, viaBusybox] = tokens.stdout.split('\n');
    assert.ok((viaCat?.length ?? 0) > 100);
    assert.equal(viaBusybox?.length, viaCat?.length);
    assert.notEqual(viaBusybox, viaCat, 'each read is a new token');

    const call = await exec(
      `curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat /secrets/github/token)" http://localhost/repos/acme/widgets/pulls`,
    );
    assert.equal(call.stdout, '200', call.stderr);
    assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);

    const escapes = await exec(`
      curl -s -m 5 --noproxy '*' -o /dev/null https://localhost:${gw.upstream.port}/; echo "direct-local=$?"
      grep -q -v '^Iface' /proc/net/route; echo "route-out=$?"
      (echo x > /secrets/github/token) 2>/dev/null; echo "write=$?"
      (echo x > /secrets/new) 2>/dev/null; echo "create=$?"
      ls ${gw.keysDir} >/dev/null 2>&1; echo "keys=$?"
      cat ${gw.credentialFile} >/dev/null 2>&1; echo "credential=$?"
      ls ${gw.socketPath} >/dev/null 2>&1; echo "socket=$?"
      (echo x > /etc/passwd) 2>/dev/null; echo "rootfs=$?"
      unshare --user true 2>/dev/null; echo "unshare=$?"
    `);
    const results = Object.fromEntries(
      escapes.stdout
        .trim()
        .split('\n')
        .map((line) => line.split('=') as [string, string]),
    );
    for (const [what, code] of Object.entries(results))
      assert.notEqual(code, '0', `${what} must fail`);
    assert.equal(Object.keys(results).length, 9);

    const memory = await exec('head -c 300000000 /dev/zero | tail > /dev/null');
    assert.equal(memory.code, 137, `the memory bomb is killed by its cgroup: ${memory.stderr}`);

    // A fork bomb of short sleeps: the cgroup caps it at 32 processes.
    const stats = async () =>
      (
        JSON.parse((await run('runc', ['events', '--stats', container.name])).stdout) as {
          data: { pids: { current: number; limit: number } };
        }
      ).data.pids;
    const bomb = exec('for i in $(seq 100); do sleep 3 & done; wait');
    const peak = await pollUntil('the bomb to reach the limit', async () => {
      const pids = await stats();
      return pids.current >= 30 ? pids : undefined;
    });
    assert.equal(peak.limit, 32);
    assert.ok(peak.current <= 32, `pids capped: ${peak.current}`);
    const ended = await bomb;
    assert.match(ended.stderr, /Cannot fork|Resource temporarily unavailable/);
    await pollUntil('the bomb to end', async () => (await stats()).current < 5, 15_000);

    // Restart the mount daemon while the container keeps running.
    const old = mount.child;
    const exited = new Promise((resolve) => old.once('exit', resolve));
    old.kill('SIGTERM');
    await exited;
    await mount.restart();
    const after = await pollUntil('a read after the restart', async () => {
      const res = await exec('cat /secrets/github/token');
      return res.code === 0 && res.stdout.length > 100 ? res : undefined;
    });
    assert.equal(after.stdout.length, viaCat?.length);
    assert.equal(container.agent.exitCode, null, 'the container kept running');
  });

  it('run-agent.sh refuses bad input with one line', async () => {
    const result = await run(RUN_AGENT, ['--name', 'BAD NAME', '--', 'true']);
    assert.equal(result.code, 2);
    assert.match(result.stderr.trim(), /^run-agent: --name: /);
    const config = await run(process.execPath, [
      join(ROOT, 'dist', 'scripts', 'runc', 'make-config.js'),
      '--rootfs',
      '/r',
      '--mintfs-dir',
      '/m',
      '--netns',
      '/run/netns/x',
      '--uid',
      '0',
      '--',
      'true',
    ]);
    assert.equal(config.code, 2);
    assert.match(config.stderr.trim(), /^make-config: --uid: must not be root \(0\)/);
  });
});

describe('AppArmor profile', () => {
  it('parses with apparmor_parser (this kernel has no AppArmor to load it into)', async (t) => {
    const profile = join(ROOT, 'scripts', 'apparmor', 'mintfs-agent');
    const good = await run('apparmor_parser', ['-Q', '-K', profile]);
    assert.equal(good.code, 0, good.stderr);
    // The check is real: a broken copy fails.
    const broken = join(tempDir(t), 'broken');
    writeFileSync(broken, 'profile broken { /** rix, \n');
    assert.notEqual((await run('apparmor_parser', ['-Q', '-K', broken])).code, 0);
  });
});
