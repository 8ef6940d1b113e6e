/**
 * NodePublishVolume and NodeUnpublishVolume, without gRPC: check the
 * request, ask the policy, start or stop the volume's mount daemon. Both are
 * idempotent, as the CSI spec requires: kubelet repeats them after timeouts
 * and restarts.
 */
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { MintfsError, describeError, isMintfsError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { detachMount, mountpointState, topMountAt } from '../mounts/mount-table.js';
import type { Reloadable } from '../util/reloadable.js';
import { assertTrustedPath } from '../util/trusted-path.js';
import { KeyedLock } from './keyed-lock.js';
import { authorize, type Policy } from './policy.js';
import { checkTargetOnDisk, parsePublishRequest, parseUnpublishRequest } from './requests.js';
import type { VolumeDaemons } from './volume-daemons.js';
import { agentOf, volumeProfileText } from './volume-profile.js';

export interface NodeVolumesOptions {
  readonly policy: Reloadable<Policy>;
  readonly daemons: VolumeDaemons;
  /** kubelet's root directory (--root-dir), canonical: target paths must be under its pods/. */
  readonly kubeletDir: string;
  readonly logger: Logger;
}

export class NodeVolumes {
  readonly #options: NodeVolumesOptions;
  readonly #lock = new KeyedLock();

  constructor(options: NodeVolumesOptions) {
    this.#options = options;
  }

  async publish(raw: unknown): Promise<void> {
    const { logger, daemons } = this.#options;
    const request = parsePublishRequest(raw, this.#options.kubeletDir);
    const { volumeId, targetPath, pod } = request;
    const agent = agentOf(pod);
    const facts = {
      volumeId,
      targetPath,
      profile: request.profile,
      agent,
      pod: pod.name,
      podUid: pod.uid,
    };
    let profileFile: string;
    try {
      profileFile = authorize(this.#options.policy.current, request.profile, pod);
    } catch (err) {
      logger.warn({ event: 'volume-denied', ...facts }, 'publish refused by the policy');
      throw err;
    }
    await this.#lock.run([`volume:${volumeId}`, `target:${targetPath}`], async () => {
      const existing = daemons.record(volumeId);
      if (existing !== undefined) {
        if (existing.targetPath !== targetPath)
          throw new MintfsError(
            'ERR_VOLUME_CONFLICT',
            `volume ${volumeId} is published at another target path`,
          );
        if (daemons.serving(existing)) {
          logger.info({ event: 'volume-already-published', ...facts }, 'volume already published');
          return;
        }
        // Its daemon died (or was killed with the node's processes): start again.
        logger.warn(
          { event: 'volume-daemon-gone', ...facts },
          'recovering a volume whose daemon is gone',
        );
        await daemons.stop(existing);
      }
      const other = daemons.records().find((r) => r.targetPath === targetPath);
      if (other !== undefined)
        throw new MintfsError(
          'ERR_VOLUME_CONFLICT',
          `another volume (${other.volumeId}) is published at the target path`,
        );
      // Read here, at publish, before anything is made: a bad profile fails this pod (with the
      // reason in its events) and leaves nothing behind.
      const text = volumeProfileText(readTrustedProfile(profileFile), profileFile, pod);
      const exists = checkTargetOnDisk(targetPath);
      // A mintfs mount whose daemon died, left without a record (a lost state directory): recover it.
      if (
        exists &&
        mountpointState(targetPath) === 'stale' &&
        topMountAt(targetPath)?.fstype === MINTFS_FSTYPE
      ) {
        logger.warn(
          { event: 'stale-mount', ...facts },
          'detaching a dead mintfs mount at the target',
        );
        await detachMount(targetPath);
      }
      if (exists && mountpointState(targetPath) !== 'unmounted')
        throw new MintfsError(
          'ERR_VOLUME_CONFLICT',
          `something (${topMountAt(targetPath)?.fstype ?? 'a mount'}) is already mounted at the target path`,
        );
      if (!exists) mkdirSync(targetPath, { mode: 0o750 });
      const record = await daemons.start(
        { volumeId, targetPath, profile: request.profile, agent, pod },
        text,
      );
      logger.info(
        { event: 'volume-published', ...facts, daemonPid: record.pid },
        'volume published',
      );
    });
  }

  /**
   * Rewrites each running volume's profile from the operator's files as they
   * are now (its daemon reloads it on change), so a narrowed profile applies
   * to running pods, not only to the next ones. A volume whose binding is
   * gone keeps its last profile until its pod goes: unmounting it would leave
   * the pod with a dead mount, not with fewer rights; revoke its agent to cut
   * its tokens off at once.
   */
  async resync(reason: string): Promise<void> {
    const { logger, daemons } = this.#options;
    for (const record of daemons.records()) {
      await this.#lock.run([`volume:${record.volumeId}`, `target:${record.targetPath}`], () => {
        const facts = {
          volumeId: record.volumeId,
          profile: record.profile,
          agent: record.agent,
          reason,
        };
        if (daemons.record(record.volumeId) === undefined) return Promise.resolve();
        try {
          const profileFile = authorize(this.#options.policy.current, record.profile, record.pod);
          const text = volumeProfileText(readTrustedProfile(profileFile), profileFile, record.pod);
          if (daemons.updateProfile(record.volumeId, text))
            logger.info(
              { event: 'volume-profile-updated', ...facts },
              'running volume follows its profile',
            );
        } catch (err) {
          const unbound = isMintfsError(err, 'ERR_VOLUME_DENIED');
          logger.warn(
            {
              event: unbound ? 'volume-unbound' : 'volume-profile-invalid',
              ...facts,
              detail: describeError(err),
            },
            unbound
              ? 'the policy no longer binds a running volume: it keeps its last profile until its pod goes (mintfs revoke --agent cuts it off)'
              : 'a running volume keeps its last good profile',
          );
        }
        return Promise.resolve();
      });
    }
  }

  async unpublish(raw: unknown): Promise<void> {
    const { logger, daemons } = this.#options;
    const { volumeId, targetPath } = parseUnpublishRequest(raw, this.#options.kubeletDir);
    await this.#lock.run([`volume:${volumeId}`, `target:${targetPath}`], async () => {
      const record = daemons.record(volumeId);
      if (record === undefined || record.targetPath !== targetPath) {
        // No record, but a mintfs mount there (the state directory was lost): detach it, and its
        // daemon, seeing its mount gone, drains and exits. Else done already, or never published.
        if (topMountAt(targetPath)?.fstype === MINTFS_FSTYPE) {
          logger.warn(
            { event: 'volume-unrecorded', volumeId, targetPath },
            'unpublishing a mintfs mount with no record',
          );
          while (topMountAt(targetPath)?.fstype === MINTFS_FSTYPE) await detachMount(targetPath);
          removeEmptyDirectory(targetPath);
        } else
          logger.info(
            { event: 'volume-not-published', volumeId, targetPath },
            'nothing to unpublish',
          );
        return;
      }
      await daemons.stop(record);
      logger.info(
        {
          event: 'volume-unpublished',
          volumeId,
          targetPath,
          agent: record.agent,
          pod: record.pod.name,
        },
        'volume unpublished',
      );
    });
  }
}

const MINTFS_FSTYPE = 'fuse.mintfs';

function removeEmptyDirectory(path: string): void {
  try {
    rmdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new MintfsError('ERR_MOUNT_FAILED', `could not remove ${path} after unmounting`, {
        cause: err,
      });
  }
}

function readTrustedProfile(profileFile: string): string {
  assertTrustedPath(profileFile, 'profile');
  try {
    return readFileSync(profileFile, 'utf8');
  } catch (err) {
    throw new MintfsError('ERR_PROFILE_UNREADABLE', `profile ${profileFile}: cannot be read`, {
      cause: err,
    });
  }
}
