/**
 * Concurrent readers, on every backend. read() readers never get an empty,
 * partial or duplicate token. sendfile and copy readers (busybox cat,
 * shutil.copyfile, fs.copyFileSync) go through the page cache: the native
 * backend gives every open its own inode, so they never share a token either;
 * fuse-native's high-level API can let overlapping opens share a page, so
 * there they get whole, valid tokens and how often they share is reported.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { verifyToken } from '../../src/token/verify.js';
import { startMountFixture, type MountFixture } from '../helpers/mount-fixture.js';
import { CONFORMANCE_TARGETS, useTransport } from '../helpers/backends.js';
import { ALLOWED } from '../helpers/tokens.js';
import { pollUntil } from '../helpers/poll.js';

const READERS = 8;
const READS = 30;

// Reads an open file to its end in 4 KiB read()s, as the Python readers below do.
const PY_READ_ALL = `
def read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 4096)
        if not b: break
        chunks.append(b)
    return b"".join(chunks).decode()
`;

// Each process reads the file READS times with open/read/close and prints one token per line.
const PY_READER = `
import os, sys
${PY_READ_ALL}
for _ in range(int(sys.argv[2])):
    fd = os.open(sys.argv[1], os.O_RDONLY)
    token = read_all(fd)
    os.close(fd)
    sys.stdout.write(token + "\\n")
`;

const BUSYBOX_READER = 'for i in $(seq "$2"); do t=$(busybox cat "$1"); echo "${t:-<empty>}"; done';

/** Runs READERS processes at once; `args` may name its own command (when `command` is ''). */
function runAll(
  command: string,
  args: (i: number) => string[] | [string, string[]],
): Promise<string[]> {
  return Promise.all(
    Array.from(
      { length: READERS },
      (_, i) =>
        new Promise<string>((resolve, reject) => {
          const spec = args(i);
          const [cmd, argv] =
            command === '' ? (spec as [string, string[]]) : [command, spec as string[]];
          const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
          child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
          // 'close', not 'exit': only then has all of stdout been read.
          child.on('close', (code) =>
            code === 0 ? resolve(out) : reject(new Error(`reader ${i} exited ${code}: ${err}`)),
          );
        }),
    ),
  );
}

function checkTokens(
  fixture: MountFixture,
  outputs: string[],
): { tokens: string[]; distinct: number } {
  const size = statSync(join(fixture.mountpoint, 'github/token')).size;
  const tokens = outputs.flatMap((out) => out.split('\n').filter((line) => line !== ''));
  const lengths = new Map<number, number>();
  for (const token of tokens) lengths.set(token.length, (lengths.get(token.length) ?? 0) + 1);
  assert.deepEqual([...lengths], [[size, READERS * READS]], 'every read produced one whole token');
  const keyring = fixture.keyring();
  for (const token of tokens) {
    assert.equal(token.length, size, 'whole token');
    const verdict = verifyToken(token, ALLOWED, { keyById: keyring.keyById, now: new Date() });
    assert.equal(verdict.allowed, true);
  }
  return { tokens, distinct: new Set(tokens).size };
}

// Each process copies the file READS times and prints one token per line. The
// copies go in a directory under argv[3] (the fixture's, removed by its
// teardown), never the machine's /tmp: they are tokens.
const PY_COPY_READER = `
import os, shutil, sys, tempfile
d = tempfile.mkdtemp(dir=sys.argv[3])
for i in range(int(sys.argv[2])):
    dest = os.path.join(d, str(i))
    shutil.copyfile(sys.argv[1], dest)
    sys.stdout.write(open(dest).read() + "\\n")
`;
const NODE_COPY_READER = `
const fs = require('fs'), path = require('path');
const d = fs.mkdtempSync(path.join(process.argv[3], 'copy-'));
for (let i = 0; i < Number(process.argv[2]); i++) {
  const dest = path.join(d, String(i));
  fs.copyFileSync(process.argv[1], dest);
  process.stdout.write(fs.readFileSync(dest, 'utf8') + '\\n');
}
`;

// Eight threads of one process that move to another CPU between open and
// fstat/read/close, so that over io_uring the next request goes to another
// CPU's queue, served by another thread while the open may still be minting.
// Every other open is closed at once (its release races the mint). Prints a
// JSON list of [fstat size, token] pairs.
const PY_MOVING_READER = `
import json, os, sys, threading
${PY_READ_ALL}
path, rounds = sys.argv[1], int(sys.argv[2])
cpus = sorted(os.sched_getaffinity(0))
out, lock = [], threading.Lock()
def reader(k):
    for i in range(rounds):
        os.sched_setaffinity(0, {cpus[(k + i) % len(cpus)]})
        fd = os.open(path, os.O_RDONLY)
        os.sched_setaffinity(0, {cpus[(k + i + 1) % len(cpus)]})
        if i % 2:
            os.close(fd)
            continue
        size = os.fstat(fd).st_size
        token = read_all(fd)
        os.close(fd)
        with lock: out.append([size, token])
threads = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out))
`;

const READER_CAVEAT_PROFILE = `agent: test-agent
files:
  github/token:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/repos/acme/**"]
    readerCaveat: true
`;

/** Reader i of a mixed crowd: sendfile, copy_file_range, shutil and read() readers at once. */
function mixedReader(i: number, file: string, scratch: string): [string, string[]] {
  switch (i % 4) {
    case 0:
      return ['bash', ['-c', BUSYBOX_READER, 'bash', file, String(READS)]];
    case 1:
      return ['/usr/bin/python3', ['-c', PY_COPY_READER, file, String(READS), scratch]];
    case 2:
      return [process.execPath, ['-e', NODE_COPY_READER, file, String(READS), scratch]];
    default:
      return ['/usr/bin/python3', ['-c', PY_READER, file, String(READS)]];
  }
}

for (const target of CONFORMANCE_TARGETS) {
  const { backend, transport } = target;
  // fuse-native cannot give each open its own inode: sendfile readers may share a page.
  const distinctPerOpen = backend === 'native';

  describe(`concurrent readers (${target.label})`, () => {
    useTransport(target);
    it(`${READERS} read() readers x ${READS} reads: all whole, valid and distinct`, async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      const file = join(fixture.mountpoint, 'github/token');
      const outputs = await runAll('/usr/bin/python3', () => [
        '-c',
        PY_READER,
        file,
        String(READS),
      ]);
      const { tokens, distinct } = checkTokens(fixture, outputs);
      assert.equal(distinct, tokens.length, 'no token was served twice');
    });

    it(`${READERS} busybox (sendfile) readers x ${READS} reads: all whole and valid${distinctPerOpen ? ' and distinct' : '; sharing is reported, not asserted'}`, async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      const file = join(fixture.mountpoint, 'github/token');
      const outputs = await runAll('bash', () => [
        '-c',
        BUSYBOX_READER,
        'bash',
        file,
        String(READS),
      ]);
      const { tokens, distinct } = checkTokens(fixture, outputs);
      t.diagnostic(
        `busybox concurrent: ${distinct} distinct of ${tokens.length} reads (${((100 * distinct) / tokens.length).toFixed(0)}%)`,
      );
      // fuse-native: the kernel's page cache may hand one open's token to a
      // concurrent sendfile reader, so only wholeness and validity (checkTokens) hold.
      if (distinctPerOpen) assert.equal(distinct, tokens.length, 'no two opens shared a token');
    });

    // The native backend alone knows its readers (readerCaveat): the size
    // fstat gives is then the reader's own token's, not the path's.
    if (backend === 'native')
      it('threads that change CPU between open and fstat, read or close: fstat gives the size of the token they read; closes at once lose nothing', async (t) => {
        const fixture = await startMountFixture(t, READER_CAVEAT_PROFILE, { backend, transport });
        const file = join(fixture.mountpoint, 'github/token');
        const pathSize = statSync(file).size;
        const run = spawnSync('/usr/bin/python3', ['-c', PY_MOVING_READER, file, '40'], {
          encoding: 'utf8',
          timeout: 60_000,
        });
        assert.equal(run.status, 0, run.stderr);
        const reads = JSON.parse(run.stdout) as Array<[number, string]>;
        assert.equal(reads.length, 8 * 20);
        const keyring = fixture.keyring();
        for (const [size, token] of reads) {
          assert.ok(
            token.length > pathSize,
            'the reader caveat makes the token longer than the path says',
          );
          assert.equal(size, token.length, 'fstat gave the size of the token read');
          const verdict = verifyToken(token, ALLOWED, {
            keyById: keyring.keyById,
            now: new Date(),
          });
          assert.equal(verdict.allowed, true);
        }
        assert.equal(new Set(reads.map(([, token]) => token)).size, reads.length);
        // Every open, read or not, was minted and audited, and the daemon serves on.
        const minted = await pollUntil('a mint line for every open', () => {
          const lines = fixture
            .stderr()
            .split('\n')
            .filter((l) => l.includes('"event":"mint"'));
          return lines.length >= 8 * 40 ? lines.length : undefined;
        });
        assert.equal(minted, 8 * 40);
        assert.ok(readFileSync(file, 'utf8').length > pathSize);
      });

    it(`${READERS} mixed readers (busybox cat, shutil.copyfile, fs.copyFileSync, read()) at once: all whole and valid${distinctPerOpen ? ' and distinct' : ''}`, async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      const file = join(fixture.mountpoint, 'github/token');
      const outputs = await runAll('', (i) => mixedReader(i, file, fixture.dir));
      const { tokens, distinct } = checkTokens(fixture, outputs);
      t.diagnostic(`mixed concurrent: ${distinct} distinct of ${tokens.length} reads`);
      if (distinctPerOpen) assert.equal(distinct, tokens.length, 'no two opens shared a token');
    });
  });
}
