/**
 * The AppArmor profile for agent containers (scripts/apparmor/mintfs-agent),
 * parsed by the real apparmor_parser: this kernel has no AppArmor to load it into.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT as ROOT } from '../helpers/paths.js';
import { runAsync as run } from '../helpers/spawn.js';
import { tempDir } from '../helpers/temp.js';

describe('AppArmor profile', () => {
  it('parses with apparmor_parser (this kernel has no AppArmor to load it into)', async (t) => {
    const profile = join(ROOT, 'scripts', 'apparmor', 'mintfs-agent');
    const good = await run('apparmor_parser', ['-Q', '-K', profile]);
    assert.equal(good.code, 0, good.stderr);
    // The check is real: a broken copy fails.
    const broken = join(tempDir(t), 'broken');
    writeFileSync(broken, 'profile broken { /** rix, \n');
    assert.notEqual((await run('apparmor_parser', ['-Q', '-K', broken])).code, 0);
  });
});
