/** Start, stop, crash and recovery of a real mount daemon. */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { mountedPaths } from '../../src/mounts/mount-table.js';
import { decodeToken } from '../../src/token/token-text.js';
import { runCli, diagnostics } from '../helpers/cli.js';
import type { BackendName } from '../../src/fuse/backend.js';
import { CONFORMANCE_TARGETS, useTransport } from '../helpers/backends.js';
import { CLI } from '../helpers/paths.js';
import { DEAD_DAEMON_READ_ERROR, startMountFixture } from '../helpers/mount-fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir, teardownOf } from '../helpers/temp.js';

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/**
 * `mintfs mount` of a one-file profile at `<dir>/<at>` (not the fixture: these
 * tests watch the daemon from its first moment). Killed and cleaned up at the end.
 */
function spawnMount(
  t: TestContext,
  backend: BackendName,
  transport: 'uring' | undefined,
  at: string,
) {
  const dir = tempDir(t);
  const keys = join(dir, 'keys');
  runCli(['keys', 'init', '--keys', keys]);
  writeFileSync(
    join(dir, 'p.yaml'),
    'agent: a\nfiles:\n  t:\n    service: s\n    hosts: [h]\n    methods: [GET]\n    paths: [/]\n',
  );
  const mountpoint = join(dir, at);
  const child = spawn(
    process.execPath,
    [
      CLI,
      'mount',
      join(dir, 'p.yaml'),
      mountpoint,
      '--keys',
      keys,
      '--backend',
      backend,
      ...(transport ? ['--fuse-transport', transport] : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = exitOf(child);
  teardownOf(t).add(async () => {
    child.kill('SIGKILL');
    await exited;
    if (mountedPaths().includes(mountpoint)) spawnSync('umount', ['-l', '--', mountpoint]);
  });
  return { child, mountpoint, exited, stderr: () => stderr };
}

for (const target of CONFORMANCE_TARGETS) {
  const { backend, transport } = target;
  describe(`mount life cycle (${target.label})`, () => {
    useTransport(target);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`${signal} unmounts cleanly and exits 0`, async (t) => {
        const fixture = await startMountFixture(t, undefined, { backend, transport });
        const exited = exitOf(fixture.child);
        fixture.child.kill(signal);
        assert.deepEqual(await exited, { code: 0, signal: null });
        assert.equal(mountedPaths().includes(fixture.mountpoint), false);
        assert.match(fixture.stderr(), /"event":"unmounted"/);
      });
    }

    it(
      'a SIGTERM while the mount is still starting unmounts it once up and exits 0',
      { timeout: 20_000 },
      async (t) => {
        const { child, mountpoint, exited, stderr } = spawnMount(t, backend, transport, 'mnt');
        // The signal lands as soon as the mount is in place, before start-up has finished
        // (readers can be served from then on, so that window must not kill the daemon).
        while (!mountedPaths().includes(mountpoint)) {
          if (child.exitCode !== null) assert.fail(`mount exited early: ${stderr()}`);
          await new Promise((resolve) => setImmediate(resolve));
        }
        child.kill('SIGTERM');
        assert.deepEqual(await exited, { code: 0, signal: null }, stderr());
        assert.equal(mountedPaths().includes(mountpoint), false, 'no mount left behind');
        assert.match(stderr(), /"event":"unmounted"/);
      },
    );

    it(
      'SIGTERM racing an admin lazy unmount (fusermount3 -u -z) still stops and exits 0',
      { timeout: 20_000 },
      async (t) => {
        const fixture = await startMountFixture(t, undefined, { backend, transport });
        assert.equal(spawnSync('cat', [join(fixture.mountpoint, 'github/token')]).status, 0);
        const exited = exitOf(fixture.child);
        fixture.child.kill('SIGTERM');
        spawnSync('fusermount3', ['-u', '-z', '--', fixture.mountpoint]);
        assert.deepEqual(await exited, { code: 0, signal: null }, fixture.stderr());
        assert.equal(mountedPaths().includes(fixture.mountpoint), false);
        assert.match(fixture.stderr(), /"event":"unmounted"/);
      },
    );

    it('shutdown lets a reader holding a token file open finish reading it', async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      const size = statSync(join(fixture.mountpoint, 'github/token')).size;
      // Open, read 10 bytes, signal readiness, wait for a line on stdin, read the rest.
      const holder = spawn(
        '/usr/bin/python3',
        [
          '-c',
          'import os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\na=os.read(fd,10)\nprint("open",flush=True)\nsys.stdin.readline()\nb=os.read(fd,4096)\nos.close(fd)\nprint((a+b).decode(),flush=True)',
          join(fixture.mountpoint, 'github/token'),
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let out = '';
      holder.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      await pollUntil('the holder to open the token', () => out.startsWith('open\n'));
      const exited = exitOf(fixture.child);
      fixture.child.kill('SIGTERM');
      await pollUntil(
        'the mount to be detached',
        () => !mountedPaths().includes(fixture.mountpoint),
      );
      assert.equal(fixture.child.exitCode, null, 'still serving the open file');
      holder.stdin.end('go\n');
      await new Promise((resolve) => holder.once('close', resolve));
      const token = out.split('\n')[1] ?? '';
      assert.equal(token.length, size);
      assert.deepEqual(await exited, { code: 0, signal: null });
    });

    it('every token served up to the stop has its audit line, reads through a detached cwd included', async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      // A reader whose cwd is inside the mount keeps opening files after the lazy detach.
      const reader = spawn(
        '/usr/bin/python3',
        [
          '-c',
          'import os,sys\nos.chdir(sys.argv[1])\nwhile True:\n  try:\n    f=open("token")\n    t=f.read()\n    f.close()\n  except OSError:\n    break\n  print(t,flush=True)',
          join(fixture.mountpoint, 'github'),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      teardownOf(t).add(() => reader.kill('SIGKILL'));
      let out = '';
      reader.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      await pollUntil('the reader to get tokens', () => out.split('\n').length > 50);
      const exited = exitOf(fixture.child);
      fixture.child.kill('SIGTERM');
      assert.deepEqual(await exited, { code: 0, signal: null });
      await new Promise((resolve) =>
        reader.exitCode !== null ? resolve(null) : reader.once('close', resolve),
      );
      const served = out
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => decodeToken(line).tokenId);
      const audited = new Set(
        fixture
          .stderr()
          .split('\n')
          .filter((line) => line.includes('"event":"mint"'))
          .map((line) => (JSON.parse(line) as { tokenId: string }).tokenId),
      );
      const missing = served.filter((id) => !audited.has(id));
      assert.deepEqual(
        missing,
        [],
        `${missing.length} of ${served.length} tokens have no audit line`,
      );
    });

    it('a second signal exits at once, even while a reader is still reading', async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      // Keeps reading one byte every 50 ms, so the drain waits for it.
      const holder = spawn(
        '/usr/bin/python3',
        [
          '-c',
          'import os,sys,time\nfd=os.open(sys.argv[1],os.O_RDONLY)\nprint("open",flush=True)\nwhile True:\n  try:\n    os.pread(fd,1,0)\n  except OSError as e:\n    print("failed",e.errno,flush=True)\n    break\n  time.sleep(0.05)',
          join(fixture.mountpoint, 'github/token'),
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      teardownOf(t).add(() => holder.kill());
      let out = '';
      holder.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      await pollUntil('the holder to open the token', () => out.startsWith('open'));
      const exited = exitOf(fixture.child);
      fixture.child.kill('SIGTERM');
      await pollUntil('the drain to start', () => fixture.stderr().includes('"event":"shutdown"'));
      fixture.child.kill('SIGTERM');
      assert.deepEqual(await exited, { code: 130, signal: null });
      assert.match(fixture.stderr(), /"event":"forced-exit"/);
      // The reader's next read fails (the connection is gone), never hangs or gets bytes.
      await pollUntil('the reader to see its read fail', () => /failed \d+/.test(out));
    });

    it('a daemon killed with SIGKILL leaves readers an error, never a token; the next mount recovers', async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      const exited = exitOf(fixture.child);
      fixture.child.kill('SIGKILL');
      await exited;
      const dead = spawnSync('cat', [join(fixture.mountpoint, 'github/token')], {
        encoding: 'utf8',
      });
      assert.notEqual(dead.status, 0);
      assert.equal(dead.stdout, '');
      assert.match(
        dead.stderr,
        transport === 'uring' ? DEAD_DAEMON_READ_ERROR : /Transport endpoint is not connected/,
      );

      await fixture.restart();
      assert.match(fixture.stderr(), /"event":"stale-mount"/);
      const alive = spawnSync('cat', [join(fixture.mountpoint, 'github/token')], {
        encoding: 'utf8',
      });
      assert.equal(alive.status, 0);
      assert.ok(alive.stdout.length > 100);
      assert.equal(
        mountedPaths().filter((p) => p === fixture.mountpoint).length,
        1,
        'exactly one mount',
      );
    });

    it('refuses to mount over a live mount, leaving it serving', async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      const second = runCli([
        'mount',
        fixture.profileFile,
        fixture.mountpoint,
        '--keys',
        fixture.keysDir,
        '--backend',
        backend,
      ]);
      assert.equal(second.code, 3);
      assert.deepEqual(diagnostics(second.stderr), [
        `mintfs: ${fixture.mountpoint} is already mounted by a running file system (--takeover replaces a running mintfs without a gap)`,
      ]);
      assert.equal(spawnSync('cat', [join(fixture.mountpoint, 'github/token')]).status, 0);
    });

    it('refuses a mountpoint that is not empty or not a directory', (t) => {
      const dir = tempDir(t);
      runCli(['keys', 'init', '--keys', join(dir, 'keys')]);
      writeFileSync(
        join(dir, 'p.yaml'),
        'agent: a\nfiles:\n  t:\n    service: s\n    hosts: [h]\n    methods: [GET]\n    paths: [/]\n',
      );
      mkdirSync(join(dir, 'full'));
      writeFileSync(join(dir, 'full', 'x'), '');
      const full = runCli([
        'mount',
        join(dir, 'p.yaml'),
        join(dir, 'full'),
        '--keys',
        join(dir, 'keys'),
        '--backend',
        backend,
      ]);
      assert.equal(full.code, 3);
      assert.match(full.stderr, /is not empty/);
      const file = runCli([
        'mount',
        join(dir, 'p.yaml'),
        join(dir, 'p.yaml'),
        '--keys',
        join(dir, 'keys'),
        '--backend',
        backend,
      ]);
      assert.equal(file.code, 3);
      assert.match(file.stderr, /is not a directory/);
    });

    it('creates a missing mountpoint', async (t) => {
      const { mountpoint } = spawnMount(t, backend, transport, 'run/agent1');
      await pollUntil('mount', () => mountedPaths().includes(mountpoint));
      assert.equal(spawnSync('cat', [join(mountpoint, 't')]).status, 0);
    });
  });
}
