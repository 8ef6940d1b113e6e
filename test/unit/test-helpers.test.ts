/**
 * The test suite's own helpers for external commands (test/helpers/spawn.ts):
 * a command that hangs fails within its timeout, naming what the helper
 * waited for; one that writes more than a pipe holds still finishes (its
 * output is drained while it runs).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runAsync, runSync } from '../helpers/spawn.js';

describe('test helpers: external commands', () => {
  it('a hung command fails within its timeout, naming what was waited for', async () => {
    const started = Date.now();
    assert.throws(
      () => runSync('sleep', ['30'], 'a sleeper', { timeoutMs: 300 }),
      /^Error: waiting for a sleeper: `sleep 30` did not finish within 0\.3 s/,
    );
    await assert.rejects(
      runAsync('sleep', ['30'], undefined, undefined, undefined, 300),
      /`sleep 30` did not finish within 0\.3 s \(killed\)/,
    );
    assert.ok(Date.now() - started < 10_000, 'the timeouts held');
  });

  it('a failing command says how it failed and the end of what it said', () => {
    assert.throws(
      () => runSync('sh', ['-c', 'echo the reason >&2; exit 3'], 'a failure'),
      /waiting for a failure: `sh -c .*` failed \(3\): the reason/,
    );
  });

  it('a command that writes more than a pipe holds, on both streams, finishes', async () => {
    const script = 'head -c 2000000 /dev/zero >&2; head -c 2000000 /dev/zero | tr "\\0" a; echo';
    assert.equal(
      runSync('sh', ['-c', script], 'a chatty command', { timeoutMs: 20_000 }).length,
      2_000_001,
    );
    const result = await runAsync('sh', ['-c', script], undefined, undefined, undefined, 20_000);
    assert.equal(result.code, 0);
    assert.equal(result.stderr.length, 2_000_000);
  });
});
