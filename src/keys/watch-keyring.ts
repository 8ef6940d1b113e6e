/** The keyring as running mounts and gateways see it: reloaded within a second of a change. */
import { statSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { Reloadable, directoryFingerprint } from '../util/reloadable.js';
import { loadKeyring, type Keyring } from './keyring.js';

const KEYRING_ENTRY = /^[^.].*\.(key|retired)$/;

export function watchKeyring(dir: string, logger: Logger): Reloadable<Keyring> {
  return new Reloadable(loadKeyring(dir), {
    name: 'keyring',
    load: () => loadKeyring(dir),
    // Temporary files of an atomic write are left out: only finished keys count.
    fingerprint: () => `${modeOf(dir)}|${directoryFingerprint(dir, (n) => KEYRING_ENTRY.test(n))}`,
    describe: (keyring) => ({
      keyId: keyring.current.id,
      verifying: keyring.keys.length,
      retired: keyring.retired.length,
    }),
    logger,
  });
}

function modeOf(dir: string): string {
  try {
    return statSync(dir).mode.toString(8);
  } catch {
    return 'missing';
  }
}
