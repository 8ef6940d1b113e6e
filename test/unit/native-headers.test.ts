/**
 * The C headers made from TypeScript tables are current: the native backend
 * answers each failed request with the errno the fuse-native backend's table
 * (src/fuse/errno.ts) gives, because C is compiled from that same table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FILE_ERRNOS, errnoFor, fileErrorsHeader } from '../../src/fuse/errno.js';
import { MintfsError } from '../../src/errors.js';
import { constants } from 'node:os';
import { REPO_ROOT } from '../helpers/paths.js';

describe('headers generated for the native addon', () => {
  it('native/addon/file-errors.h matches FILE_ERRNOS (run `npm run generate` if not)', () => {
    const header = readFileSync(join(REPO_ROOT, 'native', 'addon', 'file-errors.h'), 'utf8');
    assert.equal(header, fileErrorsHeader());
  });

  it('session.c answers with the table, never with a bare errno', () => {
    const session = readFileSync(join(REPO_ROOT, 'native', 'addon', 'session.c'), 'utf8');
    const bare = [...session.matchAll(/fuse_reply_err\(req, ([^)]*)\)/g)]
      .map((m) => m[1] ?? '')
      .filter((arg) => /\bE[A-Z]+\b/.test(arg.replaceAll(/MINTFS_ERR_[A-Z_]+/g, '')));
    assert.deepEqual(bare, []);
  });

  it('fuse-native answers each situation with the same errno', () => {
    for (const [situation, name] of Object.entries(FILE_ERRNOS)) {
      if (situation === 'ERR_OUT_OF_MEMORY' || situation === 'ERR_UNEXPECTED') continue;
      const err = new MintfsError(situation as 'ERR_NOT_FOUND', 'x');
      assert.equal(errnoFor(err), -constants.errno[name], situation);
    }
    assert.equal(errnoFor(new Error('anything else')), -constants.errno.EIO);
  });
});
