/**
 * Writes the C headers made from TypeScript tables (part of npm run
 * generate): native/addon/file-errors.h from src/fuse/errno.ts. A unit test
 * (test/unit/native-headers.test.ts) fails when one is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileErrorsHeader } from '../src/fuse/errno.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
const file = join(ROOT, 'native', 'addon', 'file-errors.h');
const text = fileErrorsHeader();
let before = '';
try {
  before = readFileSync(file, 'utf8');
} catch {
  // not written yet
}
if (before !== text) writeFileSync(file, text);
console.log(`native/addon/file-errors.h: ${before === text ? 'current' : 'rewritten'}`);
