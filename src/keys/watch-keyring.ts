/** The keyring as running mounts and gateways see it: reloaded within a second of a change. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { KEY_ID } from '../token/identifier.js';
import { Reloadable, directoryFingerprint } from '../util/reloadable.js';
import { loadKeyring, type Keyring, type KeyringPurpose } from './keyring.js';

const KEYRING_ENTRY = /^[^.].*\.(key|retired)$/;

/**
 * A mount polls the keyring as a gateway does, so after `keys rotate` it can
 * sign with the new key a poll before the gateway knows it. A verifier that
 * meets an unknown key id calls this: if that key's file is there, the
 * keyring is reloaded at once. Only a key file on disk triggers a reload, so
 * garbage key ids cost a stat, never a reload.
 */
export function reloadIfKeyAppeared(
  keyring: Reloadable<Keyring>,
  keyId: string | undefined,
): boolean {
  if (keyId === undefined || !KEY_ID.test(keyId)) return false;
  const dir = keyring.current.dir;
  if (!existsSync(join(dir, `${keyId}.key`))) return false;
  return keyring.refresh('unknown-key-appeared');
}

export function watchKeyring(
  dir: string,
  logger: Logger,
  purpose: KeyringPurpose = 'sign',
): Reloadable<Keyring> {
  return new Reloadable(loadKeyring(dir, purpose), {
    name: 'keyring',
    load: () => loadKeyring(dir, purpose),
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
