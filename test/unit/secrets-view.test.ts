/**
 * The directory of symlinks that leads /secrets into a followed mount's
 * parent on runc and Docker (secrets-view.ts), on real directories: a plain
 * directory stands in for the mount's root (the links are read from its
 * listing, nothing else).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LinkFarm, SANDBOX_MOUNT_PARENT } from '../../src/contain/secrets-view.js';
import { tempDir } from '../helpers/temp.js';

function links(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((name) => [name, readlinkSync(join(dir, name))]));
}

describe('the link farm of a followed mount', () => {
  it('links every top-level entry into the followed path, and follows additions and removals', (t) => {
    const dir = tempDir(t);
    const mount = join(dir, 'mount');
    mkdirSync(join(mount, 'github'), { recursive: true });
    writeFileSync(join(mount, 'top-level-token'), '');
    const farm = new LinkFarm(mount, { links: join(dir, 'links'), entry: 'secrets' });
    farm.create();
    assert.deepEqual(links(join(dir, 'links')), {
      github: `${SANDBOX_MOUNT_PARENT}/secrets/github`,
      'top-level-token': `${SANDBOX_MOUNT_PARENT}/secrets/top-level-token`,
    });

    // A profile reload adds a service and drops a file.
    mkdirSync(join(mount, 'openai'));
    writeFileSync(join(mount, 'ignored'), '');
    rmdirSync(join(mount, 'github'));
    farm.sync();
    assert.deepEqual(Object.keys(links(join(dir, 'links'))).sort(), [
      'ignored',
      'openai',
      'top-level-token',
    ]);

    // Between two daemons the mount cannot be listed: the links stay as they were.
    const gone = new LinkFarm(join(dir, 'no-such-mount'), {
      links: join(dir, 'links'),
      entry: 'secrets',
    });
    gone.sync();
    assert.equal(Object.keys(links(join(dir, 'links'))).length, 3);

    farm.remove();
    assert.deepEqual(
      readdirSync(dir),
      ['mount'],
      'the link directory is removed, the mount untouched',
    );
    assert.deepEqual(readdirSync(mount).sort(), ['ignored', 'openai', 'top-level-token']);
  });

  it('never links a name that would escape or collide with its own temporary names', (t) => {
    const dir = tempDir(t);
    const mount = join(dir, 'mount');
    mkdirSync(mount);
    writeFileSync(join(mount, '.new-x'), '');
    writeFileSync(join(mount, 'ok'), '');
    const farm = new LinkFarm(mount, { links: join(dir, 'links'), entry: 'secrets' });
    farm.create();
    assert.deepEqual(Object.keys(links(join(dir, 'links'))), ['ok']);
    farm.remove();
  });
});
