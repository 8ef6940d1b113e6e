/**
 * The image (Dockerfile, built by deploy/docker/build-image.sh on a private
 * dockerd from this machine's files) runs the CSI node plugin in a
 * container set up as the DaemonSet sets it up: host PID namespace, the
 * kubelet directory bind-mounted with shared propagation, the host's cgroup
 * hierarchy at /host/sys/fs/cgroup, the socket in a host directory. A pod
 * reads its token through what the container published; the container is
 * removed with `docker rm -f` (every process in its cgroups killed) and
 * started again while the pod reads: no read fails, and the new container
 * unpublishes the volume.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { daemonCgroupDirs } from '../../src/csi/daemon-cgroup.js';
import { processStart } from '../../src/csi/volume-daemons.js';
import { initKeyring } from '../../src/keys/keyring.js';
import { topMountAt } from '../../src/mounts/mount-table.js';
import { inspectToken } from '../../src/token/inspect.js';
import {
  PROFILE,
  cgroupRoot,
  csiClient,
  kubeletPublish,
  makeCgroup,
  newPod,
  podCgroupPath,
  readInPod,
  startPodLoop,
} from '../helpers/csi.js';
import { startDockerEngine } from '../helpers/docker-engine.js';
import { describeOnFirstPass } from '../helpers/node-passes.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';
import { runSync } from '../helpers/spawn.js';
import { teardownOf, tempDir } from '../helpers/temp.js';

const TAG = 'mintfs:csi-image-test';

// The image carries its own Node.js 22: on the first Node.js pass only (node-passes.ts).
describeOnFirstPass('the mintfs image', () => {
  it('runs the CSI node plugin in a container whose volumes outlive it', async (t) => {
    const teardown = teardownOf(t);
    const engine = await startDockerEngine(teardown);
    runSync(join(REPO_ROOT, 'deploy', 'docker', 'build-image.sh'), [TAG], 'the image build', {
      env: { ...process.env, DOCKER_HOST: engine.host },
      timeoutMs: 900_000,
    });
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(
      engine.docker(['run', '--rm', '--network', 'none', TAG, '--version']).trim(),
      `mintfs ${pkg.version}`,
    );

    const dir = tempDir(teardown, 'mintfs-csi-image-');
    chmodSync(dir, 0o755);
    const kubeletDir = join(dir, 'kubelet');
    mkdirSync(join(kubeletDir, 'pods'), { recursive: true });
    // kubelet's directory is a shared mount on a node: what the container mounts reaches us.
    runSync('mount', ['--bind', kubeletDir, kubeletDir], 'a bind of the kubelet dir');
    teardown.add(() => runSync('umount', ['-l', kubeletDir], 'unbinding the kubelet dir'));
    runSync('mount', ['--make-shared', kubeletDir], 'the kubelet dir shared');
    for (const sub of ['csi', 'state', 'policy', 'profiles']) mkdirSync(join(dir, sub));
    initKeyring(join(dir, 'keys'), new Date());
    writeFileSync(join(dir, 'profiles', 'github-readonly.yaml'), PROFILE);
    writeFileSync(
      join(dir, 'policy', 'policy.yaml'),
      'profiles: /etc/mintfs/profiles\nbindings:\n  - profile: github-readonly\n    namespaces: [agents]\n',
    );
    // The daemons' cgroup, in every hierarchy, as the container will make it; killed and removed last.
    const daemonCgroup = `mintfs-csi-image-${process.pid}`;
    const hostCgroups = daemonCgroupDirs(join('/sys/fs/cgroup', daemonCgroup));
    // Live processes in them: an exited daemon reparented to this machine's init may linger as a
    // zombie until init reaps it, and a zombie serves nothing.
    const livePids = () =>
      [
        ...new Set(
          hostCgroups.flatMap((c) => readFileSync(join(c, 'cgroup.procs'), 'utf8').split('\n')),
        ),
      ]
        .filter((pid) => pid !== '' && processStart(Number(pid)) !== undefined)
        .sort();
    teardown.add(async () => {
      for (const pid of livePids()) spawnSync('kill', ['-KILL', pid]);
      await pollUntil('the volume daemons to be gone', () => livePids().length === 0);
      // rmdir waits for init to reap them.
      await pollUntil(
        'the daemon cgroups to be removed',
        () => {
          for (const cgroup of hostCgroups)
            try {
              if (existsSync(cgroup)) rmdirSync(cgroup);
            } catch {
              return false;
            }
          return true;
        },
        60_000,
      );
    });
    const socket = join(dir, 'csi', 'csi.sock');
    const startContainer = async () => {
      engine.docker([
        'run',
        '--detach',
        '--name',
        'mintfs-csi-node',
        '--network',
        'none',
        '--pid',
        'host',
        // What privileged: true gives the DaemonSet, less what this machine's engine cannot grant.
        '--cap-add',
        'SYS_ADMIN',
        '--device',
        '/dev/fuse',
        '--security-opt',
        'apparmor=unconfined',
        '--security-opt',
        'seccomp=unconfined',
        '-v',
        `${join(dir, 'csi')}:/csi`,
        '-v',
        `${kubeletDir}:${kubeletDir}:rshared`,
        '-v',
        `${join(dir, 'state')}:/var/lib/mintfs-csi`,
        '-v',
        '/sys/fs/cgroup:/host/sys/fs/cgroup',
        '-v',
        `${join(dir, 'keys')}:/etc/mintfs/keys:ro`,
        '-v',
        `${join(dir, 'policy')}:/etc/mintfs/policy:ro`,
        '-v',
        `${join(dir, 'profiles')}:/etc/mintfs/profiles:ro`,
        TAG,
        'csi',
        '--endpoint=unix:///csi/csi.sock',
        '--keys=/etc/mintfs/keys',
        '--policy=/etc/mintfs/policy/policy.yaml',
        `--kubelet-dir=${kubeletDir}`,
        `--daemon-cgroup=/host/sys/fs/cgroup/${daemonCgroup}`,
      ]);
      const client = csiClient(socket);
      await pollUntil(
        'the plugin in the container to answer Probe',
        async () => existsSync(socket) && (await client.identity('Probe')).ok,
        60_000,
        () => engine.docker(['logs', 'mintfs-csi-node']),
      );
      return client;
    };
    const removeContainer = () => engine.docker(['rm', '--force', 'mintfs-csi-node']);
    teardown.add(() => {
      engine.docker(['rm', '--force', 'mintfs-csi-node']);
    });

    const plugin = { kubeletDir, client: await startContainer() };
    const pod = newPod('agents', 'coder');
    const volume = kubeletPublish(plugin, pod);
    teardown.add(() => {
      if (topMountAt(volume.targetPath)) runSync('umount', ['-l', volume.targetPath], 'unmount');
    });
    assert.deepEqual(await volume.publish(), { ok: true, value: {} });
    const cgroups = cgroupRoot(teardown);
    const podCgroup = makeCgroup(teardown, cgroups, podCgroupPath(pod, 'cgroupfs'));
    const first = readInPod(podCgroup, volume.targetPath, tempDir(teardown));
    assert.equal(first.status, 0, first.stderr);
    assert.equal(inspectToken(first.stdout).agent, 'agents/coder');

    const pidsBefore = livePids();
    assert.equal(pidsBefore.length, 1, 'one mount daemon, in the host cgroup');
    const loop = await startPodLoop(teardown, podCgroup, volume.targetPath, tempDir(teardown));
    plugin.client.close();
    removeContainer();
    const before = loop.samples().length;
    await pollUntil(
      'the pod to read with no plugin container',
      () => loop.samples().length > before + 50,
    );
    plugin.client = await startContainer();
    teardown.add(() => plugin.client.close());
    // kubelet publishes again after a plugin restart: the same daemon still serves it.
    assert.deepEqual(await volume.publish(), { ok: true, value: {} });
    assert.deepEqual(livePids(), pidsBefore);
    const after = loop.samples().length;
    await pollUntil('the pod to read after the restart', () => loop.samples().length > after + 50);
    const samples = await loop.stop();
    const failed = samples.filter((s) => !s.ok);
    assert.deepEqual(failed.slice(0, 3), [], `${failed.length} of ${samples.length} reads failed`);

    assert.deepEqual(await volume.unpublish(), { ok: true, value: {} });
    assert.equal(topMountAt(volume.targetPath), undefined);
    assert.equal(existsSync(volume.targetPath), false);
    assert.deepEqual(livePids(), [], 'the mount daemon outlived its unpublish');
  });
});
