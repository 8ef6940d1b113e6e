/**
 * The references in docs/profiles.md and docs/gateway.md (made from the zod
 * schemas) and docs/commands.md (made from the error code registry): this
 * fails when a source changed and `npm run generate` was not run, or when
 * someone edited the generated part by hand.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as z from 'zod';
import {
  GENERATED_REFERENCES,
  currentDocument,
  errorCodeReference,
  referenceFor,
} from '../../src/docs/config-reference.js';
import { ERROR_CODES } from '../../src/errors.js';
import { REPO_ROOT } from '../helpers/paths.js';

describe('generated config references', () => {
  for (const reference of GENERATED_REFERENCES)
    it(`${reference.file} matches its source (run \`npm run generate\` if not)`, async () => {
      const path = join(REPO_ROOT, reference.file);
      const document = readFileSync(path, 'utf8');
      assert.equal(document, await currentDocument(path, document, reference));
    });

  it('lists every error code once, with its meaning and what each edge makes of it', () => {
    const text = errorCodeReference();
    for (const [code, meaning] of Object.entries(ERROR_CODES)) {
      const lines = text.split('\n').filter((l) => l.startsWith(`- \`${code}\` `));
      assert.equal(lines.length, 1, code);
      assert.ok(text.replaceAll(/\n {2}/g, ' ').includes(meaning), code);
    }
    assert.match(text, /^- `ERR_CAVEAT_UNSATISFIED` \(exit 3, HTTP 403\): /m);
    assert.match(text, /^- `ERR_PROFILE_INVALID` \(exit 2, gRPC FAILED_PRECONDITION\): /m);
    assert.match(text, /^- `ERR_VOLUME_DENIED` \(exit 3, gRPC PERMISSION_DENIED\): /m);
    assert.match(text, /^- `ERR_NOT_FOUND` \(exit 2, ENOENT\): /m);
  });

  it('documents every field with its description, default and whether it is required', () => {
    const schema = z
      .strictObject({
        name: z.string().describe('What it is called'),
        size: z.number().int().min(1).max(9).default(3).describe('How big'),
        source: z
          .union([
            z.strictObject({ file: z.string().describe('A file') }),
            z.strictObject({ env: z.string().describe('A variable') }),
          ])
          .optional()
          .describe('Where it comes from'),
      })
      .describe('A thing');
    const text = referenceFor(schema, 'thing');
    assert.match(text, /^### `thing`\n\nA thing\n/);
    assert.match(text, /^- `name` \(string; required\): What it is called$/m);
    assert.match(text, /^- `size` \(integer 1\.\.9; default `3`\): How big$/m);
    assert.match(text, /^- `source` \(`\{ file \}` or `\{ env \}`, below\): Where it comes from$/m);
    assert.match(
      text,
      /### `source`\n\nWhere it comes from\n\n- `file` \(string\): A file\n- `env` \(string\): A variable/,
    );
    // Long descriptions wrap at 100 columns, continued under the bullet.
    const long = referenceFor(
      z.strictObject({ words: z.string().describe('word '.repeat(40).trim()) }),
      'long',
    );
    const lines = long.split('\n').filter((l) => l.startsWith('- ') || l.startsWith('  '));
    assert.ok(lines.length >= 3);
    for (const line of lines) assert.ok(line.length <= 100, line);
  });
});
