/**
 * Several mount daemons on one host, starting at the same moment (a system
 * service manager starting every agent's mount at boot does this): each
 * stages its mount under one shared directory, and none may disturb
 * another's stage.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readMountTable } from '../../src/mounts/mount-table.js';
import { ensurePrivateStaging } from '../../src/mounts/propagation.js';
import { BACKENDS } from '../helpers/backends.js';
import { startMountFixture, stopMount } from '../helpers/mount-fixture.js';
import { teardownOf, tempDir } from '../helpers/temp.js';

describe('many mount daemons on one host', () => {
  for (const backend of BACKENDS)
    it(`daemons started together all serve, and all stop cleanly (${backend})`, async (t) => {
      for (let round = 0; round < 3; round++) {
        const fixtures = await Promise.all(
          Array.from({ length: 6 }, () => startMountFixture(t, undefined, { backend })),
        );
        for (const fixture of fixtures)
          assert.ok(readdirSync(join(fixture.mountpoint, 'github')).includes('token'));
        await Promise.all(fixtures.map((fixture) => stopMount(fixture)));
        for (const fixture of fixtures)
          assert.equal(fixture.child.exitCode, 0, `round ${round}: ${fixture.stderr()}`);
      }
    });

  it('daemons racing to set up the staging directory make one private mount of it', async (t) => {
    const dir = join(tempDir(t), 'staging');
    teardownOf(t).add(() => {
      for (let i = 0; i < 10 && readMountTable().some((e) => e.mountpoint === dir); i++)
        spawnSync('umount', ['-l', '--', dir]);
    });
    await Promise.all(Array.from({ length: 8 }, () => ensurePrivateStaging(dir)));
    const mounts = readMountTable().filter((entry) => entry.mountpoint === dir);
    assert.equal(mounts.length, 1, 'one bind mount, not one stacked on another');
    assert.equal(mounts[0]?.shared, false);
    assert.equal(mounts[0]?.slave, false);
  });
});
