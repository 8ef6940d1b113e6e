/**
 * npm run generate (part): rewrites the generated references in docs/profiles.md,
 * docs/gateway.md (the zod schemas) and docs/commands.md (the error codes), via
 * src/docs/config-reference.ts,
 * formatted as `npm run lint` wants it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENERATED_REFERENCES, currentDocument } from '../src/docs/config-reference.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
for (const reference of GENERATED_REFERENCES) {
  const path = join(ROOT, reference.file);
  const before = readFileSync(path, 'utf8');
  const after = await currentDocument(path, before, reference);
  if (after !== before) writeFileSync(path, after);
  console.log(`${reference.file}: ${after === before ? 'current' : 'rewritten'}`);
}
