#!/usr/bin/env node
/**
 * Writes mount-profiles/compose/seccomp.json, mintfs's seccomp policy as a
 * Docker profile, for compose users (mintfs run writes its own per run).
 * test/unit/contain.test.ts fails when the file is stale: run
 * `npm run build && node scripts/write-seccomp-json.mjs` after changing the policy.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seccompProfileJson } from '../dist/src/contain/seccomp-policy.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..');
writeFileSync(join(ROOT, 'mount-profiles', 'compose', 'seccomp.json'), seccompProfileJson());
