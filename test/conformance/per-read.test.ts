/**
 * A mount that mints per read (one serving gVisor, whose sentry reads one
 * host handle for several processes of the sandbox), on every backend: each
 * pread from offset 0 of one open descriptor gets a fresh token, a short
 * read from 0 and its continuation get one token while whole reads come
 * between them, and a mount that does not mint per read serves one token
 * per open as ever. The reads are a real process's preads on one descriptor,
 * as the sentry makes them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startMount } from '../../src/daemon/mount-daemon.js';
import { selectBackend } from '../../src/fuse/select-backend.js';
import { initKeyring, loadKeyring } from '../../src/keys/keyring.js';
import { createLogger } from '../../src/log/logger.js';
import { verifyToken } from '../../src/token/verify.js';
import { BACKENDS } from '../helpers/backends.js';
import { DEMO_PROFILE } from '../helpers/mount-fixture.js';
import { teardownOf, tempDir } from '../helpers/temp.js';
import { ALLOWED } from '../helpers/tokens.js';

/**
 * On one descriptor: two whole reads; a 16-byte read from 0, two whole reads
 * (each with the read past its end that ends it), the rest of the short one;
 * then a token read a byte at a time with a whole read between every byte.
 */
const PREADS = `
import json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
def whole():
    out = b""
    while True:
        b = os.pread(fd, 4096, len(out))
        if not b: return out.decode()
        out += b
first, second = whole(), whole()
head = os.pread(fd, 16, 0)
between = [whole(), whole()]
tail = b""
while True:
    b = os.pread(fd, 4096, 16 + len(tail))
    if not b: break
    tail += b
bytewise, interleaved = b"", []
while True:
    b = os.pread(fd, 1, len(bytewise))
    interleaved.append(whole())
    if not b: break
    bytewise += b
print(json.dumps({"whole": [first, second] + between, "short": (head + tail).decode(),
                  "bytewise": bytewise.decode(), "interleaved": interleaved}))
`;

async function preads(file: string): Promise<{
  whole: string[];
  short: string;
  bytewise: string;
  interleaved: string[];
}> {
  // Another process: fuse-native answers in this one's JavaScript thread.
  const child = spawn('python3', ['-c', PREADS, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err);
  return JSON.parse(out) as Awaited<ReturnType<typeof preads>>;
}

async function mounted(t: Parameters<typeof teardownOf>[0], backend: string, mintPerRead: boolean) {
  const dir = tempDir(teardownOf(t));
  const keysDir = join(dir, 'keys');
  initKeyring(keysDir, new Date());
  writeFileSync(join(dir, 'profile.yaml'), DEMO_PROFILE);
  const logger = createLogger({ destination: join(dir, 'mount.log') });
  const mount = await startMount({
    profileFile: join(dir, 'profile.yaml'),
    mountpoint: join(dir, 'mnt'),
    keysDir,
    backend: selectBackend(backend as 'native' | 'fuse-native', logger),
    logger,
    mintPerRead,
  });
  teardownOf(t).add(() => mount.unmount({ drainMs: 0 }));
  const keyring = loadKeyring(keysDir);
  const valid = (token: string): void => {
    const verdict = verifyToken(token, ALLOWED, { keyById: keyring.keyById, now: new Date() });
    assert.equal(verdict.allowed, true, `${token.slice(0, 24)}…: ${JSON.stringify(verdict)}`);
  };
  return { file: join(mount.mountpoint, 'github/token'), valid };
}

for (const backend of BACKENDS) {
  describe(`${backend}: a mount that mints per read`, () => {
    it('every read from 0 of one descriptor gets a fresh token; a short read and its continuation get one', async (t) => {
      const { file, valid } = await mounted(t, backend, true);
      const got = await preads(file);
      const all = [...got.whole, got.short, got.bytewise, ...got.interleaved];
      for (const token of all) valid(token);
      assert.equal(new Set(all).size, all.length, 'every token distinct');
      assert.ok(got.bytewise.length > 100, got.bytewise);
    });

    it('a mount that does not mint per read serves one token per open', async (t) => {
      const { file, valid } = await mounted(t, backend, false);
      const got = await preads(file);
      valid(got.short);
      assert.deepEqual(
        new Set([...got.whole, got.short, got.bytewise, ...got.interleaved]).size,
        1,
      );
    });
  });
}
