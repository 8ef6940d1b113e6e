/**
 * What makes the `mintfs` executable start fast without making it less safe:
 * V8's compile cache only in a directory this user alone can write, and
 * yargs not rendering help text nobody will print. Speed itself is measured
 * by npm run bench:cli; these check the behaviour the speed rests on.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import yargs, { type Argv } from 'yargs';
import { compileCacheDir } from '../../src/cli/compile-cache.js';
import { skipHelpCacheAfterCommands } from '../../src/cli/yargs-help-cache.js';
import { diagnostics, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

describe('the compile cache directory', () => {
  it('is $XDG_CACHE_HOME/mintfs/v8, created private', (t) => {
    const base = join(tempDir(t), 'cache');
    const dir = compileCacheDir({ XDG_CACHE_HOME: base }, () => '/nonexistent');
    assert.equal(dir, join(base, 'mintfs', 'v8'));
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });

  it('falls back to ~/.cache when XDG_CACHE_HOME is unset or relative', (t) => {
    const home = tempDir(t);
    assert.equal(
      compileCacheDir({}, () => home),
      join(home, '.cache', 'mintfs', 'v8'),
    );
    assert.equal(
      compileCacheDir({ XDG_CACHE_HOME: 'rel/cache' }, () => home),
      join(home, '.cache', 'mintfs', 'v8'),
    );
  });

  it('is not used where someone else could plant code', (t) => {
    const open = join(tempDir(t), 'open');
    mkdirSync(open);
    chmodSync(open, 0o777); // writable by all, no sticky bit
    assert.equal(
      compileCacheDir({ XDG_CACHE_HOME: open }, () => '/nonexistent'),
      undefined,
    );

    const foreign = join(tempDir(t), 'foreign');
    mkdirSync(join(foreign, 'mintfs', 'v8'), { recursive: true });
    chmodSync(join(foreign, 'mintfs', 'v8'), 0o770);
    assert.equal(
      compileCacheDir({ XDG_CACHE_HOME: foreign }, () => '/nonexistent'),
      undefined,
    );
  });

  it('is simply absent when there is no usable home', (t) => {
    const file = join(tempDir(t), 'not-a-dir');
    writeFileSync(file, '');
    assert.equal(
      compileCacheDir({ XDG_CACHE_HOME: file }, () => '/nonexistent'),
      undefined,
    );
    assert.equal(
      compileCacheDir({}, () => 'relative-home'),
      undefined,
    );
    assert.equal(
      compileCacheDir({}, () => {
        throw new Error('no passwd entry');
      }),
      undefined,
    );
  });

  it('is where the executable writes its cache, and an unsafe one is left alone', (t) => {
    const good = join(tempDir(t), 'good');
    const result = runCli(['--version'], { env: { XDG_CACHE_HOME: good } });
    assert.equal(result.code, 0, result.stderr);
    const v8 = join(good, 'mintfs', 'v8');
    // One subdirectory per Node version and V8 flags, holding the cached modules.
    const versions = readdirSync(v8);
    assert.equal(versions.length, 1);
    assert.ok(readdirSync(join(v8, versions[0] as string)).length > 0);

    const bad = join(tempDir(t), 'bad');
    mkdirSync(bad);
    chmodSync(bad, 0o777);
    const again = runCli(['--version'], { env: { XDG_CACHE_HOME: bad } });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stderr, '');
    assert.equal(existsSync(join(bad, 'mintfs', 'v8')), true); // made, then judged unsafe
    assert.deepEqual(readdirSync(join(bad, 'mintfs', 'v8')), []);
  });
});

describe('yargs help rendering', () => {
  /** How often yargs renders help while running one command that succeeds. */
  async function helpRenders(workaround: boolean): Promise<number> {
    const cli = yargs(['hello', '--name', 'x']);
    const usage = (
      cli as unknown as {
        getInternalMethods(): { getUsageInstance(): { help: () => string } };
      }
    )
      .getInternalMethods()
      .getUsageInstance();
    let renders = 0;
    const help = usage.help;
    usage.help = function (this: unknown) {
      renders++;
      return help.call(this);
    };
    if (workaround) assert.equal(skipHelpCacheAfterCommands(cli), true);
    let ran = false;
    await cli
      .command(
        'hello',
        'says hello',
        (y: Argv) => y.option('name', { type: 'string' }),
        () => {
          ran = true;
        },
      )
      .strict()
      .parseAsync();
    assert.equal(ran, true);
    return renders;
  }

  it('happens after every command in plain yargs (why the workaround exists)', async () => {
    assert.ok((await helpRenders(false)) >= 1);
  });

  it('does not happen with the workaround', async () => {
    assert.equal(await helpRenders(true), 0);
  });

  it('still answers --help and usage errors in the real CLI', () => {
    const help = runCli(['inspect', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /mintfs inspect/);
    const usage = runCli(['attenuate', 'x'], {
      env: { LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' },
    });
    assert.equal(usage.code, 2);
    // English whatever the locale: the bundle carries no yargs locale files.
    assert.deepEqual(diagnostics(usage.stderr), [
      'mintfs: Missing required argument: caveat (see mintfs --help)',
    ]);
  });
});
