/**
 * A kubelet simulation against the real `mintfs csi`: kubelet's paths and
 * volume context, "pods" that are processes in their own mount namespace
 * and in cgroups named as kubelet names them (systemd and cgroupfs
 * drivers), reading their token through a private bind of the published
 * target, as a container's /secrets is. The plugin's "container" is killed
 * outright and started again while a pod reads in a loop.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { topMountAt } from '../../src/mounts/mount-table.js';
import { inspectToken } from '../../src/token/inspect.js';
import {
  PROFILE,
  kubeletPublish,
  makeCgroup,
  newPod,
  podCgroupPath,
  readInPod,
  startPlugin,
  startPodLoop,
} from '../helpers/csi.js';
import { pollUntil } from '../helpers/poll.js';
import { teardownOf, tempDir } from '../helpers/temp.js';

describe('mintfs csi under a simulated kubelet', () => {
  it("a pod reads tokens naming its namespace/service account and itself; another pod's process is refused", async (t) => {
    const teardown = teardownOf(t);
    const plugin = await startPlugin(teardown);
    const pod = newPod('agents', 'coder');
    const neighbour = newPod('agents', 'coder');
    const volume = kubeletPublish(plugin, pod);
    assert.deepEqual(await volume.publish(), { ok: true, value: {} });
    const podCgroup = makeCgroup(teardown, plugin.cgroups, podCgroupPath(pod, 'systemd'));
    const neighbourCgroup = makeCgroup(
      teardown,
      plugin.cgroups,
      podCgroupPath(neighbour, 'cgroupfs'),
    );

    const read = readInPod(podCgroup, volume.targetPath, tempDir(teardown));
    assert.equal(read.status, 0, read.stderr);
    const token = inspectToken(read.stdout);
    assert.equal(token.agent, 'agents/coder');
    const reader = token.caveats.find((caveat) => caveat.startsWith('reader '));
    assert.ok(reader, `no reader caveat in ${token.caveats.join(' | ')}`);
    // The reader's cgroup, as the kernel names it: the pod's uid is in it.
    assert.match(reader, new RegExp(`pod${pod.uid.replaceAll('-', '_')}\\.slice`));

    // The neighbour reaching the first pod's volume (a hostPath, a shared mount): refused.
    const stolen = readInPod(neighbourCgroup, volume.targetPath, tempDir(teardown));
    assert.notEqual(stolen.status, 0);
    assert.match(stolen.stderr, /Permission denied/);
    assert.equal(stolen.stdout, '');
    // And the node's own processes are no pod: refused too.
    const host = readInPod(
      makeCgroup(teardown, plugin.cgroups, 'system.slice/sshd.service'),
      volume.targetPath,
      tempDir(teardown),
    );
    assert.match(host.stderr, /Permission denied/);

    // The neighbour's own volume (cgroupfs naming) is its to read.
    const own = kubeletPublish(plugin, neighbour);
    assert.ok((await own.publish()).ok);
    const ownRead = readInPod(neighbourCgroup, own.targetPath, tempDir(teardown));
    assert.equal(ownRead.status, 0, ownRead.stderr);
    assert.match(
      inspectToken(ownRead.stdout).caveats.find((c) => c.startsWith('reader ')) ?? '',
      new RegExp(`/pod${neighbour.uid}/`),
    );

    const volumeLog = readFileSync(
      join(plugin.stateDir, 'volumes', `${volume.volumeId}.log`),
      'utf8',
    );
    assert.match(volumeLog, /"event":"mint-denied"/);
    // Nothing secret in the plugin's or the volume's log: no token text.
    assert.ok(!plugin.log().includes(read.stdout));
    assert.ok(!volumeLog.includes(read.stdout));

    for (const v of [volume, own]) {
      assert.deepEqual(await v.unpublish(), { ok: true, value: {} });
      assert.equal(topMountAt(v.targetPath), undefined);
      assert.equal(existsSync(v.targetPath), false);
    }
    assert.deepEqual(readdirSync(join(plugin.stateDir, 'volumes')), []);
  });

  it('the plugin killed and restarted while a pod reads in a loop: zero failed reads, then unpublish leaves nothing', async (t) => {
    const teardown = teardownOf(t);
    const plugin = await startPlugin(teardown);
    const pod = newPod('agents', 'coder');
    const volume = kubeletPublish(plugin, pod);
    assert.ok((await volume.publish()).ok);
    const daemonPids = plugin.daemonCgroup.pids();
    assert.equal(daemonPids.length, 1, 'one mount daemon, outside the plugin container');
    const podCgroup = makeCgroup(teardown, plugin.cgroups, podCgroupPath(pod, 'systemd'));
    const loop = await startPodLoop(teardown, podCgroup, volume.targetPath, tempDir(teardown));

    const before = loop.samples().length;
    await plugin.kill();
    assert.equal(existsSync(plugin.socket), true, 'the killed plugin left its socket behind');
    // Reads go on while no plugin runs at all.
    await pollUntil(
      'the pod to read with the plugin down',
      () => loop.samples().length > before + 50,
    );
    await plugin.start();
    assert.deepEqual(plugin.daemonCgroup.pids(), daemonPids, 'the mount daemon was replaced');
    assert.match(plugin.log(), /"event":"volume-adopted"/);
    const restarted = loop.samples().length;
    await pollUntil(
      'the pod to read after the restart',
      () => loop.samples().length > restarted + 50,
    );
    // kubelet publishes again after a plugin restart: still the same daemon.
    assert.ok((await volume.publish()).ok);
    assert.deepEqual(plugin.daemonCgroup.pids(), daemonPids);

    const samples = await loop.stop();
    const failed = samples.filter((sample) => !sample.ok);
    assert.deepEqual(failed.slice(0, 3), [], `${failed.length} of ${samples.length} reads failed`);
    assert.ok(samples.length > 100, `only ${samples.length} reads`);
    for (const sample of samples.slice(-5))
      assert.equal(inspectToken(sample.text).agent, 'agents/coder');

    // The pod is gone; kubelet unpublishes through the new plugin.
    assert.deepEqual(await volume.unpublish(), { ok: true, value: {} });
    assert.equal(topMountAt(volume.targetPath), undefined);
    assert.equal(existsSync(volume.targetPath), false);
    assert.deepEqual(plugin.daemonCgroup.pids(), []);
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(pod.uid));
  });

  it("a profile edit reaches a running pod's next token; a binding removed leaves it serving, logged", async (t) => {
    const teardown = teardownOf(t);
    const plugin = await startPlugin(teardown);
    const pod = newPod('agents', 'coder');
    const volume = kubeletPublish(plugin, pod);
    assert.ok((await volume.publish()).ok);
    const podCgroup = makeCgroup(teardown, plugin.cgroups, podCgroupPath(pod, 'systemd'));
    const root = tempDir(teardown);
    const pathCaveat = () => {
      const read = readInPod(podCgroup, volume.targetPath, root);
      assert.equal(read.status, 0, read.stderr);
      return inspectToken(read.stdout).caveats.find((c) => c.startsWith('path '));
    };
    assert.equal(pathCaveat(), 'path /repos/acme/**');
    // Replaced, as a ConfigMap update replaces it.
    const file = join(plugin.profilesDir, 'github-readonly.yaml');
    writeFileSync(`${file}.new`, PROFILE.replace('/repos/acme/**', '/repos/acme/widgets/**'));
    renameSync(`${file}.new`, file);
    await pollUntil('the narrowed profile to reach the pod', () =>
      pathCaveat() === 'path /repos/acme/widgets/**' ? true : undefined,
    );
    assert.match(plugin.log(), /"event":"volume-profile-updated"/);

    plugin.writePolicy(`profiles: ${plugin.profilesDir}\nbindings: []\n`);
    await pollUntil('the unbound volume to be logged', () =>
      /"event":"volume-unbound"/.test(plugin.log()),
    );
    assert.equal(pathCaveat(), 'path /repos/acme/widgets/**');
    assert.ok((await volume.unpublish()).ok);
  });

  it('a volume whose daemon was killed is mounted again on the next publish', async (t) => {
    const teardown = teardownOf(t);
    const plugin = await startPlugin(teardown);
    const pod = newPod();
    const volume = kubeletPublish(plugin, pod);
    assert.ok((await volume.publish()).ok);
    await plugin.daemonCgroup.killAll();
    assert.ok((await volume.publish()).ok);
    const podCgroup = makeCgroup(teardown, plugin.cgroups, podCgroupPath(pod, 'cgroupfs'));
    const read = readInPod(podCgroup, volume.targetPath, tempDir(teardown));
    assert.equal(read.status, 0, read.stderr);
    assert.ok((await volume.unpublish()).ok);
    assert.equal(topMountAt(volume.targetPath), undefined);
  });
});
