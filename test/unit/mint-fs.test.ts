/**
 * The file-system operations without FUSE: handles, wiping, sizes, read-only
 * refusals, and the audit log (parsed line by line, checked for secrets).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { isMintfsError } from '../../src/errors.js';
import { MintFs } from '../../src/fs/mint-fs.js';
import { buildTree } from '../../src/fs/virtual-tree.js';
import { createLogger } from '../../src/log/logger.js';
import { parseProfile } from '../../src/profile/load-profile.js';
import { newTokenId } from '../../src/token/identifier.js';
import { verifyToken } from '../../src/token/verify.js';
import { DEMO_PROFILE } from '../helpers/mount-fixture.js';
import { ALLOWED, keyLookup, newKey, singleKeyKeyring } from '../helpers/tokens.js';

function fixture() {
  const key = newKey();
  const keyring = singleKeyKeyring(key);
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString());
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const tree = buildTree(parseProfile(DEMO_PROFILE, 'demo'));
  const fs = new MintFs({
    tree: () => tree,
    keyring: () => keyring,
    clock: () => new Date(),
    newTokenId,
    logger: createLogger({ stream: sink }),
  });
  return { fs, key, lines, raw };
}

describe('MintFs', () => {
  it('each open mints a different token; the handle serves it consistently in parts', () => {
    const { fs } = fixture();
    const a = fs.open('/github/token', 0);
    const b = fs.open('/github/token', 0);
    const size = fs.getattr('/github/token').size;
    const whole = fs.read(a, size + 100, 0).toString();
    assert.equal(whole.length, size);
    const parts = Buffer.concat([
      fs.read(a, 7, 0),
      fs.read(a, 100, 7),
      fs.read(a, size, 107),
    ]).toString();
    assert.equal(parts, whole);
    assert.notEqual(fs.read(b, size, 0).toString(), whole);
    assert.equal(fs.read(a, 10, size).length, 0);
  });

  it('reports the exact token size in getattr for every format', () => {
    const { fs, key } = fixture();
    for (const path of ['/github/token', '/github/token.line', '/github/token.json']) {
      const handle = fs.open(path, 0);
      const content = fs.read(handle, 1 << 16, 0);
      assert.equal(content.length, fs.getattr(path).size, path);
      const token = path.endsWith('.json')
        ? (JSON.parse(content.toString()) as { token: string }).token
        : content.toString();
      assert.equal(
        verifyToken(
          token,
          { ...ALLOWED, method: 'GET' },
          { keyById: keyLookup(key), now: new Date() },
        ).allowed,
        true,
        path,
      );
    }
  });

  it('wipes the token bytes on release', () => {
    const { fs } = fixture();
    const handle = fs.open('/github/token', 0);
    const view = fs.read(handle, 1 << 16, 0);
    fs.release(handle);
    assert.ok(view.every((byte) => byte === 0));
    assert.throws(
      () => fs.read(handle, 10, 0),
      (err) => isMintfsError(err, 'ERR_BAD_HANDLE'),
    );
    assert.equal(fs.openHandles, 0);
  });

  it('refuses write access and truncation before minting', () => {
    const { fs, lines } = fixture();
    for (const flags of [1, 2, 0o1000]) {
      assert.throws(
        () => fs.open('/github/token', flags),
        (err) => isMintfsError(err, 'ERR_READ_ONLY'),
      );
    }
    assert.equal(lines.length, 0);
  });

  it('answers directories and missing paths', () => {
    const { fs } = fixture();
    assert.deepEqual(fs.readdir('/'), ['github']);
    assert.deepEqual(fs.readdir('/github'), ['token', 'token.json', 'token.line']);
    assert.throws(
      () => fs.getattr('/nope'),
      (err) => isMintfsError(err, 'ERR_NOT_FOUND'),
    );
    assert.throws(
      () => fs.open('/github', 0),
      (err) => isMintfsError(err, 'ERR_IS_A_DIRECTORY'),
    );
    assert.throws(
      () => fs.readdir('/github/token'),
      (err) => isMintfsError(err, 'ERR_NOT_A_DIRECTORY'),
    );
  });

  it('logs one audit line per mint, naming ids and never the token or key', () => {
    const { fs, key, lines, raw } = fixture();
    const handle = fs.open('/github/token', 0);
    const token = fs.read(handle, 1 << 16, 0).toString();
    const tokenId = verifyToken(token, ALLOWED, {
      keyById: keyLookup(key),
      now: new Date(),
    }).tokenId;
    fs.release(handle);
    assert.equal(lines.length, 1);
    const line = lines[0] as Record<string, unknown>;
    assert.equal(line.event, 'mint');
    assert.equal(line.file, 'github/token');
    assert.equal(line.tokenId, tokenId);
    assert.equal(line.keyId, key.id);
    assert.equal(line.agent, 'test-agent');
    assert.match(String(line.expiresAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(typeof line.durationMs, 'number');
    const all = raw.join('');
    assert.ok(!all.includes(token));
    assert.ok(!all.includes(token.slice(0, 40)));
    assert.ok(!all.includes(key.secret.toString('hex')));
    assert.ok(!all.includes(key.secret.toString('base64')));
  });

  it('the redact list catches a secret logged under a secret-bearing name', () => {
    const { raw } = fixture();
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        raw.push(chunk.toString());
        done();
      },
    });
    createLogger({ stream: sink }).info(
      {
        token: 'SECRET-TOKEN',
        headers: { authorization: 'Bearer SECRET-2', 'proxy-authorization': 'Bearer SECRET-3' },
      },
      'oops',
    );
    assert.doesNotMatch(raw.join(''), /SECRET/);
  });
});
