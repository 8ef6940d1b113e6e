import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { processAlive } from '../../src/util/process-alive.js';

describe('processAlive', () => {
  it('is true for a running process and false once it has exited', () => {
    assert.equal(processAlive(process.pid), true);
    const exited = spawnSync('/bin/true');
    assert.equal(exited.status, 0);
    // A pid the kernel has not handed out again this soon: the child was reaped.
    assert.equal(processAlive(exited.pid), false);
  });

  it('never asks about process groups or every process: 0, negatives, fractions and huge values are not processes', () => {
    // kill(0, 0) and kill(-1, 0) would succeed (our own group, every process).
    for (const pid of [0, -1, -process.pid, 1.5, Number.NaN, Infinity, 2 ** 31, 4_194_305])
      assert.equal(processAlive(pid), false, String(pid));
  });
});
