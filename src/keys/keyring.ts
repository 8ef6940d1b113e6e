/**
 * The keyring on disk: a directory (0700) of root keys, one file (0600) per
 * key, named `<key-id>.key` and holding 64 hex characters. A retired key is
 * a `<key-id>.retired` record (JSON: id and time, no secret): it no longer
 * verifies, and `prune` deletes the record once it is old enough. A record
 * beside a key file (a crash between the two steps of retiring) wins.
 *
 * Key ids start with the creation time (`20261122T021314Z-3f9a0c1e`), so
 * sorting ids sorts keys by age and the newest key is the one that signs.
 * Permissions are checked on every load: a keyring others can read is
 * refused, as ssh refuses a private key others can read.
 */
import { randomBytes, randomInt } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as z from '../util/zod-mini.js';
import { assertTrustedPath } from '../util/trusted-path.js';
import { MintfsError } from '../errors.js';
import { KEY_ID } from '../token/identifier.js';
import { formatInstant, parseInstant } from '../util/instant.js';
import { syncDirectory, writeFileAtomic } from './atomic-write.js';
import { ROOT_KEY_BYTES, RootKey } from '../token/root-key.js';

const KEY_FILE = /^(.+)\.key$/;
const RETIRED_FILE = /^(.+)\.retired$/;
const KEY_TEXT = /^[0-9a-f]{64}\n?$/;
const KEY_CREATED = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/;

export interface RetiredKey {
  readonly id: string;
  readonly retiredAt: Date;
}

export interface Keyring {
  readonly dir: string;
  /** All keys, oldest first. */
  readonly keys: readonly RootKey[];
  /** The key new tokens are signed with: the newest. */
  readonly current: RootKey;
  readonly keyById: (keyId: string) => RootKey | undefined;
  /** Keys that no longer verify, oldest first. */
  readonly retired: readonly RetiredKey[];
}

export type KeyState = 'signing' | 'verifying' | 'retired';

export interface KeyListing {
  readonly id: string;
  /** From the id; undefined for a key whose id does not start with a time. */
  readonly created: string | undefined;
  readonly state: KeyState;
  readonly retiredAt?: string;
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

/**
 * Writes a new random key into the keyring and returns its id. The newest key
 * signs, and "newest" is the greatest id: a key added in the same second as
 * another gets a suffix that sorts after it (a rotation right after `keys
 * init` used to leave the old key signing half the time).
 */
export function addKey(dir: string, now: Date): string {
  const existing = [...listKeyFiles(dir), ...retiredFiles(readdirSync(dir))].map((name) =>
    name.replace(/\.(key|retired)$/, ''),
  );
  const newest = existing.sort().at(-1) ?? '';
  let id = newKeyId(now);
  if (id <= newest) {
    const [stamp, suffix] = [id.slice(0, 16), newest.slice(17)];
    const last = /^[0-9a-f]{8}$/.test(suffix) ? parseInt(suffix, 16) : NaN;
    if (newest.slice(0, 16) !== stamp || !(last < 0xffffffff))
      throw new MintfsError(
        'ERR_KEYRING_EXISTS',
        `keyring ${dir} already has key ${newest}, not older than one made now; is the clock behind? (or retry in a second)`,
      );
    // A small random step: thousands of keys fit in one second before the suffix runs out.
    const next = last + 1 + randomInt(Math.min(0x10000, 0xffffffff - last));
    id = `${stamp}-${next.toString(16).padStart(8, '0')}`;
  }
  const secret = randomBytes(ROOT_KEY_BYTES);
  writeFileAtomic(join(dir, `${id}.key`), `${secret.toString('hex')}\n`, {
    mode: 0o600,
    exclusive: true,
  });
  secret.fill(0);
  return id;
}

/**
 * What the keyring is loaded for. The hints differ: a missing keyring is made
 * with `keys init` for signing, but one made to verify with would hold a new
 * key that verifies nothing (tokens were signed with another keyring's keys).
 */
export type KeyringPurpose = 'sign' | 'verify';

/** Where a verifier finds the keyring tokens were signed with. */
const VERIFY_HINT =
  'verify with the keyring the tokens were signed with: --keys DIR or $MINTFS_KEYS (mounts run as root sign with /var/lib/mintfs/keys by default, which only root can read); a new keyring would verify nothing';

export function loadKeyring(dir: string, purpose: KeyringPurpose = 'sign'): Keyring {
  let info;
  try {
    info = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MintfsError(
      'ERR_KEYRING_MISSING',
      code === 'EACCES'
        ? `keyring ${dir} cannot be reached by uid ${process.getuid?.() ?? '?'} (a parent directory is closed to it): run as the keyring's owner`
        : purpose === 'verify'
          ? `keyring ${dir} does not exist (${VERIFY_HINT})`
          : `keyring ${dir} does not exist (create it with: mintfs keys init --keys ${dir})`,
      { cause: err },
    );
  }
  if (!info.isDirectory())
    throw new MintfsError('ERR_KEYRING_MISSING', `keyring ${dir} is not a directory`);
  assertTrustedPath(dir, 'keyring');
  if ((info.mode & 0o077) !== 0)
    throw new MintfsError(
      'ERR_KEYRING_PERMISSIONS',
      `keyring ${dir} is accessible by group or others (mode ${octal(info.mode)}); chmod 700 it`,
    );
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new MintfsError(
      'ERR_KEYRING_MISSING',
      `keyring ${dir} cannot be read by uid ${process.getuid?.() ?? '?'} (it belongs to uid ${info.uid}): run as its owner`,
      { cause: err },
    );
  }

  const retired = retiredFiles(entries).map((file) => readRetiredFile(dir, file));
  const retiredIds = new Set(retired.map((key) => key.id));
  const keys = keyFiles(entries)
    .filter((file) => !retiredIds.has(idOf(file, KEY_FILE)))
    .map((file) => readKeyFile(dir, file));
  if (keys.length === 0)
    throw new MintfsError(
      'ERR_KEYRING_MISSING',
      purpose === 'verify'
        ? `keyring ${dir} holds ${retired.length > 0 ? 'only retired keys' : 'no keys'} (${VERIFY_HINT})`
        : retired.length > 0
          ? `keyring ${dir} holds only retired keys (add one with: mintfs keys rotate --keys ${dir})`
          : `keyring ${dir} holds no keys (create one with: mintfs keys init --keys ${dir})`,
    );
  keys.sort(byId);
  retired.sort(byId);
  const index = new Map(keys.map((key) => [key.id, key]));
  return {
    dir,
    keys,
    current: keys[keys.length - 1] as RootKey,
    keyById: (keyId) => index.get(keyId),
    retired,
  };
}

/** Every key with its state, oldest first: what `mintfs keys list` prints. */
export function listKeys(keyring: Keyring): KeyListing[] {
  const listing: KeyListing[] = [
    ...keyring.keys.map((key) => ({
      id: key.id,
      created: createdAt(key.id),
      state: key === keyring.current ? ('signing' as const) : ('verifying' as const),
    })),
    ...keyring.retired.map((key) => ({
      id: key.id,
      created: createdAt(key.id),
      state: 'retired' as const,
      retiredAt: formatInstant(key.retiredAt),
    })),
  ];
  return listing.sort(byId);
}

/**
 * Retires a key: it stops verifying as soon as verifiers reload the keyring.
 * The signing key cannot be retired (rotate first), so rotation never leaves
 * a keyring without a key. The record is written before the key file goes.
 */
export function retireKey(dir: string, keyId: string, now: Date): RetiredKey {
  const keyring = loadKeyring(dir);
  const already = keyring.retired.find((key) => key.id === keyId);
  if (already) return already;
  if (!keyring.keyById(keyId))
    throw new MintfsError('ERR_KEY_UNKNOWN', `keyring ${dir} holds no key ${keyId}`);
  if (keyring.current.id === keyId)
    throw new MintfsError(
      'ERR_KEY_SIGNING',
      `key ${keyId} signs new tokens; rotate first (mintfs keys rotate), then retire it`,
    );
  const record = { id: keyId, retiredAt: formatInstant(now) };
  writeFileAtomic(join(dir, `${keyId}.retired`), `${JSON.stringify(record)}\n`, {
    mode: 0o600,
    exclusive: true,
  });
  unlinkSync(join(dir, `${keyId}.key`));
  syncDirectory(dir);
  return { id: keyId, retiredAt: new Date(record.retiredAt) };
}

/** Deletes the records of keys retired at least `olderThanMs` ago; returns their ids. */
export function pruneRetiredKeys(dir: string, olderThanMs: number, now: Date): string[] {
  const keyring = loadKeyring(dir);
  const cutoff = now.getTime() - olderThanMs;
  const pruned: string[] = [];
  for (const key of keyring.retired) {
    if (key.retiredAt.getTime() > cutoff) continue;
    // A key file left by a crash mid-retire goes too: the record said it was retired.
    unlinkSync(join(dir, `${key.id}.retired`));
    try {
      unlinkSync(join(dir, `${key.id}.key`));
    } catch {
      // The usual case: retiring removed it.
    }
    pruned.push(key.id);
  }
  if (pruned.length > 0) syncDirectory(dir);
  return pruned;
}

function createdAt(keyId: string): string | undefined {
  const match = KEY_CREATED.exec(keyId);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, se] = match;
  return `${y}-${mo}-${d}T${h}:${mi}:${se}Z`;
}

function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function idOf(file: string, pattern: RegExp): string {
  return (pattern.exec(file) as RegExpExecArray)[1] as string;
}

function listKeyFiles(dir: string): string[] {
  return keyFiles(readdirSync(dir));
}

function keyFiles(entries: readonly string[]): string[] {
  return entries.filter((name) => KEY_FILE.test(name) && !name.startsWith('.'));
}

function retiredFiles(entries: readonly string[]): string[] {
  return entries.filter((name) => RETIRED_FILE.test(name) && !name.startsWith('.'));
}

const RetiredRecord = z.strictObject({
  id: z.string().check(z.regex(KEY_ID)),
  retiredAt: z.string().check(z.refine((text) => parseInstant(text) !== undefined)),
});

function readRetiredFile(dir: string, file: string): RetiredKey {
  const path = join(dir, file);
  let parsed;
  try {
    parsed = RetiredRecord.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (err) {
    throw new MintfsError('ERR_KEYRING_CORRUPT', `retired key record ${path} is not JSON`, {
      cause: err,
    });
  }
  if (!parsed.success || parsed.data.id !== idOf(file, RETIRED_FILE))
    throw new MintfsError(
      'ERR_KEYRING_CORRUPT',
      `retired key record ${path} does not name its key and retirement time`,
    );
  return { id: parsed.data.id, retiredAt: new Date(parsed.data.retiredAt) };
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
  assertTrustedPath(path, 'key file');
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
