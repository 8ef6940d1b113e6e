/**
 * What only the native backend can do, because it knows who reads: every
 * mint's audit line names the reader (uid, gid, pid, start time, executable,
 * cgroup); `readers` rules refuse other readers with EACCES and an audit line
 * (root included); a `reader` caveat carries the reader to the gateway's log.
 * fuse-native refuses such profiles rather than serve them to anyone. And the
 * daemon can read its own mount from its JavaScript thread without hanging.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startMount } from '../../src/daemon/mount-daemon.js';
import { nativeBackend } from '../../src/fuse/native-backend.js';
import { initKeyring } from '../../src/keys/keyring.js';
import { createLogger } from '../../src/log/logger.js';
import { PIPE_BUF } from '../../src/log/write-together.js';
import { decodeToken } from '../../src/token/token-text.js';
import { diagnostics, runCli } from '../helpers/cli.js';
import { bearerGet, startGatewayFixture, upstreamProfile } from '../helpers/gateway-fixture.js';
import { startMountFixture, type MountFixture } from '../helpers/mount-fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { teardownOf, tempDir } from '../helpers/temp.js';

const CAT = realpathSync('/usr/bin/cat');
const BUSYBOX = realpathSync('/usr/bin/busybox');

function profileWith(fileLines: string): string {
  return `agent: test-agent
files:
  github/token:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/repos/**"]
${fileLines
  .split('\n')
  .filter((line) => line !== '')
  .map((line) => `    ${line}`)
  .join('\n')}
`;
}

interface AuditLine {
  event: string;
  file: string;
  tokenId?: string;
  reason?: string;
  error?: string;
  reader: {
    uid: number;
    gid: number;
    pid: number;
    startTicks: number;
    exe: string;
    cgroup: string;
  };
}

function auditLines(fixture: MountFixture, event: string): AuditLine[] {
  return fixture
    .stderr()
    .split('\n')
    .filter((line) => line.includes(`"event":"${event}"`))
    .map((line) => JSON.parse(line) as AuditLine);
}

/** The audit line of the reader with this pid (they are written within tens of ms). */
function auditFor(fixture: MountFixture, event: string, pid: number): Promise<AuditLine> {
  return pollUntil(`a ${event} line for pid ${pid}`, () =>
    auditLines(fixture, event).find((line) => line.reader.pid === pid),
  );
}

function readAs(args: string[], file: string) {
  return spawnSync(args[0] as string, [...args.slice(1), file], { encoding: 'utf8' });
}

/** This process's cgroup path as the mount names a reader's: unified, else pids, else systemd, else any. */
function ownCgroup(): string {
  const rank = (controllers: string, path: string) =>
    path === '/'
      ? 0
      : controllers === ''
        ? 5
        : controllers === 'pids'
          ? 4
          : controllers === 'name=systemd'
            ? 3
            : 2;
  let best = { rank: -1, path: '' };
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, ...rest] = line.split(':');
    if (controllers === undefined || rest.length === 0) continue;
    const path = rest.join(':');
    if (rank(controllers, path) > best.rank) best = { rank: rank(controllers, path), path };
  }
  return best.path;
}

/**
 * A fresh cgroup (v2, or v1's pids hierarchy) whose name stands for a
 * container id; `run` starts a reader inside it. Removed at the end.
 */
function makeContainerCgroup(t: Parameters<typeof teardownOf>[0], name: string) {
  const root = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? '/sys/fs/cgroup'
    : '/sys/fs/cgroup/pids';
  const dir = join(root, name);
  mkdirSync(dir);
  teardownOf(t).add(() => rmdirSync(dir));
  return {
    dir,
    run: (file: string, cat = 'cat') =>
      spawnSync(
        'sh',
        ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$3" "$2"', 'sh', dir, file, cat],
        {
          encoding: 'utf8',
        },
      ),
  };
}

describe('native backend: who reads', () => {
  it('every mint audit line names the reader: uid, gid, pid, start time, executable, cgroup', async (t) => {
    const fixture = await startMountFixture(t, undefined, { backend: 'native' });
    const file = join(fixture.mountpoint, 'github/token');
    const cat = readAs(['cat'], file);
    const busybox = readAs(['busybox', 'cat'], file);
    assert.equal(cat.status, 0);
    assert.equal(busybox.status, 0);
    const catLine = await auditFor(fixture, 'mint', cat.pid);
    assert.equal(catLine.tokenId, decodeToken(cat.stdout).tokenId);
    assert.equal(catLine.reader.exe, CAT);
    assert.equal(catLine.reader.uid, 0);
    assert.equal(catLine.reader.gid, 0);
    assert.ok(catLine.reader.startTicks > 0);
    assert.equal(catLine.reader.cgroup, ownCgroup());
    const busyboxLine = await auditFor(fixture, 'mint', busybox.pid);
    assert.equal(busyboxLine.reader.exe, BUSYBOX);
    assert.equal(busyboxLine.tokenId, decodeToken(busybox.stdout).tokenId);
  });

  it('audit lines taken from the addon together keep each reader’s own fields', async (t) => {
    // The addon hands over the audit events queued every 20 ms as one batch,
    // a string equal to the previous event's being passed once (addon.c's
    // audit_result): readers that alternate, several to a batch, must each
    // still get their own executable, pid and token id.
    const fixture = await startMountFixture(t, undefined, { backend: 'native' });
    const file = join(fixture.mountpoint, 'github/token');
    const readers = [['cat'], ['busybox', 'cat'], ['cat'], ['cat'], ['busybox', 'cat']];
    const served: { pid: number; exe: string; tokenId: string }[] = [];
    for (let round = 0; round < 6; round++)
      for (const reader of readers) {
        const read = readAs(reader, file);
        assert.equal(read.status, 0, read.stderr);
        const exe = reader[0] === 'cat' ? CAT : BUSYBOX;
        served.push({ pid: read.pid, exe, tokenId: decodeToken(read.stdout).tokenId });
      }
    for (const { pid, exe, tokenId } of served) {
      const line = await auditFor(fixture, 'mint', pid);
      assert.deepEqual(
        { exe: line.reader.exe, tokenId: line.tokenId },
        { exe, tokenId },
        `pid ${pid}`,
      );
    }
    assert.equal(auditLines(fixture, 'mint').length, served.length);
  });

  it('an executable or cgroup path of control bytes, % and stray bytes is logged percent-encoded, its line within PIPE_BUF', async (t) => {
    const fixture = await startMountFixture(t, undefined, { backend: 'native' });
    const file = join(fixture.mountpoint, 'github/token');
    // Bytes no JS string can hand to spawn: the reader is reached by a shell glob.
    const odd = Buffer.concat([
      Buffer.from('\x01'.repeat(199)),
      Buffer.from([0x1b]),
      Buffer.from('[31m%'),
      Buffer.from([0xff, 0xc2, 0x9b, 0xed, 0xa0, 0x80]), // stray, C1 CSI, a surrogate
      Buffer.from(' é'),
    ]);
    const dir = realpathSync(tempDir(t));
    const inner = Buffer.concat([Buffer.from(`${dir}/`), odd, Buffer.from('/'), odd]);
    mkdirSync(inner, { recursive: true });
    copyFileSync(CAT, Buffer.concat([inner, Buffer.from('/cat')]));
    chmodSync(Buffer.concat([inner, Buffer.from('/cat')]), 0o755);
    const cgroupName = `mintfs-test-${process.pid}-${'\x02'.repeat(230)}%`;
    const cgroup = makeContainerCgroup(t, cgroupName);
    const read = spawnSync(
      'sh',
      [
        '-c',
        'echo $$ > "$1/cgroup.procs" && cd "$2" && exec ./*/*/cat "$3"',
        'sh',
        cgroup.dir,
        dir,
        file,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(read.status, 0, read.stderr);
    const shown = `${'%01'.repeat(199)}%1B[31m%25%FF%C2%9B%ED%A0%80 é`;
    const line = await auditFor(fixture, 'mint', read.pid);
    assert.equal(line.reader.exe, `${dir}/${shown}/${shown}/cat`);
    assert.ok(
      line.reader.cgroup.endsWith(`/mintfs-test-${process.pid}-${'%02'.repeat(230)}%25`),
      line.reader.cgroup,
    );
    assert.equal(line.tokenId, decodeToken(read.stdout).tokenId);
    const raw = fixture
      .stderr()
      .split('\n')
      .find((l) => l.includes('"event":"mint"') && l.includes(`"pid":${read.pid},`));
    assert.ok(raw !== undefined);
    // Written raw (JSON's \u0001 for each), this line was over 4 KiB: a shared pipe could split it.
    assert.ok(Buffer.byteLength(`${raw}\n`) <= PIPE_BUF, `${Buffer.byteLength(raw)} bytes`);
  });

  it('readers.uids refuses other uids with EACCES, root included, and audits the refusal', async (t) => {
    const profile = `${profileWith('readers: { uids: [1000] }')}uid: 1000\nmode: "0444"\n`;
    const fixture = await startMountFixture(t, profile, { backend: 'native' });
    const file = join(fixture.mountpoint, 'github/token');
    const root = readAs(['cat'], file);
    assert.equal(root.status, 1);
    assert.match(root.stderr, /Permission denied/);
    assert.equal(root.stdout, '');
    const denied = await auditFor(fixture, 'mint-denied', root.pid);
    assert.equal(denied.reason, 'uid not in readers.uids');
    assert.equal(denied.error, 'ERR_READER_DENIED');
    assert.equal(denied.reader.uid, 0);
    const agent = readAs(
      ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', 'cat'],
      file,
    );
    assert.equal(agent.status, 0, agent.stderr);
    const minted = await auditFor(fixture, 'mint', agent.pid);
    assert.equal(minted.tokenId, decodeToken(agent.stdout).tokenId);
    assert.equal(minted.reader.uid, 1000);
    assert.equal(auditLines(fixture, 'mint').length, 1, 'only the allowed reader got a token');
  });

  it('readers.exe allows the listed executables only', async (t) => {
    const fixture = await startMountFixture(t, profileWith(`readers: { exe: [${CAT}] }`), {
      backend: 'native',
    });
    const file = join(fixture.mountpoint, 'github/token');
    assert.equal(readAs(['cat'], file).status, 0);
    const busybox = readAs(['busybox', 'cat'], file);
    assert.notEqual(busybox.status, 0);
    assert.match(busybox.stderr, /Permission denied/);
    const python = readAs(['/usr/bin/python3', '-c', 'import sys; open(sys.argv[1]).read()'], file);
    assert.match(python.stderr, /PermissionError/);
    const denied = await auditFor(fixture, 'mint-denied', busybox.pid);
    assert.equal(denied.reason, 'executable not in readers.exe');
    assert.equal(denied.reader.exe, BUSYBOX);
  });

  it('a reader that execs is judged as its new executable, though its pid and start time stay', async (t) => {
    // What /proc said of a pid is remembered for a second (native/addon/reader.c);
    // exec keeps the pid, so the executable must be read anew on every open.
    const python = realpathSync('/usr/bin/python3');
    const fixture = await startMountFixture(t, profileWith(`readers: { exe: [${python}] }`), {
      backend: 'native',
    });
    const file = join(fixture.mountpoint, 'github/token');
    const script = [
      'import os, sys',
      'print(len(open(sys.argv[1]).read()), flush=True)',
      'os.execv(sys.argv[2], [sys.argv[2], "cat", sys.argv[1]])',
    ].join('\n');
    const run = spawnSync(python, ['-c', script, file, BUSYBOX], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.notEqual(run.status, 0, "busybox, exec'd by the allowed python, is refused");
    assert.match(run.stderr, /Permission denied/);
    assert.match(run.stdout, /^\d+\n$/, 'python read its token');
    const minted = await auditFor(fixture, 'mint', run.pid);
    assert.equal(minted.reader.exe, python);
    const denied = await auditFor(fixture, 'mint-denied', run.pid);
    assert.equal(denied.reader.exe, BUSYBOX);
    assert.equal(denied.reason, 'executable not in readers.exe');
    assert.equal(denied.reader.startTicks, minted.reader.startTicks, 'one process throughout');
  });

  it('a pid reused within the second is a new reader, read afresh: never the cached start time', async (t) => {
    // What /proc said of a pid is remembered for a second (native/addon/reader.c),
    // through the /proc/PID directory of that very process: once it has exited,
    // another process given its pid must be read afresh. The same program both
    // times, so only that (not a changed executable) can tell them apart.
    const python = realpathSync('/usr/bin/python3');
    const fixture = await startMountFixture(t, profileWith(`readers: { exe: [${python}] }`), {
      backend: 'native',
    });
    const file = join(fixture.mountpoint, 'github/token');
    const read = () =>
      spawnSync(python, ['-c', 'import sys; open(sys.argv[1]).read()', file], {
        encoding: 'utf8',
        timeout: 30_000,
      });
    // The next pid the kernel gives is ns_last_pid + 1, which root may set. It is
    // set back after each try, so the rest of the machine gets fresh pids again
    // (processAlive and others rely on a dead pid not coming back soon).
    const LAST_PID = '/proc/sys/kernel/ns_last_pid';
    const reusedWithinTheSecond = (): { first: number; second: number } | undefined => {
      const started = performance.now();
      const first = read();
      assert.equal(first.status, 0, first.stderr);
      for (let attempt = 0; attempt < 10; attempt++) {
        const saved = Number(readFileSync(LAST_PID, 'utf8'));
        writeFileSync(LAST_PID, String(first.pid - 1));
        const second = read();
        writeFileSync(LAST_PID, String(Math.max(saved, Number(readFileSync(LAST_PID, 'utf8')))));
        assert.equal(second.status, 0, second.stderr);
        // Another process may take the pid first, and a slow machine may let the second pass.
        if (performance.now() - started > 800) return undefined;
        if (second.pid === first.pid) return { first: first.pid, second: second.pid };
      }
      return undefined;
    };
    let reused: { first: number; second: number } | undefined;
    for (let round = 0; round < 5 && reused === undefined; round++)
      reused = reusedWithinTheSecond();
    assert.ok(reused, "a new process was given the first reader's pid within the second");
    const pid = reused.first;
    const lines = await pollUntil('two mint lines for the reused pid', () => {
      const found = auditLines(fixture, 'mint').filter((line) => line.reader.pid === pid);
      return found.length === 2 ? found : undefined;
    });
    assert.equal(lines[1]?.reader.exe, python);
    assert.notEqual(lines[1]?.reader.startTicks, lines[0]?.reader.startTicks, 'read afresh');
  });

  it('readers.containers allows readers whose cgroup path names the container', async (t) => {
    const container = `mintfs-test-${process.pid}-${Date.now()}`;
    const fixture = await startMountFixture(
      t,
      profileWith(`readers: { containers: [${container}] }`),
      { backend: 'native' },
    );
    const file = join(fixture.mountpoint, 'github/token');
    const cgroup = makeContainerCgroup(t, container);
    const inside = cgroup.run(file);
    assert.equal(inside.status, 0, inside.stderr);
    const line = await auditFor(fixture, 'mint', inside.pid);
    assert.ok(line.reader.cgroup.split('/').includes(container), line.reader.cgroup);
    const outside = readAs(['cat'], file);
    assert.equal(outside.status, 1);
    assert.equal(
      (await auditFor(fixture, 'mint-denied', outside.pid)).reason,
      'cgroup not in readers.containers',
    );
  });

  it('readers.containers: a cgroup path from the root allows it and below, never a cgroup named after it elsewhere', async (t) => {
    const allowed = `mintfs-test-${process.pid}-${Date.now()}`;
    const home = makeContainerCgroup(t, allowed);
    const below = makeContainerCgroup(t, `${allowed}/agent`);
    const sibling = makeContainerCgroup(t, `${allowed}-other`);
    // What a reader that may make cgroups could do: a child of its own, named after the allowed one.
    const named = makeContainerCgroup(t, `${allowed}-other/${allowed}`);
    // The path as the kernel shows it to the daemon (the tests' cgroup namespace is the daemon's).
    const shown = spawnSync(
      'sh',
      ['-c', 'echo $$ > "$1/cgroup.procs" && exec cat /proc/self/cgroup', 'sh', home.dir],
      {
        encoding: 'utf8',
      },
    )
      .stdout.split('\n')
      .map((line) => line.split(':'))
      .find(([, controllers]) => controllers === '' || controllers === 'pids')
      ?.slice(2)
      .join(':');
    assert.ok(shown?.endsWith(`/${allowed}`), shown);
    const anchored = await startMountFixture(
      t,
      profileWith(`readers: { containers: [${shown}] }`),
      {
        backend: 'native',
      },
    );
    const file = join(anchored.mountpoint, 'github/token');
    for (const [where, cgroup] of [
      ['the cgroup', home],
      ['below it', below],
    ] as const) {
      const read = cgroup.run(file);
      assert.equal(read.status, 0, `${where}: ${read.stderr}`);
    }
    for (const [where, cgroup] of [
      ['a sibling whose name starts with it', sibling],
      ['a child named after it elsewhere', named],
    ] as const) {
      const read = cgroup.run(file);
      assert.equal(read.status, 1, where);
      assert.equal(
        (await auditFor(anchored, 'mint-denied', read.pid)).reason,
        'cgroup not in readers.containers',
        where,
      );
    }
    // The bare segment, by contrast, matches the child named after it (documented).
    const bare = await startMountFixture(t, profileWith(`readers: { containers: [${allowed}] }`), {
      backend: 'native',
    });
    assert.equal(named.run(join(bare.mountpoint, 'github/token')).status, 0);
  });

  it('a profile edit that adds readers applies to the next open', async (t) => {
    const fixture = await startMountFixture(t, undefined, { backend: 'native' });
    const file = join(fixture.mountpoint, 'github/token');
    assert.equal(readAs(['cat'], file).status, 0);
    writeFileSync(
      fixture.profileFile,
      readFileSync(fixture.profileFile, 'utf8').replace(
        '    format: line\n',
        '    format: line\n    readers: { uids: [4242] }\n',
      ),
    );
    await pollUntil('the line file to refuse root', () => {
      const line = readAs(['cat'], join(fixture.mountpoint, 'github/token.line'));
      return line.status === 1 && /Permission denied/.test(line.stderr);
    });
    assert.equal(readAs(['cat'], file).status, 0, 'the other files are unaffected');
  });

  it('readerCaveat: the token names its reader, and the gateway logs it', async (t) => {
    const gateway = await startGatewayFixture(t);
    const fixture = await startMountFixture(
      t,
      upstreamProfile('test-agent', 'readerCaveat: true\n'),
      {
        backend: 'native',
        keysDir: gateway.keysDir,
      },
    );
    const cat = readAs(['cat'], join(fixture.mountpoint, 'github/token'));
    assert.equal(cat.status, 0);
    // Second, straight after time-before: where only the mount can put it.
    const reader = decodeToken(cat.stdout).caveats[1] ?? '';
    assert.match(
      reader,
      new RegExp(`^reader uid=0 gid=0 pid=${cat.pid} start=[1-9][0-9]* exe=${CAT} cgroup=`),
    );
    const agent = new Agent({ keepAlive: false });
    const response = await bearerGet(
      agent,
      `${gateway.base}/github/repos/acme/widgets/x`,
      cat.stdout,
    );
    assert.equal(response.status, 200, response.body);
    const logged = await pollUntil('the request log line', () => gateway.requestLogs()[0]);
    assert.equal(logged.reader, reader.slice('reader '.length));
  });

  it('a reader caveat that would be over the size limit fails the mint (EIO, mint-failed), never truncated', async (t) => {
    const fixture = await startMountFixture(t, profileWith('readerCaveat: true'), {
      backend: 'native',
    });
    const file = join(fixture.mountpoint, 'github/token');
    // A reader whose executable path and cgroup percent-encode to over 2048 bytes.
    // Six directories of 60 "é" percent-encode to 2160 bytes on their own,
    // wherever the temporary directory is (its length once decided the count).
    let exeDir = tempDir(t);
    for (let i = 0; i < 6; i++) {
      exeDir = join(exeDir, '\u00e9'.repeat(60));
      mkdirSync(exeDir);
    }
    const exe = join(exeDir, 'cat');
    copyFileSync(CAT, exe);
    chmodSync(exe, 0o755);
    const cgroup = makeContainerCgroup(t, `mintfs-${'%'.repeat(200)}-${process.pid}`);
    const long = cgroup.run(file, exe);
    assert.notEqual(long.status, 0);
    assert.match(long.stderr, /Input\/output error/);
    const failed = await auditFor(fixture, 'mint-failed', long.pid);
    assert.match(String(failed.reason), /reader caveat over the caveat size limit/);
    // An ordinary reader of the same file still gets its token.
    assert.equal(readAs(['cat'], file).status, 0);
  });

  it('fuse-native refuses a profile with readers or readerCaveat: it cannot tell who reads', (t) => {
    const dir = tempDir(t);
    initKeyring(join(dir, 'keys'), new Date());
    for (const [lines, field] of [
      ['readers: { uids: [1000] }', 'readers'],
      ['readerCaveat: true', 'readerCaveat'],
    ] as const) {
      writeFileSync(join(dir, 'p.yaml'), profileWith(lines));
      const result = runCli([
        'mount',
        join(dir, 'p.yaml'),
        join(dir, 'mnt'),
        '--keys',
        join(dir, 'keys'),
        '--backend',
        'fuse-native',
      ]);
      assert.equal(result.code, 2);
      assert.deepEqual(diagnostics(result.stderr), [
        `mintfs: ${join(dir, 'p.yaml')}: files.github/token.${field} needs the native backend, which knows who reads; the fuse-native backend does not (mintfs mount --backend native)`,
      ]);
      assert.equal(existsSync(join(dir, 'mnt')), false, 'nothing was created or mounted');
    }
  });
});

describe('native backend: the daemon touching its own mount', () => {
  it('reads its own files from the JavaScript thread without hanging (no JS on the FUSE path)', async (t) => {
    const dir = tempDir(t);
    const keysDir = join(dir, 'keys');
    initKeyring(keysDir, new Date());
    writeFileSync(join(dir, 'p.yaml'), profileWith(''));
    const mount = await startMount({
      profileFile: join(dir, 'p.yaml'),
      mountpoint: join(dir, 'mnt'),
      keysDir,
      backend: nativeBackend,
      logger: createLogger({ destination: join(dir, 'mount.log') }),
    });
    teardownOf(t).add(() => mount.unmount({ drainMs: 0 }));
    // Synchronous reads on this very thread: were any request answered in
    // JavaScript, this would wait on itself forever (fuse-native would).
    const first = readFileSync(join(mount.mountpoint, 'github/token'), 'utf8');
    const second = readFileSync(join(mount.mountpoint, 'github/token'), 'utf8');
    assert.notEqual(decodeToken(first).tokenId, decodeToken(second).tokenId);
    await mount.unmount({ drainMs: 0 });
    assert.equal(existsSync(join(mount.mountpoint, 'github')), false, 'unmounted');
  });
});
