import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { isMintfsError } from '../../src/errors.js';
import {
  addKey,
  initKeyring,
  listKeys,
  loadKeyring,
  pruneRetiredKeys,
  retireKey,
} from '../../src/keys/keyring.js';
import { reloadIfKeyAppeared, watchKeyring } from '../../src/keys/watch-keyring.js';
import { createLogger } from '../../src/log/logger.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken } from '../../src/token/mint.js';
import { verifyToken } from '../../src/token/verify.js';
import { Reloadable, fileFingerprint } from '../../src/util/reloadable.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir } from '../helpers/temp.js';
import { ALLOWED, GRANT } from '../helpers/tokens.js';

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ stream }), lines };
}

const T0 = new Date('2026-11-22T01:00:00Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

describe('key rotation, retirement and pruning', () => {
  it('rotate adds a key that signs; the old one keeps verifying', (t) => {
    const dir = join(tempDir(t), 'keys');
    const first = initKeyring(dir, at(0)).current;
    const oldToken = mintToken(GRANT, { key: first, now: at(1), tokenId: newTokenId() }).token;
    const second = addKey(dir, at(2));
    const keyring = loadKeyring(dir);
    assert.equal(keyring.current.id, second);
    assert.equal(
      verifyToken(oldToken, ALLOWED, { keyById: keyring.keyById, now: at(2) }).allowed,
      true,
    );
    assert.deepEqual(
      listKeys(keyring).map((k) => [k.id, k.state, k.created]),
      [
        [first.id, 'verifying', '2026-11-22T01:00:00Z'],
        [second, 'signing', '2026-11-22T01:02:00Z'],
      ],
    );
  });

  it('retire stops a key verifying, drops its secret, and keeps a 0600 record', (t) => {
    const dir = join(tempDir(t), 'keys');
    const first = initKeyring(dir, at(0)).current;
    const secretHex = first.secret.toString('hex');
    const token = mintToken(GRANT, { key: first, now: at(1), tokenId: newTokenId() }).token;
    addKey(dir, at(2));
    const retired = retireKey(dir, first.id, at(3));
    assert.equal(retired.retiredAt.toISOString(), at(3).toISOString());
    const keyring = loadKeyring(dir);
    const verdict = verifyToken(token, ALLOWED, {
      keyById: keyring.keyById,
      isRetired: (id) => keyring.retired.some((key) => key.id === id),
      now: at(3),
    });
    assert.equal(verdict.allowed, false);
    assert.equal(!verdict.allowed && verdict.code, 'ERR_KEY_RETIRED');
    assert.equal(existsSync(join(dir, `${first.id}.key`)), false);
    const record = join(dir, `${first.id}.retired`);
    assert.equal(statSync(record).mode & 0o777, 0o600);
    assert.doesNotMatch(readFileSync(record, 'utf8'), new RegExp(secretHex));
    assert.deepEqual(
      listKeys(keyring).find((k) => k.id === first.id),
      {
        id: first.id,
        created: '2026-11-22T01:00:00Z',
        state: 'retired',
        retiredAt: '2026-11-22T01:03:00Z',
      },
    );
    // Retiring twice is a no-op that reports the first retirement.
    assert.equal(retireKey(dir, first.id, at(9)).retiredAt.toISOString(), at(3).toISOString());
  });

  it('refuses to retire the signing key or an unknown one', (t) => {
    const dir = join(tempDir(t), 'keys');
    const only = initKeyring(dir, at(0)).current;
    assert.throws(
      () => retireKey(dir, only.id, at(1)),
      (err) => isMintfsError(err, 'ERR_KEY_SIGNING') && /rotate first/.test(err.message),
    );
    assert.throws(
      () => retireKey(dir, '20200101T000000Z-00000000', at(1)),
      (err) => isMintfsError(err, 'ERR_KEY_UNKNOWN'),
    );
    assert.equal(loadKeyring(dir).current.id, only.id);
  });

  it('a retired record beside its key file (crash mid-retire) wins', (t) => {
    const dir = join(tempDir(t), 'keys');
    const first = initKeyring(dir, at(0)).current;
    addKey(dir, at(1));
    writeFileSync(
      join(dir, `${first.id}.retired`),
      JSON.stringify({ id: first.id, retiredAt: '2026-11-22T01:02:00Z' }),
      { mode: 0o600 },
    );
    const keyring = loadKeyring(dir);
    assert.equal(keyring.keyById(first.id), undefined);
    assert.deepEqual(pruneRetiredKeys(dir, 0, at(3)), [first.id]);
    assert.deepEqual(readdirSync(dir), [`${keyring.current.id}.key`]);
  });

  it('prune deletes only records retired longer ago than the limit, never live keys', (t) => {
    const dir = join(tempDir(t), 'keys');
    const first = initKeyring(dir, at(0)).current;
    const second = addKey(dir, at(1));
    const third = addKey(dir, at(2));
    retireKey(dir, first.id, at(10));
    retireKey(dir, second, at(50));
    assert.deepEqual(pruneRetiredKeys(dir, 30 * 60_000, at(35)), []);
    assert.deepEqual(pruneRetiredKeys(dir, 30 * 60_000, at(40)), [first.id]);
    assert.deepEqual(pruneRetiredKeys(dir, 30 * 60_000, at(90)), [second]);
    assert.deepEqual(readdirSync(dir), [`${third}.key`]);
  });

  it('a corrupt retired record fails the load rather than reviving the key', (t) => {
    const dir = join(tempDir(t), 'keys');
    const first = initKeyring(dir, at(0)).current;
    addKey(dir, at(1));
    writeFileSync(join(dir, `${first.id}.retired`), 'nonsense', { mode: 0o600 });
    assert.throws(
      () => loadKeyring(dir),
      (err) => isMintfsError(err, 'ERR_KEYRING_CORRUPT'),
    );
  });
});

describe('reloading state from disk', () => {
  it('a watched keyring picks up a rotation and a retirement', async (t) => {
    const dir = join(tempDir(t), 'keys');
    const first = initKeyring(dir, at(0)).current;
    const { logger, lines } = capturingLogger();
    const watched = watchKeyring(dir, logger);
    t.after(() => watched.close());
    const second = addKey(dir, at(1));
    await pollUntil('rotation seen', () => watched.current.current.id === second);
    retireKey(dir, first.id, at(2));
    await pollUntil('retirement seen', () => watched.current.keyById(first.id) === undefined);
    const reloads = lines.filter((line) => line.event === 'keyring-reloaded');
    assert.equal(reloads.at(-1)?.keyId, second);
    assert.ok(lines.every((line) => !JSON.stringify(line).includes(first.secret.toString('hex'))));
  });

  it('a verifier meeting a key rotated in since its last poll reloads at once; garbage ids never reload', (t) => {
    const dir = join(tempDir(t), 'keys');
    initKeyring(dir, at(0));
    const { logger, lines } = capturingLogger();
    const watched = watchKeyring(dir, logger);
    t.after(() => watched.close());
    assert.equal(reloadIfKeyAppeared(watched, '20990101T000000Z-00000000'), false);
    assert.equal(reloadIfKeyAppeared(watched, '../../etc/passwd'), false);
    assert.equal(reloadIfKeyAppeared(watched, undefined), false);
    const added = addKey(dir, at(1));
    // Synchronously, before any poll could run.
    reloadIfKeyAppeared(watched, added);
    assert.ok(watched.current.keyById(added));
    assert.equal(lines.filter((l) => l.event === 'keyring-reloaded').length, 1);
    assert.equal(reloadIfKeyAppeared(watched, added), false, 'nothing changed since');
  });

  it('a failed reload keeps the last good state and says why, once', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'value.json');
    writeFileSync(file, '{"n":1}');
    const { logger, lines } = capturingLogger();
    const load = () => JSON.parse(readFileSync(file, 'utf8')) as { n: number };
    const state = new Reloadable(load(), {
      name: 'thing',
      load,
      fingerprint: () => fileFingerprint(file),
      logger,
      pollMs: 20,
    });
    t.after(() => state.close());
    writeFileSync(file, '{"n":');
    await pollUntil('failure logged', () => lines.some((l) => l.event === 'thing-reload-failed'));
    assert.equal(state.current.n, 1);
    // Let several polls pass: the same broken file is not reported again.
    const failures = () => lines.filter((l) => l.event === 'thing-reload-failed').length;
    const polls = Date.now() + 200;
    await pollUntil('polls passed', () => Date.now() > polls);
    assert.equal(failures(), 1);
    writeFileSync(file, '{"n":2}');
    await pollUntil('good edit taken', () => state.current.n === 2);
    assert.equal(state.reload('SIGHUP'), true);
    assert.equal(lines.at(-1)?.reason, 'SIGHUP');
  });
});
