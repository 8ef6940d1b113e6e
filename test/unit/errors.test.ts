/**
 * MintfsError is recognised by a mark, not by its prototype: the bundle's
 * one-shot files each carry a copy of errors.ts (scripts/bundle-cli.mjs),
 * and an error thrown from one copy is reported by another.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MintfsError, isMintfsError } from '../../src/errors.js';
import type * as ErrorsModule from '../../src/errors.js';

describe('MintfsError across copies of its module', () => {
  it('an error made by a second copy of errors.js is a MintfsError here, with its code', async () => {
    // A query string makes Node load the module again: a second class, as a second bundle file has.
    const copy = (await import(`../../src/errors.js?copy=${Date.now()}`)) as typeof ErrorsModule;
    assert.notEqual(copy.MintfsError, MintfsError);
    const theirs = new copy.MintfsError('ERR_STATE_UNAVAILABLE', 'Redis is unreachable');
    assert.ok(theirs instanceof MintfsError);
    assert.ok(isMintfsError(theirs, 'ERR_STATE_UNAVAILABLE'));
    assert.ok(!isMintfsError(theirs, 'ERR_INPUT_INVALID'));
    assert.ok(new MintfsError('ERR_INPUT_INVALID', 'x') instanceof copy.MintfsError);
  });

  it('the mark is not enumerable, and a subclass keeps its own instanceof', () => {
    const err = new MintfsError('ERR_INPUT_INVALID', 'x');
    assert.deepEqual(Object.keys(err), ['name', 'code']);
    assert.equal(Object.getOwnPropertySymbols(err).length, 1);
    class Narrower extends MintfsError {}
    assert.ok(!(err instanceof Narrower), 'a MintfsError is not every subclass');
    assert.ok(new Narrower('ERR_INPUT_INVALID', 'y') instanceof Narrower);
    assert.ok(new Narrower('ERR_INPUT_INVALID', 'y') instanceof MintfsError);
  });

  it('nothing without the mark passes: plain errors, look-alikes, primitives', () => {
    const lookalike = Object.assign(new Error('x'), {
      name: 'MintfsError',
      code: 'ERR_INPUT_INVALID',
    });
    for (const value of [
      new Error('x'),
      lookalike,
      { code: 'ERR_INPUT_INVALID' },
      null,
      undefined,
      'MintfsError',
      3,
    ])
      assert.ok(!(value instanceof MintfsError), JSON.stringify(value));
  });
});
