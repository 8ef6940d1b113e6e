/**
 * The native backend's transports (--fuse-transport classic|uring|auto): FUSE
 * over io_uring really carries the requests when the operator turned the fuse
 * module's enable_uring on, the mount falls back to /dev/fuse reads with one
 * line saying why when it is off, and a mount whose ring holds requests in
 * flight stops (or dies) without leaving a reader hanging. The conformance
 * suite (test/conformance/) runs on both transports; this file holds what is
 * particular to the choice. The parameter is host-wide: each test holds it
 * (test/helpers/kernel-uring.ts) and the last hold restores it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { mountedPaths } from '../../src/mounts/mount-table.js';
import { diagnostics, runCli } from '../helpers/cli.js';
import { holdKernelUring, type UringParameter } from '../helpers/kernel-uring.js';
import {
  DEAD_DAEMON_READ_ERROR,
  startMountFixture,
  stopMount,
  type MountFixture,
} from '../helpers/mount-fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir, teardownOf } from '../helpers/temp.js';

interface LogLine {
  readonly level: number;
  readonly event?: string;
  readonly [field: string]: unknown;
}

function logLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

function events(fixture: MountFixture, event: string): LogLine[] {
  return logLines(fixture.stderr()).filter((line) => line.event === event);
}

function hold(t: TestContext, value: UringParameter): void {
  const held = holdKernelUring(value);
  // Registered first, so it runs after the mount's own teardown.
  teardownOf(t).add(() => held.release());
}

function cat(file: string) {
  return spawnSync('cat', [file], { encoding: 'utf8', timeout: 10_000 });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Python readers opening and reading the token in a loop until the mount fails them. */
function startReaders(t: TestContext, file: string, count: number) {
  const script = `
import os, sys
reads = 0
try:
    while True:
        fd = os.open(sys.argv[1], os.O_RDONLY)
        data = os.read(fd, 4096)
        os.close(fd)
        if not data: raise SystemExit("empty read")
        reads += 1
        if reads == 20: print("going", flush=True)
except OSError as e:
    print("ended", reads, e.errno, flush=True)
`;
  return Array.from({ length: count }, () => {
    const child = spawn('/usr/bin/python3', ['-c', script, file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = exitOf(child);
    teardownOf(t).add(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    return { exited, out: () => out };
  });
}

interface RingThread {
  readonly name: string;
  /** Cpus_allowed_list, as the kernel prints it ("1", "0-1"). */
  readonly allowed: () => string;
  readonly switches: () => number;
}

/** The daemon's ring threads (named mintfs-ringN by the addon), by name. */
function ringThreads(pid: number): RingThread[] {
  const taskDir = `/proc/${pid}/task`;
  const field = (tid: string, name: string) =>
    readFileSync(`${taskDir}/${tid}/status`, 'utf8').match(
      new RegExp(`^${name}:\\s*(.*)$`, 'm'),
    )?.[1] ?? '';
  return readdirSync(taskDir)
    .map((tid) => ({ tid, name: readFileSync(`${taskDir}/${tid}/comm`, 'utf8').trim() }))
    .filter(({ name }) => name.startsWith('mintfs-ring'))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
    .map(({ tid, name }) => ({
      name,
      allowed: () => field(tid, 'Cpus_allowed_list'),
      switches: () => Number(field(tid, 'voluntary_ctxt_switches')),
    }));
}

/** The CPUs in a kernel CPU list ("0-3,8"). */
function cpuList(text: string): number[] {
  return text
    .trim()
    .split(',')
    .filter((part) => part !== '')
    .flatMap((part) => {
      const [first, last = first] = part.split('-').map(Number) as [number, number?];
      return Array.from({ length: last - first + 1 }, (_, i) => first + i);
    });
}

function possibleCpus(): number[] {
  return cpuList(readFileSync('/sys/devices/system/cpu/possible', 'utf8'));
}

function online(cpus: readonly number[]): number[] {
  const up = new Set(cpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8')));
  return cpus.filter((cpu) => up.has(cpu));
}

describe('FUSE transports of the native backend', () => {
  it('with enable_uring on, --fuse-transport uring serves the reads over io_uring and counts them', async (t) => {
    hold(t, 'Y');
    const fixture = await startMountFixture(t, undefined, {
      backend: 'native',
      transport: 'uring',
    });
    const file = join(fixture.mountpoint, 'github/token');
    const tokens = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const result = cat(file);
      assert.equal(result.status, 0, result.stderr);
      tokens.add(result.stdout);
    }
    assert.equal(tokens.size, 10, 'a fresh token per read');
    await stopMount(fixture);
    const [stats, ...more] = events(fixture, 'fuse-ring-stats');
    assert.equal(more.length, 0);
    // Each cat is at least a lookup, an open, a read and a release.
    assert.ok(Number(stats?.ringRequests) >= 40, JSON.stringify(stats));
    assert.equal(stats?.ringMalformed, 0);
    assert.deepEqual(events(fixture, 'fuse-transport-fallback'), []);
  });

  it('serves each CPU on a ring thread of its own, pinned there: a reader on CPU N is served by ring N', async (t) => {
    hold(t, 'Y');
    const fixture = await startMountFixture(t, undefined, {
      backend: 'native',
      transport: 'uring',
    });
    const file = join(fixture.mountpoint, 'github/token');
    const threads = ringThreads(fixture.child.pid ?? 0);
    const cpus = possibleCpus();
    assert.deepEqual(
      threads.map((thread) => thread.name),
      cpus.map((cpu) => `mintfs-ring${cpu}`),
      'one ring thread per possible CPU',
    );
    for (const thread of threads)
      assert.equal(thread.allowed(), thread.name.slice('mintfs-ring'.length), 'pinned to its CPU');
    for (const cpu of online(cpus)) {
      const before = threads.map((thread) => thread.switches());
      for (let i = 0; i < 10; i++) {
        const result = spawnSync('taskset', ['-c', String(cpu), 'cat', file], {
          encoding: 'utf8',
          timeout: 10_000,
        });
        assert.equal(result.status, 0, result.stderr);
      }
      // A served request ends with its thread waiting again: a voluntary switch.
      const served = threads.map((thread, i) => thread.switches() - (before[i] as number));
      const own = served[cpus.indexOf(cpu)] as number;
      assert.ok(own >= 20, `ring ${cpu} served the reads of CPU ${cpu}: ${served.join(', ')}`);
      for (const [i, other] of served.entries())
        if (cpus[i] !== cpu)
          assert.ok(other < own / 4, `other rings stayed idle: ${served.join(', ')}`);
    }
  });

  it('with enable_uring off, uring falls back to /dev/fuse reads with one warning saying why', async (t) => {
    hold(t, 'N');
    const fixture = await startMountFixture(t, undefined, {
      backend: 'native',
      transport: 'uring',
      allowFallback: true,
    });
    const fallbacks = events(fixture, 'fuse-transport-fallback');
    assert.equal(fallbacks.length, 1);
    assert.equal(fallbacks[0]!.level, 40, 'asked for by name: a warning');
    assert.match(String(fallbacks[0]!.reason), /enable_uring is off/);
    assert.equal(events(fixture, 'mounted')[0]?.transport, 'classic');
    assert.equal(cat(join(fixture.mountpoint, 'github/token')).status, 0);
    await stopMount(fixture);
    assert.deepEqual(events(fixture, 'fuse-ring-stats'), [], 'no ring ever served');
  });

  it('a live io_uring mount keeps serving over the ring when enable_uring is turned off', async (t) => {
    const on = holdKernelUring('Y');
    t.after(() => on.release());
    const fixture = await startMountFixture(t, undefined, {
      backend: 'native',
      transport: 'uring',
    });
    on.release();
    hold(t, 'N');
    for (let i = 0; i < 5; i++)
      assert.equal(cat(join(fixture.mountpoint, 'github/token')).status, 0);
    await stopMount(fixture);
    const [stats] = events(fixture, 'fuse-ring-stats');
    assert.ok(Number(stats?.ringRequests) >= 20, JSON.stringify(stats));
  });

  for (const value of ['Y', 'N'] as const) {
    it(`auto with enable_uring ${value} serves over ${value === 'Y' ? 'io_uring' : '/dev/fuse reads, saying why at info level'}`, async (t) => {
      hold(t, value);
      const fixture = await startMountFixture(t, undefined, {
        backend: 'native',
        transport: 'auto',
      });
      assert.equal(events(fixture, 'mounted')[0]?.transport, value === 'Y' ? 'uring' : 'classic');
      const fallbacks = events(fixture, 'fuse-transport-fallback');
      if (value === 'Y') assert.deepEqual(fallbacks, []);
      else {
        assert.equal(fallbacks.length, 1);
        assert.equal(fallbacks[0]!.level, 30, 'auto: a note, not a warning');
        assert.match(String(fallbacks[0]!.reason), /enable_uring is not Y/);
      }
      assert.equal(cat(join(fixture.mountpoint, 'github/token')).status, 0);
    });
  }

  it('SIGTERM with 8 readers in flight on the ring exits 0 and ends every reader', async (t) => {
    hold(t, 'Y');
    const fixture = await startMountFixture(t, undefined, {
      backend: 'native',
      transport: 'uring',
    });
    const readers = startReaders(t, join(fixture.mountpoint, 'github/token'), 8);
    await pollUntil('every reader to be reading', () =>
      readers.every((r) => r.out().includes('going')),
    );
    const exited = exitOf(fixture.child);
    fixture.child.kill('SIGTERM');
    assert.equal(await exited, 0, fixture.stderr());
    // Every reader's loop ends with an error from the stopped mount, none hangs.
    await Promise.all(readers.map((r) => r.exited));
    for (const r of readers) assert.match(r.out(), /ended \d+ \d+/, r.out());
    assert.equal(mountedPaths().includes(fixture.mountpoint), false);
    const [stats] = events(fixture, 'fuse-ring-stats');
    assert.equal(stats?.ringMalformed, 0);
    assert.ok(Number(stats?.ringRequests) > 8 * 20 * 3, JSON.stringify(stats));
  });

  it('a daemon killed with SIGKILL while its ring holds requests leaves readers an error, never a hang', async (t) => {
    hold(t, 'Y');
    const fixture = await startMountFixture(t, undefined, {
      backend: 'native',
      transport: 'uring',
    });
    const readers = startReaders(t, join(fixture.mountpoint, 'github/token'), 8);
    await pollUntil('every reader to be reading', () =>
      readers.every((r) => r.out().includes('going')),
    );
    const exited = exitOf(fixture.child);
    fixture.child.kill('SIGKILL');
    await exited;
    await Promise.all(readers.map((r) => r.exited));
    for (const r of readers) assert.match(r.out(), /ended \d+ \d+/, r.out());
    const dead = cat(join(fixture.mountpoint, 'github/token'));
    assert.notEqual(dead.status, 0);
    assert.equal(dead.stdout, '');
    assert.match(dead.stderr, DEAD_DAEMON_READ_ERROR);
  });

  it('refuses --fuse-transport uring on the fuse-native backend, in one line', (t) => {
    const dir = tempDir(t);
    const result = runCli([
      'mount',
      join(dir, 'p.yaml'),
      join(dir, 'mnt'),
      '--backend',
      'fuse-native',
      '--fuse-transport',
      'uring',
    ]);
    assert.equal(result.code, 2);
    assert.deepEqual(diagnostics(result.stderr), [
      'mintfs: --fuse-transport: uring needs the native backend; the fuse-native backend reads /dev/fuse',
    ]);
  });
});
