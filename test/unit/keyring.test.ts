import assert from 'node:assert/strict';
import { chmodSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { isMintfsError } from '../../src/errors.js';
import { writeFileAtomic } from '../../src/keys/atomic-write.js';
import { addKey, initKeyring, loadKeyring } from '../../src/keys/keyring.js';
import { tempDir } from '../helpers/temp.js';

describe('keyring', () => {
  it('init creates a 0700 directory with one 0600 key of 64 hex characters', (t) => {
    const dir = join(tempDir(t), 'keys');
    const keyring = initKeyring(dir, new Date('2026-11-22T02:13:14Z'));
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const files = readdirSync(dir);
    assert.deepEqual(files, [`${keyring.current.id}.key`]);
    assert.match(keyring.current.id, /^20261122T021314Z-[0-9a-f]{8}$/);
    const path = join(dir, files[0] as string);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.match(readFileSync(path, 'utf8'), /^[0-9a-f]{64}\n$/);
    assert.equal(keyring.current.secret.toString('hex'), readFileSync(path, 'utf8').trim());
  });

  it('init refuses to overwrite a keyring', (t) => {
    const dir = join(tempDir(t), 'keys');
    const first = initKeyring(dir, new Date());
    assert.throws(
      () => initKeyring(dir, new Date()),
      (err) => isMintfsError(err, 'ERR_KEYRING_EXISTS'),
    );
    assert.equal(
      loadKeyring(dir).current.secret.toString('hex'),
      first.current.secret.toString('hex'),
    );
  });

  it('the newest key signs; older keys still verify', (t) => {
    const dir = join(tempDir(t), 'keys');
    const first = initKeyring(dir, new Date('2026-01-01T00:00:00Z')).current.id;
    const second = addKey(dir, new Date('2026-02-01T00:00:00Z'));
    const keyring = loadKeyring(dir);
    assert.equal(keyring.current.id, second);
    assert.ok(keyring.keyById(first));
    assert.equal(keyring.keyById('nope'), undefined);
  });

  it('keys added within one second still sign in the order they were added', (t) => {
    const dir = join(tempDir(t), 'keys');
    const now = new Date('2026-01-01T00:00:00.100Z');
    initKeyring(dir, now);
    for (let i = 0; i < 20; i++) {
      const added = addKey(dir, now);
      assert.equal(loadKeyring(dir).current.id, added, `rotation ${i}`);
    }
    // A clock behind the newest key is said, not silently ignored.
    assert.throws(
      () => addKey(dir, new Date('2025-12-31T23:59:59Z')),
      (err: unknown) =>
        isMintfsError(err, 'ERR_KEYRING_EXISTS') && /clock behind/.test(err.message),
    );
  });

  it('refuses a keyring or key others can read', (t) => {
    const dir = join(tempDir(t), 'keys');
    const keyring = initKeyring(dir, new Date());
    chmodSync(dir, 0o755);
    assert.throws(
      () => loadKeyring(dir),
      (err) => isMintfsError(err, 'ERR_KEYRING_PERMISSIONS') && /chmod 700/.test(err.message),
    );
    chmodSync(dir, 0o700);
    chmodSync(join(dir, `${keyring.current.id}.key`), 0o644);
    assert.throws(
      () => loadKeyring(dir),
      (err) => isMintfsError(err, 'ERR_KEYRING_PERMISSIONS'),
    );
  });

  it('refuses a corrupt key file, and a missing or empty keyring', (t) => {
    const root = tempDir(t);
    assert.throws(
      () => loadKeyring(join(root, 'none')),
      (err) => isMintfsError(err, 'ERR_KEYRING_MISSING') && /keys init/.test(err.message),
    );
    const dir = join(root, 'keys');
    initKeyring(dir, new Date());
    writeFileSync(join(dir, '20990101T000000Z-deadbeef.key'), 'short\n', { mode: 0o600 });
    assert.throws(
      () => loadKeyring(dir),
      (err) => isMintfsError(err, 'ERR_KEYRING_CORRUPT'),
    );
  });

  it('ignores temporary files a crashed write left behind', (t) => {
    const dir = join(tempDir(t), 'keys');
    const keyring = initKeyring(dir, new Date());
    writeFileSync(join(dir, '.tmp-20990101T000000Z-deadbeef.key-0011'), 'half', { mode: 0o600 });
    assert.equal(loadKeyring(dir).current.id, keyring.current.id);
  });

  it('a root key never shows its secret when logged or inspected', (t) => {
    const keyring = initKeyring(join(tempDir(t), 'keys'), new Date());
    const hex = keyring.current.secret.toString('hex');
    for (const shown of [
      JSON.stringify({ key: keyring.current }),
      inspect(keyring),
      String(keyring.current),
      inspect(keyring.current),
    ]) {
      assert.doesNotMatch(shown, new RegExp(hex));
      assert.match(shown, new RegExp(keyring.current.id));
    }
  });
});

describe('atomic writes', () => {
  it('write the whole file with the given mode, and leave no temp file', (t) => {
    const dir = tempDir(t);
    writeFileAtomic(join(dir, 'f'), 'hello', { mode: 0o600 });
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'hello');
    assert.equal(statSync(join(dir, 'f')).mode & 0o777, 0o600);
    writeFileAtomic(join(dir, 'f'), 'again', { mode: 0o600 });
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'again');
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  it('exclusive writes never replace an existing file', (t) => {
    const dir = tempDir(t);
    writeFileAtomic(join(dir, 'f'), 'first', { mode: 0o600, exclusive: true });
    assert.throws(
      () => writeFileAtomic(join(dir, 'f'), 'second', { mode: 0o600, exclusive: true }),
      /EEXIST/,
    );
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'first');
    assert.deepEqual(readdirSync(dir), ['f']);
  });
});
