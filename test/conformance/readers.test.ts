/**
 * Every common reader gets the whole token from a real mount: never empty,
 * never truncated, never stale, never hanging.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { verifyToken } from '../../src/token/verify.js';
import { startMountFixture, type MountFixture } from '../helpers/mount-fixture.js';
import { READERS } from '../helpers/readers.js';
import { CONFORMANCE_TARGETS, useTransport } from '../helpers/backends.js';
import { suiteTeardown } from '../helpers/temp.js';
import { ALLOWED } from '../helpers/tokens.js';

function assertValidToken(fixture: MountFixture, token: string, label: string): string {
  const verdict = verifyToken(token, ALLOWED, {
    keyById: fixture.keyring().keyById,
    now: new Date(),
  });
  assert.equal(verdict.allowed, true, `${label}: ${verdict.allowed ? '' : verdict.reason}`);
  return verdict.tokenId as string;
}

for (const target of CONFORMANCE_TARGETS) {
  const { backend, transport } = target;
  describe(`readers on a real mount (${target.label})`, { concurrency: false }, () => {
    useTransport(target);
    const teardown = suiteTeardown();
    let fixture: MountFixture;
    let tokenSize: number;
    before(async () => {
      fixture = await startMountFixture(teardown, undefined, { backend, transport });
      tokenSize = statSync(join(fixture.mountpoint, 'github/token')).size;
    });

    for (const reader of READERS) {
      it(`${reader.name} gets the whole token, a new one each time`, (t) => {
        const scratch = mkdtempSync(join(fixture.dir, 'scratch-'));
        const file = join(fixture.mountpoint, 'github/token');
        const ids = new Set<string>();
        for (let i = 0; i < 3; i++) {
          const result = reader.read(file, scratch);
          assert.equal(result.status, 0, `${reader.name}: ${result.stderr}`);
          assert.equal(
            result.content.length,
            tokenSize,
            `${reader.name} got ${result.content.length} of ${tokenSize} bytes`,
          );
          ids.add(assertValidToken(fixture, result.content, reader.name));
        }
        assert.equal(ids.size, 3, `${reader.name} was served a repeated token`);
        t.diagnostic(`${reader.name}: ${tokenSize} bytes, 3 distinct tokens`);
      });
    }

    it('the line format ends with a newline, so `read` succeeds', () => {
      const file = join(fixture.mountpoint, 'github/token.line');
      const bashRead = READERS.find((r) => r.name === 'bash read');
      const strict = bashRead?.read(file, fixture.dir);
      assert.equal(strict?.status, 0);
      const cat = READERS[0]?.read(file, fixture.dir);
      assert.equal(cat?.content.length, statSync(file).size);
      assert.ok(cat?.content.endsWith('\n'));
      assertValidToken(fixture, strict?.content ?? '', 'line');
    });

    it('the json format carries token, expiresAt and tokenId', () => {
      const file = join(fixture.mountpoint, 'github/token.json');
      const content = READERS[1]?.read(file, fixture.dir).content ?? '';
      assert.equal(content.length, statSync(file).size);
      const parsed = JSON.parse(content) as { token: string; expiresAt: string; tokenId: string };
      assert.equal(assertValidToken(fixture, parsed.token, 'json'), parsed.tokenId);
      assert.ok(Date.parse(parsed.expiresAt) > Date.now());
    });
  });
}
