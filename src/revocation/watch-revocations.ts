/** The revocation list as verifiers see it: reloaded within a second of a `mintfs revoke`. */
import type { Logger } from '../log/logger.js';
import { Reloadable } from '../util/reloadable.js';
import { loadRevocations, revocationsFingerprint, type RevocationList } from './revocations.js';

export function watchRevocations(dir: string, logger: Logger): Reloadable<RevocationList> {
  return new Reloadable(loadRevocations(dir), {
    name: 'revocations',
    load: () => loadRevocations(dir),
    fingerprint: () => revocationsFingerprint(dir),
    describe: (list) => ({ records: list.records.length }),
    logger,
  });
}
