/**
 * The keyring on disk: a directory (0700) of root keys, one file (0600) per
 * key, named `<key-id>.key` and holding 64 hex characters.
 *
 * Key ids start with the creation time (`20261122T021314Z-3f9a0c1e`), so
 * sorting ids sorts keys by age and the newest key is the one that signs.
 * Permissions are checked on every load: a keyring others can read is
 * refused, as ssh refuses a private key others can read.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MintfsError } from '../errors.js';
import { KEY_ID } from '../token/identifier.js';
import { writeFileAtomic } from './atomic-write.js';
import { ROOT_KEY_BYTES, RootKey } from './root-key.js';

const KEY_FILE = /^(.+)\.key$/;
const KEY_TEXT = /^[0-9a-f]{64}\n?$/;

export interface Keyring {
  readonly dir: string;
  /** All keys, oldest first. */
  readonly keys: readonly RootKey[];
  /** The key new tokens are signed with: the newest. */
  readonly current: RootKey;
  readonly keyById: (keyId: string) => RootKey | undefined;
}

/** `$MINTFS_KEYS`, else /var/lib/mintfs/keys for root, else the user's state dir. */
export function defaultKeysDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MINTFS_KEYS) return env.MINTFS_KEYS;
  if (process.getuid?.() === 0) return '/var/lib/mintfs/keys';
  const state = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'mintfs', 'keys');
}

export function newKeyId(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

/** Creates the keyring with one key. Refuses a directory that already holds keys. */
export function initKeyring(dir: string, now: Date): Keyring {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  if (listKeyFiles(dir).length > 0)
    throw new MintfsError(
      'ERR_KEYRING_EXISTS',
      `keyring ${dir} already holds keys; not overwriting`,
    );
  addKey(dir, now);
  return loadKeyring(dir);
}

/** Writes a new random key into the keyring and returns its id. */
export function addKey(dir: string, now: Date): string {
  const id = newKeyId(now);
  const secret = randomBytes(ROOT_KEY_BYTES);
  writeFileAtomic(join(dir, `${id}.key`), `${secret.toString('hex')}\n`, {
    mode: 0o600,
    exclusive: true,
  });
  secret.fill(0);
  return id;
}

export function loadKeyring(dir: string): Keyring {
  let info;
  try {
    info = statSync(dir);
  } catch (err) {
    throw new MintfsError(
      'ERR_KEYRING_MISSING',
      `keyring ${dir} does not exist (create it with: mintfs keys init --keys ${dir})`,
      { cause: err },
    );
  }
  if (!info.isDirectory())
    throw new MintfsError('ERR_KEYRING_MISSING', `keyring ${dir} is not a directory`);
  if ((info.mode & 0o077) !== 0)
    throw new MintfsError(
      'ERR_KEYRING_PERMISSIONS',
      `keyring ${dir} is accessible by group or others (mode ${octal(info.mode)}); chmod 700 it`,
    );

  const keys = listKeyFiles(dir).map((file) => readKeyFile(dir, file));
  if (keys.length === 0)
    throw new MintfsError(
      'ERR_KEYRING_MISSING',
      `keyring ${dir} holds no keys (create one with: mintfs keys init --keys ${dir})`,
    );
  keys.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const byId = new Map(keys.map((key) => [key.id, key]));
  return {
    dir,
    keys,
    current: keys[keys.length - 1] as RootKey,
    keyById: (keyId) => byId.get(keyId),
  };
}

function listKeyFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => KEY_FILE.test(name) && !name.startsWith('.'));
}

function readKeyFile(dir: string, file: string): RootKey {
  const path = join(dir, file);
  const id = (KEY_FILE.exec(file) as RegExpExecArray)[1] as string;
  if (!KEY_ID.test(id))
    throw new MintfsError('ERR_KEYRING_CORRUPT', `key file ${path}: invalid key id`);
  const info = lstatSync(path);
  if (!info.isFile())
    throw new MintfsError('ERR_KEYRING_CORRUPT', `key file ${path} is not a regular file`);
  if ((info.mode & 0o077) !== 0)
    throw new MintfsError(
      'ERR_KEYRING_PERMISSIONS',
      `key file ${path} is accessible by group or others (mode ${octal(info.mode)}); chmod 600 it`,
    );
  const text = readFileSync(path, 'utf8');
  if (!KEY_TEXT.test(text))
    throw new MintfsError(
      'ERR_KEYRING_CORRUPT',
      `key file ${path} does not hold 64 hex characters`,
    );
  return new RootKey(id, Buffer.from(text.slice(0, 64), 'hex'));
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}
