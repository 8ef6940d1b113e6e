/**
 * The native backend: libfuse3's low-level API in C (native/addon), on a
 * thread of its own. Every lookup of a file answers a fresh inode with zero
 * timeouts, so no two opens share page-cache pages (sendfile readers such as
 * busybox cat included); opens mint in C and read the caller's uid, gid, pid,
 * start time, executable and cgroup, so `readers` rules are enforced and every
 * audit line names the reader. JavaScript is not woken to answer anything: it
 * hands the tree and signing key to C when they change and, on a timer, writes
 * the audit lines C queued (one wake-up per batch; C refuses opens, EIO, if
 * the queue ever fills, so no token goes out unaudited).
 */
import type { MintFs, ReaderIdentity } from '../fs/mint-fs.js';
import { MintfsError, describeError } from '../errors.js';
import { mountedFileSystem, type FuseBackend } from './backend.js';
import {
  loadNativeAddon,
  type NativeAddon,
  type NativeAuditEvent,
  type NativeSession,
} from './native-addon.js';
import { PathIds, nativeNodes } from './native-tree.js';
import { detachMount, openFuseConnection, topMountAt } from '../mounts/mount-table.js';
import { ENABLE_URING_PARAMETER, kernelUringEnabled } from './transport.js';
import { writeTogether } from '../log/write-together.js';
import { auditEvents } from './native-audit.js';

/** How often queued audit lines are written: they trail the reads by at most this. */
const AUDIT_INTERVAL_MS = 20;

export const nativeBackend: FuseBackend = {
  name: 'native',
  readerIdentity: true,
  async mount(mountpoint, fs, options) {
    const addon = loadNativeAddon();
    const { logger } = options;
    const ids = new PathIds();
    const nodes = () => nativeNodes(fs.tree, fs.signingKey, ids);
    const requested = options.transport ?? 'classic';
    // `auto` asks only where the kernel's parameter is on; `uring` asks regardless (the INIT decides).
    const ask = requested === 'uring' || (requested === 'auto' && kernelUringEnabled());
    let session: NativeSession;
    try {
      session = addon.start(mountpoint, nodes(), fs.mintsPerRead, ask ? 'uring' : 'classic');
    } catch (err) {
      throw new MintfsError('ERR_MOUNT_FAILED', `mount ${mountpoint}: ${describeError(err)}`, {
        cause: err,
      });
    }
    const { transport, transportFallback } = addon.stats(session);
    if (requested !== 'classic' && transport === 'classic') {
      const reason = ask ? transportFallback : `${ENABLE_URING_PARAMETER} is not Y`;
      // One line: asked for explicitly, a warning; `auto`, a note.
      logger[requested === 'uring' ? 'warn' : 'info'](
        { event: 'fuse-transport-fallback', requested, transport, reason },
        `serving FUSE requests by /dev/fuse reads, not io_uring: ${reason}`,
      );
    }
    const writeAudit = (taken = addon.takeAudit(session)) => {
      const events = auditEvents(taken);
      const { refused } = taken;
      // One write for the batch's lines, not one per line (log/write-together.ts).
      writeTogether(logger, () => {
        for (const event of events) audit(fs, ids, event);
      });
      if (refused > 0)
        logger.error(
          { event: 'audit-queue-full', refused },
          'opens refused: audit lines were not being written fast enough',
        );
    };
    // Referenced: while it serves, the mount keeps the process alive.
    const auditTimer = setInterval(writeAudit, AUDIT_INTERVAL_MS);
    const stopSession = () => {
      unsubscribe();
      clearInterval(auditTimer);
      let stats: ReturnType<NativeAddon['stats']>;
      try {
        writeAudit();
        stats = addon.stats(session);
      } finally {
        // The FUSE thread is joined whatever failed above: nothing is served
        // after a stop. Opens served between the last drain and the join (a
        // reader whose cwd is inside a lazily detached mount) are audited too.
        writeAudit(addon.stop(session));
      }
      const { replyFailures, invalidationFailures, ringRequests, ringMalformed } = stats;
      // How many requests io_uring carried: the proof it served, not the /dev/fuse fallback.
      if (transport === 'uring')
        logger.info(
          { event: 'fuse-ring-stats', ringRequests, ringMalformed },
          'requests served over io_uring',
        );
      if (replyFailures > 0 || invalidationFailures > 0 || ringMalformed > 0)
        logger.info(
          { event: 'native-stats', replyFailures, invalidationFailures, ringMalformed },
          'some replies found their request gone (interrupted readers), or ring requests were malformed (answered EIO)',
        );
    };
    // The profile or keyring changed: the next open mints from the new tree and key.
    const unsubscribe = fs.subscribe(() => {
      try {
        addon.setTree(session, nodes());
      } catch (err) {
        logger.error(
          { event: 'native-tree-failed', err: describeError(err) },
          'could not hand the new tree to the native backend; still serving the previous one',
        );
      }
    });
    const entry = topMountAt(mountpoint);
    if (entry?.fstype !== 'fuse.mintfs') {
      await detachMount(mountpoint).catch(() => undefined);
      stopSession();
      throw new MintfsError('ERR_MOUNT_FAILED', `mount ${mountpoint}: not in the mount table`);
    }
    const mounted = mountedFileSystem({
      mountpoint,
      mountId: entry.id,
      device: entry.device,
      // Taken now, while the connection is surely ours (openFuseConnection says why).
      connection: await openFuseConnection(entry.device),
      transport,
      stopServing: stopSession,
      activity: () => {
        const stats = addon.stats(session);
        // Both clocks are CLOCK_MONOTONIC: libuv's hrtime and the addon's.
        const nowMs = Number(process.hrtime.bigint() / 1_000_000n);
        return { openHandles: stats.openHandles, idleMs: nowMs - stats.lastActivityMs };
      },
    });
    return mounted;
  },
};

function audit(fs: MintFs, ids: PathIds, event: NativeAuditEvent): void {
  const file = ids.fileOf(event.pathId);
  if (!file) return;
  const reader: ReaderIdentity = event.reader;
  switch (event.kind) {
    case 'minted':
      fs.logMinted(
        file,
        { tokenId: event.tokenId, keyId: event.keyId, expiresAt: new Date(event.expiresS * 1000) },
        { reader },
      );
      return;
    case 'denied':
      fs.logDenied(file, reader, event.reason);
      return;
    case 'failed':
      fs.logFailed(file, reader, event.reason);
      return;
  }
}
