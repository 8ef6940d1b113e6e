import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMintfsError } from '../../src/errors.js';
import {
  loadRevocations,
  recordRevocation,
  revocationCheck,
  revocationsDir,
} from '../../src/revocation/revocations.js';
import { newTokenId } from '../../src/token/identifier.js';
import { inspectToken } from '../../src/token/inspect.js';
import { mintToken } from '../../src/token/mint.js';
import { verifyToken, type Verdict } from '../../src/token/verify.js';
import { tempDir } from '../helpers/temp.js';
import { ALLOWED, GRANT, keyLookup, newKey } from '../helpers/tokens.js';

const key = newKey();
const T0 = new Date('2026-11-22T01:00:00.250Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const mint = (now: Date, agent = 'demo-agent') =>
  mintToken({ ...GRANT, agent }, { key, now, tokenId: newTokenId() });
const verify = (token: string, dir: string, now: Date): Verdict =>
  verifyToken(token, ALLOWED, {
    keyById: keyLookup(key),
    now,
    revoked: revocationCheck(loadRevocations(dir)),
  });
const codeOf = (verdict: Verdict) => (verdict.allowed ? 'allowed' : verdict.code);

describe('revocation', () => {
  it('tokens carry their issue time (whole seconds) in the signed identifier', () => {
    const minted = mint(T0);
    assert.equal(inspectToken(minted.token).issuedAt, '2026-11-22T01:00:00Z');
  });

  it('revoking a token id refuses that token only', (t) => {
    const dir = revocationsDir(tempDir(t));
    const victim = mint(T0);
    const other = mint(T0);
    recordRevocation(dir, { kind: 'token', tokenId: victim.tokenId }, later(1_000));
    const verdict = verify(victim.token, dir, later(2_000));
    assert.equal(codeOf(verdict), 'ERR_TOKEN_REVOKED');
    assert.match(!verdict.allowed ? verdict.reason : '', new RegExp(victim.tokenId));
    assert.equal(codeOf(verify(other.token, dir, later(2_000))), 'allowed');
  });

  it('revoking an agent refuses its tokens minted before the time, not later ones or other agents', (t) => {
    const dir = revocationsDir(tempDir(t));
    const old = mint(T0);
    const sameSecond = mint(later(500));
    const neighbour = mint(T0, 'other-agent');
    recordRevocation(dir, { kind: 'agent', agent: 'demo-agent' }, later(600));
    const fresh = mint(later(1_000));
    const now = later(1_500);
    assert.equal(codeOf(verify(old.token, dir, now)), 'ERR_TOKEN_REVOKED');
    // Issue times are whole seconds: one minted in the revocation's second counts as before it.
    assert.equal(codeOf(verify(sameSecond.token, dir, now)), 'ERR_TOKEN_REVOKED');
    assert.equal(codeOf(verify(fresh.token, dir, now)), 'allowed');
    assert.equal(codeOf(verify(neighbour.token, dir, now)), 'allowed');
  });

  it('--before picks the cut-off; records expire once nothing they cover can be valid', (t) => {
    const dir = revocationsDir(tempDir(t));
    const early = mint(T0);
    const late = mint(later(10 * 60_000));
    const { record } = recordRevocation(
      dir,
      { kind: 'agent', agent: 'demo-agent', before: later(5 * 60_000) },
      later(11 * 60_000),
    );
    assert.equal(codeOf(verify(early.token, dir, later(11 * 60_000))), 'ERR_TOKEN_REVOKED');
    assert.equal(codeOf(verify(late.token, dir, later(11 * 60_000))), 'allowed');
    // Covered tokens were minted before `before` and live at most an hour.
    assert.ok(
      Date.parse(record.expiresAt) >=
        Date.parse(record.kind === 'agent' ? record.before : '') + 3_600_000,
    );
    // Past its expiry the record is ignored, and the next revoke deletes it.
    const afterExpiry = new Date(Date.parse(record.expiresAt) + 1);
    assert.equal(
      loadRevocations(dir).find(
        { tokenId: early.tokenId, agent: 'demo-agent', issuedAt: T0 },
        afterExpiry,
      ),
      undefined,
    );
    const { pruned } = recordRevocation(dir, { kind: 'token', tokenId: late.tokenId }, afterExpiry);
    assert.equal(pruned, 1);
    assert.equal(loadRevocations(dir).records.length, 1);
  });

  it('records are 0600 files in a 0700 directory; one per revocation, concurrent writers never collide', (t) => {
    const dir = revocationsDir(tempDir(t));
    for (let i = 0; i < 5; i++) recordRevocation(dir, { kind: 'token', tokenId: newTokenId() }, T0);
    recordRevocation(dir, { kind: 'agent', agent: 'demo-agent' }, T0);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const files = readdirSync(dir);
    assert.equal(files.length, 6);
    for (const file of files) assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600);
  });

  it('a corrupt record fails the load (fail closed), a missing directory is an empty list', (t) => {
    const root = tempDir(t);
    assert.equal(loadRevocations(join(root, 'none')).records.length, 0);
    const dir = revocationsDir(root);
    recordRevocation(dir, { kind: 'token', tokenId: newTokenId() }, T0);
    writeFileSync(join(dir, 'token-AAAAAAAAAAAAAAAAAAAAAA.json'), '{"kind":"token"}');
    assert.throws(
      () => loadRevocations(dir),
      (err) => isMintfsError(err, 'ERR_REVOCATIONS_UNREADABLE'),
    );
  });
});
