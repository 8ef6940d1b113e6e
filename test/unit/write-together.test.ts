/**
 * A mount daemon's audit lines, a batch at a time: held while the batch is
 * logged, then written in one write, before writeTogether returns.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createLogger } from '../../src/log/logger.js';
import { BatchingDestination, writeTogether } from '../../src/log/write-together.js';
import { tempDir } from '../helpers/temp.js';

/** A destination that keeps each write it is handed. */
function recorder(): { writes: string[]; write: (line: string) => void } {
  const writes: string[] = [];
  return { writes, write: (line) => void writes.push(line) };
}

function linesOf(write: string): string[] {
  return write
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { msg: string }).msg);
}

describe('writeTogether', () => {
  it('writes a batch in one write, in order; lines outside a batch one write each', () => {
    const out = recorder();
    const logger = pino({ base: null }, new BatchingDestination(out));
    logger.info('before');
    writeTogether(logger, () => {
      for (const n of [1, 2, 3]) logger.child({ n }).info(`line ${n}`);
      assert.equal(out.writes.length, 1, 'nothing written while the batch runs');
    });
    logger.info('after');
    assert.equal(out.writes.length, 3);
    assert.deepEqual(linesOf(out.writes[1] ?? ''), ['line 1', 'line 2', 'line 3']);
    assert.deepEqual(linesOf(out.writes[2] ?? ''), ['after']);
  });

  it('writes what was logged when the batch throws, nested batches once, empty batches never', () => {
    const out = recorder();
    const logger = pino({ base: null }, new BatchingDestination(out));
    assert.throws(
      () =>
        writeTogether(logger, () => {
          logger.info('logged');
          writeTogether(logger, () => logger.info('nested'));
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(out.writes.length, 1);
    assert.deepEqual(linesOf(out.writes[0] ?? ''), ['logged', 'nested']);
    writeTogether(logger, () => undefined);
    assert.equal(out.writes.length, 1);
  });

  it('a logger that does not batch logs as it would anyway', () => {
    const out = recorder();
    const logger = pino({ base: null }, out);
    assert.equal(
      writeTogether(logger, () => {
        logger.info('a');
        logger.info('b');
        return 7;
      }),
      7,
    );
    assert.equal(out.writes.length, 2);
  });

  it('a pretty logger formats each line of a batch as it would alone', (t) => {
    const file = join(tempDir(t), 'pretty.log');
    const logger = createLogger({ destination: file, format: 'pretty' });
    logger.info({ event: 'mint', file: 'github/token' }, 'minted token');
    writeTogether(logger, () => {
      logger.info({ event: 'mint', file: 'a' }, 'minted token');
      logger.info({ event: 'mint', file: 'b' }, 'minted token');
    });
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 3);
    for (const line of lines) {
      assert.ok(!line.startsWith('{'), `not JSON: ${line}`);
      assert.match(line, /INFO|info/);
      assert.match(line, /mint {2}minted token {2}file=/);
    }
    assert.match(lines[2] ?? '', /file=b$/);
  });

  it("a synchronous logger's batch is in its file when writeTogether returns", (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'audit.log');
    const logger = createLogger({ destination: file });
    writeTogether(logger, () => {
      for (let i = 0; i < 200; i++) logger.info({ event: 'mint', i }, 'minted token');
    });
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 200);
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { i: number }).i),
      [...Array(200).keys()],
    );
  });
});
