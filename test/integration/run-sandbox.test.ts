/**
 * `mintfs run`: a command in a real bubblewrap sandbox, with a real token
 * mount and gateway in front of the real HTTPS test upstream.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RUN_DIR } from '../../src/contain/run-sandbox.js';
import { mountedPaths } from '../../src/fuse/mount-table.js';
import { diagnostics, runCli } from '../helpers/cli.js';
import {
  CREDENTIAL,
  startGatewayFixture,
  upstreamProfile,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { runAsync, type Completed } from '../helpers/spawn.js';
import { CLI } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';

const PROFILE = upstreamProfile('sandboxed-agent');

/** Writes a profile and a gateway config for the fixture's upstream; returns `mintfs run` args. */
function runArgs(gw: GatewayFixture): string[] {
  const profile = join(gw.dir, 'agent.yaml');
  writeFileSync(profile, PROFILE);
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
      '',
    ].join('\n'),
  );
  return ['run', '--profile', profile, '--gateway', config, '--keys', gw.keysDir];
}

function mintfsRun(args: readonly string[], onSpawn?: (pid: number) => void): Promise<Completed> {
  return runAsync(process.execPath, [CLI, ...args], onSpawn);
}

function runDirEntries(): string[] {
  return existsSync(RUN_DIR) ? readdirSync(RUN_DIR) : [];
}

describe('mintfs run: a command in a bubblewrap sandbox', () => {
  it('reads tokens with cat, reaches the upstream only through the gateway, and is contained', async (t) => {
    const gw = await startGatewayFixture(t);
    const before = runDirEntries();
    const script = `
      set -u
      echo "uid=$(id -u) gid=$(id -g)"
      grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
      T=$(cat /secrets/github/token); echo "cat=\${#T}"
      echo "busybox=$(busybox cat /secrets/github/token | wc -c)"
      echo "status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T" http://localhost/repos/acme/widgets/pulls)"
      curl -s -m 5 --noproxy '*' -o /dev/null https://localhost:${gw.upstream.port}/ ; echo "direct-local=$?"
      grep -q -v '^Iface' /proc/net/route; echo "route-out=$?"
      ( echo x > /secrets/github/token ) 2>/dev/null; echo "write=$?"
      ( echo x > /secrets/new ) 2>/dev/null; echo "create=$?"
      ls ${gw.keysDir} >/dev/null 2>&1; echo "keys=$?"
      cat ${gw.credentialFile} >/dev/null 2>&1; echo "credential=$?"
      unshare --user true 2>/dev/null; echo "unshare=$?"
      curl -sS https://localhost/repos/acme/widgets 2>&1 | grep -q 'CONNECT tunnel failed, response 405'; echo "connect-refused=$?"
      exit 7
    `;
    const result = await mintfsRun([...runArgs(gw), '--', 'bash', '-c', script]);
    assert.equal(result.code, 7, result.stderr);
    const out = Object.fromEntries(
      result.stdout
        .split('\n')
        .flatMap((line) => line.split(/\s+/))
        .filter((word) => /^[A-Za-z-]+[=:]/.test(word) || /^\d+$/.test(word))
        .join(' ')
        .replace(/(CapEff|NoNewPrivs|Seccomp): /g, '$1=')
        .split(' ')
        .filter((word) => word.includes('='))
        .map((word) => word.split('=') as [string, string]),
    );
    assert.equal(out.uid, '65534');
    assert.equal(out.gid, '65534');
    assert.equal(out.CapEff, '0000000000000000');
    assert.equal(out.NoNewPrivs, '1');
    assert.equal(out.Seccomp, '2');
    assert.ok(Number(out.cat) > 100, 'coreutils cat read a token');
    assert.equal(out.busybox, out.cat, 'busybox cat read a whole token');
    assert.equal(out.status, '200', 'the request through the gateway succeeded');
    assert.equal(gw.upstream.requests.at(-1)?.headers.authorization, `token ${CREDENTIAL}`);
    assert.notEqual(out['direct-local'], '0', 'no route to the upstream but the gateway');
    // No route at all (not probed by sending: tests send only to this machine's loopback).
    assert.notEqual(out['route-out'], '0', 'no network: the routing table is empty');
    assert.notEqual(out.write, '0');
    assert.notEqual(out.create, '0');
    assert.notEqual(out.keys, '0', 'the keyring is not in the sandbox');
    assert.notEqual(out.credential, '0', 'the credential file is not in the sandbox');
    assert.notEqual(out.unshare, '0', 'seccomp denies new namespaces');
    assert.equal(out['connect-refused'], '0', 'https:// through the proxy is refused with 405');
    // Everything it started is gone: mount, gateway socket, run directory.
    assert.deepEqual(runDirEntries(), before);
    assert.ok(!mountedPaths().some((p) => p.startsWith(RUN_DIR)));
  });

  it('passes signals to the command and leaves with its status', async (t) => {
    const gw = await startGatewayFixture(t);
    let pid = 0;
    const running = mintfsRun([...runArgs(gw), '--', 'sleep', '60'], (p) => (pid = p));
    await pollUntil(
      'the sandboxed sleep',
      () => mountedPaths().some((p) => p.startsWith(RUN_DIR)) && pid > 0,
    );
    // The sandbox starts after the mount: wait until sleep runs as the sandbox user.
    await pollUntil(
      'sleep in the sandbox',
      async () => (await runAsync('pgrep', ['-u', '65534', '-x', 'sleep'])).stdout.trim() !== '',
    );
    process.kill(pid, 'SIGTERM');
    const result = await running;
    assert.equal(result.code, 128 + 15, result.stderr);
    assert.ok(!mountedPaths().some((p) => p.startsWith(RUN_DIR)));
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
