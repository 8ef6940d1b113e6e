/**
 * `mintfs csi` as the CSI spec describes a node plugin, over its real unix
 * socket with a gRPC client: the Identity and Node answers, idempotent
 * publish and unpublish, and the error codes for missing or bad arguments,
 * for writable or block volumes, for a pod the policy does not bind, and
 * for hostile target paths. Every refusal leaves nothing mounted.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { processStart } from '../../src/csi/volume-daemons.js';
import { topMountAt } from '../../src/mounts/mount-table.js';
import {
  kubeletPublish,
  newPod,
  startPlugin,
  type CallResult,
  type PluginFixture,
} from '../helpers/csi.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';
import { suiteTeardown } from '../helpers/temp.js';

function assertRefused(result: CallResult, code: status, field: RegExp): void {
  assert.equal(result.ok, false, 'the call succeeded');
  if (result.ok) return;
  assert.equal(status[result.code], status[code], result.details);
  assert.match(result.details, field);
}

function assertNothingAt(target: string): void {
  assert.equal(topMountAt(target), undefined, `${target} is mounted`);
  assert.equal(existsSync(target), false, `${target} was created`);
}

function recordedPid(plugin: PluginFixture, volumeId: string): number {
  const record = JSON.parse(
    readFileSync(join(plugin.stateDir, 'volumes', `${volumeId}.json`), 'utf8'),
  ) as { pid: number };
  return record.pid;
}

describe('mintfs csi: the CSI spec over the unix socket', () => {
  const teardown = suiteTeardown();
  let plugin: PluginFixture;
  const started = startPlugin(teardown).then((p) => (plugin = p));

  it('Identity: the driver name and version, no plugin capabilities (node only), ready', async () => {
    await started;
    const info = await plugin.client.identity('GetPluginInfo');
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.deepEqual(info, {
      ok: true,
      value: { name: 'csi.mintfs.dev', vendorVersion: pkg.version, manifest: {} },
    });
    assert.deepEqual(await plugin.client.identity('GetPluginCapabilities'), {
      ok: true,
      value: { capabilities: [] },
    });
    assert.deepEqual(await plugin.client.identity('Probe'), {
      ok: true,
      value: { ready: { value: true } },
    });
  });

  it('Node: the node id, and no staging, stats or expansion capabilities', async () => {
    await started;
    const info = await plugin.client.node('NodeGetInfo');
    assert.equal(info.ok && info.value['nodeId'], 'node-1');
    assert.deepEqual(await plugin.client.node('NodeGetCapabilities'), {
      ok: true,
      value: { capabilities: [] },
    });
    // Not served: UNIMPLEMENTED, and no controller at all.
    for (const path of [
      '/csi.v1.Node/NodeStageVolume',
      '/csi.v1.Node/NodeGetVolumeStats',
      '/csi.v1.Controller/CreateVolume',
    ])
      assert.equal(status[await plugin.client.status(path)], 'UNIMPLEMENTED', path);
  });

  it('a missing volume_id, target_path or volume_capability is INVALID_ARGUMENT naming it', async () => {
    await started;
    const volume = kubeletPublish(plugin, newPod());
    for (const field of ['volumeId', 'targetPath', 'volumeCapability'] as const) {
      const request: Record<string, unknown> = { ...volume.request };
      delete request[field];
      const result = await plugin.client.node('NodePublishVolume', request);
      const name = field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      assertRefused(result, status.INVALID_ARGUMENT, new RegExp(`^${name}: required`));
    }
    assertNothingAt(volume.targetPath);
    assertRefused(
      await plugin.client.node('NodeUnpublishVolume', { targetPath: volume.targetPath }),
      status.INVALID_ARGUMENT,
      /^volume_id: required/,
    );
    assertRefused(
      await plugin.client.node('NodeUnpublishVolume', { volumeId: volume.volumeId }),
      status.INVALID_ARGUMENT,
      /^target_path: required/,
    );
  });

  it('a writable, block, multi-node-writer or flagged volume is INVALID_ARGUMENT, nothing mounted', async () => {
    await started;
    const volume = kubeletPublish(plugin, newPod());
    const cases: Array<[string, object, RegExp]> = [
      ['readOnly: false', { readonly: false }, /^readonly: must be true/],
      [
        'block',
        { volumeCapability: { block: {}, accessMode: { mode: 'SINGLE_NODE_WRITER' } } },
        /volume_capability\.(block|mount)/,
      ],
      [
        'multi-node writer',
        {
          volumeCapability: { mount: {}, accessMode: { mode: 'MULTI_NODE_MULTI_WRITER' } },
        },
        /^volume_capability\.access_mode\.mode: must be one of/,
      ],
      [
        'mount flags',
        {
          volumeCapability: {
            mount: { mountFlags: ['exec'] },
            accessMode: { mode: 'SINGLE_NODE_WRITER' },
          },
        },
        /^volume_capability\.mount\.mount_flags: must be empty/,
      ],
      [
        'an fsType',
        {
          volumeCapability: {
            mount: { fsType: 'ext4' },
            accessMode: { mode: 'SINGLE_NODE_WRITER' },
          },
        },
        /^volume_capability\.mount\.fs_type: must be empty/,
      ],
    ];
    for (const [what, change, field] of cases) {
      const result = await volume.publish();
      assert.ok(result.ok, 'the plain request is accepted');
      await volume.unpublish();
      const refused = await plugin.client.node('NodePublishVolume', {
        ...volume.request,
        ...change,
      });
      assertRefused(refused, status.INVALID_ARGUMENT, field);
      assertNothingAt(volume.targetPath);
      assert.ok(what);
    }
  });

  it('a persistent volume, missing pod info, an unknown attribute or no profile is INVALID_ARGUMENT', async () => {
    await started;
    const volume = kubeletPublish(plugin, newPod());
    const context = volume.request.volumeContext;
    const without = (key: string) =>
      Object.fromEntries(Object.entries(context).filter(([name]) => name !== key));
    const cases: Array<[Record<string, string>, RegExp]> = [
      [without('csi.storage.k8s.io/ephemeral'), /ephemeral: must be "true"/],
      [without('csi.storage.k8s.io/pod.uid'), /pod\.uid: required \(set podInfoOnMount/],
      [without('csi.storage.k8s.io/serviceAccount.name'), /serviceAccount\.name: required/],
      [without('profile'), /^volume_context\.profile: required/],
      [{ ...context, readers: 'anyone' }, /unknown attribute "readers"/],
      [{ ...context, profile: '../../etc/shadow' }, /profile: must be a profile name/],
      [{ ...context, 'csi.storage.k8s.io/pod.namespace': 'Agents/x' }, /namespace: must be/],
    ];
    for (const [volumeContext, field] of cases) {
      const refused = await plugin.client.node('NodePublishVolume', {
        ...volume.request,
        volumeContext,
      });
      assertRefused(refused, status.INVALID_ARGUMENT, field);
    }
    assertNothingAt(volume.targetPath);
  });

  it("target paths outside the pod's own kubelet volume directory are refused, nothing made there", async () => {
    await started;
    const pod = newPod();
    const other = newPod();
    const volume = kubeletPublish(plugin, pod);
    const pods = join(plugin.kubeletDir, 'pods');
    const csiDir = `volumes/kubernetes.io~csi`;
    const hostile = [
      join(plugin.dir, 'elsewhere', 'mount'),
      `${pods}/${pod.uid}/${csiDir}/secrets/../../../../../../escape/mount`,
      `${pods}/${pod.uid}/${csiDir}/secrets//mount`,
      `${pods}/${pod.uid}/${csiDir}/secrets/mount/`,
      `${pods}/${pod.uid}/volumes/kubernetes.io~empty-dir/secrets/mount`,
      // Another pod's volume: its uid in the path, ours in the context.
      `${pods}/${other.uid}/${csiDir}/secrets/mount`,
      'relative/mount',
    ];
    for (const targetPath of hostile) {
      const refused = await plugin.client.node('NodePublishVolume', {
        ...volume.request,
        targetPath,
      });
      assertRefused(refused, status.INVALID_ARGUMENT, /^target_path: /);
      assert.equal(topMountAt(targetPath), undefined);
    }
    // The volume's directory a symbolic link to somewhere else (a hostile or broken node).
    const elsewhere = join(plugin.dir, 'link-target');
    mkdirSync(elsewhere);
    mkdirSync(join(pods, pod.uid, 'volumes', 'kubernetes.io~csi'), { recursive: true });
    symlinkSync(elsewhere, join(pods, pod.uid, 'volumes', 'kubernetes.io~csi', 'secrets'));
    assertRefused(
      await plugin.client.node('NodePublishVolume', volume.request),
      status.INVALID_ARGUMENT,
      /^target_path: goes through a symbolic link/,
    );
    assertNothingAt(join(elsewhere, 'mount'));
    // Unpublish holds paths to the same shape: it never detaches or removes anything else.
    assertRefused(
      await plugin.client.node('NodeUnpublishVolume', {
        volumeId: volume.volumeId,
        targetPath: plugin.dir,
      }),
      status.INVALID_ARGUMENT,
      /^target_path: must be /,
    );
  });

  it('a profile the policy does not bind to the namespace and service account is PERMISSION_DENIED, nothing mounted', async () => {
    await started;
    const cases = [
      { pod: newPod('agents', 'intruder'), profile: 'github-readonly' },
      { pod: newPod('default', 'coder'), profile: 'github-readonly' },
      // A profile file that exists, but no binding names it.
      { pod: newPod('agents', 'coder'), profile: 'github-other' },
      { pod: newPod('agents', 'coder'), profile: 'no-such-profile' },
    ];
    for (const { pod, profile } of cases) {
      const volume = kubeletPublish(plugin, pod, { profile });
      assertRefused(await volume.publish(), status.PERMISSION_DENIED, /is not bound to/);
      assertNothingAt(volume.targetPath);
    }
    assert.match(plugin.log(), /"event":"volume-denied"/);
  });

  it('publish and unpublish are idempotent: repeated, concurrent, and of a volume never published', async () => {
    await started;
    const volume = kubeletPublish(plugin, newPod());
    const results = await Promise.all([volume.publish(), volume.publish(), volume.publish()]);
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, true, true],
    );
    const pid = recordedPid(plugin, volume.volumeId);
    assert.deepEqual(await volume.publish(), { ok: true, value: {} });
    assert.equal(recordedPid(plugin, volume.volumeId), pid, 'a second daemon was started');
    assert.equal(topMountAt(volume.targetPath)?.fstype, 'fuse.mintfs');
    assert.deepEqual(await volume.unpublish(), { ok: true, value: {} });
    assertNothingAt(volume.targetPath);
    assert.equal(processStart(pid), undefined, 'the mount daemon still runs');
    assert.deepEqual(await volume.unpublish(), { ok: true, value: {} });
    const never = kubeletPublish(plugin, newPod());
    assert.deepEqual(await never.unpublish(), { ok: true, value: {} });
  });

  it('a volume whose record was lost is still unpublished, and its daemon exits', async () => {
    await started;
    const volume = kubeletPublish(plugin, newPod());
    assert.ok((await volume.publish()).ok);
    const pid = recordedPid(plugin, volume.volumeId);
    rmSync(join(plugin.stateDir, 'volumes', `${volume.volumeId}.json`));
    assert.deepEqual(await volume.unpublish(), { ok: true, value: {} });
    assertNothingAt(volume.targetPath);
    // Its mount gone from under it, the daemon drains and exits (a zombie is gone too).
    await pollUntil('the unrecorded daemon to exit', () => processStart(pid) === undefined);
  });

  it('another volume at a published target path is ALREADY_EXISTS', async () => {
    await started;
    const volume = kubeletPublish(plugin, newPod());
    assert.ok((await volume.publish()).ok);
    try {
      const refused = await plugin.client.node('NodePublishVolume', {
        ...volume.request,
        volumeId: 'csi-another',
      });
      assertRefused(refused, status.ALREADY_EXISTS, /another volume/);
    } finally {
      await volume.unpublish();
    }
    assertNothingAt(volume.targetPath);
  });

  it('a policy edit applies to the next publish without a restart', async () => {
    await started;
    const pod = newPod('research', 'analyst');
    const volume = kubeletPublish(plugin, pod, { profile: 'github-other' });
    assertRefused(await volume.publish(), status.PERMISSION_DENIED, /not bound/);
    plugin.writePolicy(`profiles: ${plugin.profilesDir}
bindings:
  - profile: github-readonly
    namespaces: [agents]
    serviceAccounts: [coder]
  - profile: github-other
    namespaces: [research]
`);
    await pollUntil('the new binding to apply', async () => (await volume.publish()).ok);
    assert.equal(topMountAt(volume.targetPath)?.fstype, 'fuse.mintfs');
    assert.ok((await volume.unpublish()).ok);
    // A broken edit keeps the last good policy (it never opens up, never closes down).
    plugin.writePolicy('profiles: relative\nbindings: []\n');
    await pollUntil('the bad policy to be reported', () =>
      /"event":"policy-reload-failed"/.test(plugin.log()),
    );
    assert.ok((await volume.publish()).ok);
    assert.ok((await volume.unpublish()).ok);
  });

  it('a bound profile that does not pass the schema is FAILED_PRECONDITION naming its field, nothing made', async () => {
    await started;
    writeFileSync(
      join(plugin.profilesDir, 'broken.yaml'),
      'agent: x\nfiles:\n  t:\n    service: github\n',
    );
    plugin.writePolicy(`profiles: ${plugin.profilesDir}
bindings:
  - profile: broken
    namespaces: [agents]
`);
    const volume = kubeletPublish(plugin, newPod(), { profile: 'broken' });
    await pollUntil('the new policy to apply', async () => {
      const result = await volume.publish();
      return !result.ok && result.code !== status.PERMISSION_DENIED ? result : undefined;
    }).then((result) =>
      assertRefused(result, status.FAILED_PRECONDITION, /broken\.yaml: files\.t\.hosts: required/),
    );
    assertNothingAt(volume.targetPath);
  });
});
