/** Nothing on the mount can be changed: every write-like call fails with EROFS or EACCES. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CONFORMANCE_TARGETS, useTransport } from '../helpers/backends.js';
import { startMountFixture } from '../helpers/mount-fixture.js';

const PROBE = `
import errno, json, os, sys
root = sys.argv[1]
f = os.path.join(root, "github/token")
def attempt(fn):
    try:
        fn()
        return "succeeded"
    except OSError as e:
        return errno.errorcode[e.errno]
ops = {
    "open for writing": lambda: os.open(f, os.O_WRONLY),
    "open for read-write": lambda: os.open(f, os.O_RDWR),
    "open with O_TRUNC": lambda: os.open(f, os.O_RDONLY | os.O_TRUNC),
    "create": lambda: os.open(os.path.join(root, "github/new"), os.O_WRONLY | os.O_CREAT, 0o600),
    "unlink": lambda: os.unlink(f),
    "mkdir": lambda: os.mkdir(os.path.join(root, "dir")),
    "rmdir": lambda: os.rmdir(os.path.join(root, "github")),
    "chmod": lambda: os.chmod(f, 0o777),
    "chown": lambda: os.chown(f, 1000, 1000),
    "rename": lambda: os.rename(f, os.path.join(root, "github/moved")),
    "truncate": lambda: os.truncate(f, 0),
    "symlink": lambda: os.symlink("/etc/passwd", os.path.join(root, "link")),
    "link": lambda: os.link(f, os.path.join(root, "hard")),
    "utime": lambda: os.utime(f, (0, 0)),
    "setxattr": lambda: os.setxattr(f, "user.x", b"1"),
}
print(json.dumps({name: attempt(fn) for name, fn in ops.items()}))
`;

for (const target of CONFORMANCE_TARGETS) {
  const { backend, transport } = target;
  describe(`read-only mount (${target.label})`, () => {
    useTransport(target);
    it('refuses every write-like operation', async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      const result = spawnSync('/usr/bin/python3', ['-c', PROBE, fixture.mountpoint], {
        encoding: 'utf8',
      });
      assert.equal(result.status, 0, result.stderr);
      const outcomes = JSON.parse(result.stdout) as Record<string, string>;
      for (const [op, outcome] of Object.entries(outcomes)) {
        assert.ok(['EROFS', 'EACCES', 'EPERM'].includes(outcome), `${op}: ${outcome}`);
      }
      t.diagnostic(JSON.stringify(outcomes));
      // Nothing was minted for the refused opens.
      assert.doesNotMatch(fixture.stderr(), /"event":"mint"/);
    });

    it('is read-only at the VFS too (mount option ro), a second wall behind EROFS', async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      const line = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === fixture.mountpoint);
      assert.ok(line, 'the mount is in mountinfo');
      // Field 6 holds the per-mount options: ro or rw.
      assert.equal(line.split(' ')[5]?.split(',')[0], 'ro', line);
    });

    it('a shell redirect into a token file fails with "Read-only file system"', async (t) => {
      const fixture = await startMountFixture(t, undefined, { backend, transport });
      const result = spawnSync(
        'bash',
        ['-c', 'echo x > "$1"', 'bash', `${fixture.mountpoint}/github/token`],
        { encoding: 'utf8' },
      );
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, /Read-only file system/);
    });
  });
}
