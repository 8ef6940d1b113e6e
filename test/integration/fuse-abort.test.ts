/**
 * A stopping daemon touches only what is its own. Its mount was found by
 * mount id and device when it mounted; both numbers are reused by the kernel
 * once that mount is gone (a takeover detaches it), so neither alone may be
 * trusted at stop.
 *
 * Stopping a fuse-native mount aborts its FUSE connection (the only way to
 * end fuse-native's thread while a reader still holds the detached mount).
 * The abort must reach that connection and no other: once a detached mount's
 * last reference goes, its device minor is free and the next FUSE mount on
 * the host gets it. Aborting by minor then killed the stranger's mount (seen
 * in CI: a `mintfs run` sandbox's fresh mount answering ENOTCONN while
 * another daemon stopped).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { fuseNativeBackend } from '../../src/fuse/fuse-native-backend.js';
import type { MountedFileSystem } from '../../src/fuse/backend.js';
import { MintFs } from '../../src/fs/mint-fs.js';
import { buildTree } from '../../src/fs/virtual-tree.js';
import { createLogger } from '../../src/log/logger.js';
import {
  detachMount,
  mountById,
  openFuseConnection,
  topMountAt,
} from '../../src/mounts/mount-table.js';
import { detachMountById } from '../../src/mounts/propagation.js';
import { parseProfile } from '../../src/profile/load-profile.js';
import { newTokenId } from '../../src/token/identifier.js';
import { DEMO_PROFILE } from '../helpers/mount-fixture.js';
import { tempDir, teardownOf } from '../helpers/temp.js';
import { newKey, singleKeyKeyring } from '../helpers/tokens.js';

function mintFs(): MintFs {
  const keyring = singleKeyKeyring(newKey());
  const tree = buildTree(parseProfile(DEMO_PROFILE, 'demo'));
  return new MintFs({
    tree: () => tree,
    keyring: () => keyring,
    clock: () => new Date(),
    newTokenId,
    logger: createLogger({ stream: new PassThrough() }),
  });
}

const minorOf = (mountpoint: string) => topMountAt(mountpoint)?.device.split(':')[1];

describe('a stopping daemon touches only its own mount', () => {
  it("a mount that got the stopped mount's device number keeps serving", async (t) => {
    const dir = tempDir(t);
    const teardown = teardownOf(t);
    const logger = createLogger({ stream: new PassThrough() });
    const mounts: MountedFileSystem[] = [];
    teardown.add(async () => {
      for (const m of mounts.reverse()) await m.close();
    });
    const mount = async (name: string) => {
      const mountpoint = join(dir, name);
      mkdirSync(mountpoint);
      const mounted = await fuseNativeBackend.mount(mountpoint, mintFs(), {
        allowOther: false,
        logger,
      });
      mounts.push(mounted);
      return mounted;
    };

    const first = await mount('first');
    const minor = minorOf(first.mountpoint);
    assert.ok(minor !== undefined);
    // Detached with nothing holding it: its connection goes, and its minor is free.
    assert.equal(await first.detach(), 'detached');
    // The kernel hands out the lowest free minor: the next mount gets it. A
    // mount elsewhere on the host (another test file) may take it first; ours
    // stay mounted, filling lower holes, until it is free again.
    let second: MountedFileSystem | undefined;
    for (let attempt = 0; attempt < 20 && second === undefined; attempt++) {
      const candidate = await mount(`second-${attempt}`);
      if (minorOf(candidate.mountpoint) === minor) second = candidate;
    }
    assert.ok(second, `no later mount got minor ${minor} back`);

    // Stopping the first (detached already) aborts its connection, which is gone.
    await first.close();
    // Asynchronously: this process serves the mount, on the very thread a
    // synchronous read would block.
    assert.deepEqual((await readdir(second.mountpoint)).sort(), ['github']);
  });

  it('a mount that got the id of one detached by someone else (a takeover) is left mounted', async (t) => {
    const dir = tempDir(t);
    const teardown = teardownOf(t);
    const logger = createLogger({ stream: new PassThrough() });
    const mountpoint = join(dir, 'ours');
    mkdirSync(mountpoint);
    const ours = await fuseNativeBackend.mount(mountpoint, mintFs(), { allowOther: false, logger });
    teardown.add(() => ours.close());
    const device = mountById(ours.mountId)?.device;
    assert.ok(device !== undefined);
    // Detached behind the daemon's back, as a takeover does.
    await detachMount(mountpoint);
    // Any later mount may get that id back: a tmpfs stands for it here. (Waiting
    // for the kernel to hand this very id out again depends on what else mounts
    // on the host meanwhile; the check is on whatever mount holds the id.)
    const stranger = join(dir, 'tmpfs');
    mkdirSync(stranger);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', stranger]);
    teardown.add(() => execFileSync('umount', ['-l', stranger]));
    const strangerId = topMountAt(stranger)?.id;
    assert.ok(strangerId !== undefined);
    assert.equal(await detachMountById(strangerId, device), 'already-gone');
    assert.equal(mountById(strangerId)?.mountpoint, stranger, 'the stranger is still mounted');
    // And the daemon's own stop, whoever holds its old id by now, detaches nothing.
    assert.equal(await ours.detach(), 'already-gone');
    await ours.close();
    assert.equal(mountById(strangerId)?.mountpoint, stranger, 'the stranger is still mounted');
  });

  it('a later FUSE mount with the same id and device as ours is left mounted', async (t) => {
    // Seen in CI: ours was detached behind the daemon's back, and another
    // daemon's mount got both its mount id and its device minor (both come
    // from small pools). The mount table alone cannot tell them apart; the
    // FUSE connection held since mounting can. The stranger here is a real
    // FUSE mount; its id and device stand for the reused ones.
    const dir = tempDir(t);
    const teardown = teardownOf(t);
    const logger = createLogger({ stream: new PassThrough() });
    const mount = async (name: string) => {
      const mountpoint = join(dir, name);
      mkdirSync(mountpoint);
      const mounted = await fuseNativeBackend.mount(mountpoint, mintFs(), {
        allowOther: false,
        logger,
      });
      teardown.add(() => mounted.close());
      const entry = mountById(mounted.mountId);
      assert.ok(entry);
      const connection = await openFuseConnection(entry.device);
      teardown.add(() => connection.release());
      return { mounted, entry, connection };
    };
    const ours = await mount('ours');
    assert.equal(ours.connection.alive(), true);
    await detachMount(ours.mounted.mountpoint);
    assert.equal(
      ours.connection.alive(),
      false,
      'a detached mount with nothing open has no connection',
    );

    const stranger = await mount('stranger');
    assert.equal(stranger.connection.alive(), true);
    assert.equal(
      await detachMountById(stranger.entry.id, stranger.entry.device, () =>
        ours.connection.alive(),
      ),
      'already-gone',
    );
    assert.equal(
      mountById(stranger.entry.id)?.mountpoint,
      stranger.mounted.mountpoint,
      'the stranger is still mounted',
    );
    assert.deepEqual((await readdir(stranger.mounted.mountpoint)).sort(), ['github']);
  });
});
