/**
 * The README stays a front page (issue 17): at most ~12 KB, saying what
 * mintfs is and the threat it answers before any command, with no line a
 * reader has to scroll sideways for. Everything longer belongs in docs/.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

describe('the README', () => {
  it('is at most 12 KB', () => {
    assert.ok(Buffer.byteLength(README) <= 12 * 1024, `${Buffer.byteLength(README)} bytes`);
  });

  it('says what mintfs is and what it answers before the first command', () => {
    const beforeCode = README.slice(0, README.indexOf('```'));
    assert.match(beforeCode, /\*\*mintfs\*\*/);
    assert.match(beforeCode, /prompt injection/);
    assert.match(beforeCode, /read-only FUSE file system/);
  });

  it('has no line over 300 characters', () => {
    const long = README.split('\n').filter((line) => line.length > 300);
    assert.deepEqual(long, []);
  });
});
