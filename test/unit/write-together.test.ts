/**
 * A mount daemon's audit lines, a batch at a time: held while the batch is
 * logged, then written in one write (or, past PIPE_BUF, as few as keep each
 * write whole on a shared pipe), before writeTogether returns.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { createLogger } from '../../src/log/logger.js';
import {
  BatchingDestination,
  PIPE_BUF,
  writeTogether,
  writesOf,
} from '../../src/log/write-together.js';
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

  it('a batch over PIPE_BUF bytes goes out in writes of whole lines, each within PIPE_BUF', () => {
    const out = recorder();
    const logger = pino({ base: null }, new BatchingDestination(out));
    const sent = Array.from({ length: 60 }, (_, n) => `line ${n} ${'é'.repeat(n * 7)}`);
    writeTogether(logger, () => {
      for (const msg of sent) logger.info(msg);
    });
    assert.ok(out.writes.length > 1, 'more than one write');
    for (const write of out.writes) {
      assert.ok(
        Buffer.byteLength(write) <= PIPE_BUF,
        `a write of ${Buffer.byteLength(write)} bytes`,
      );
      assert.ok(write.endsWith('\n'));
    }
    assert.deepEqual(out.writes.flatMap(linesOf), sent);
  });

  it('cuts any lines only between lines, in order, never over PIPE_BUF but for a line alone (property)', () => {
    const line = fc
      .oneof(fc.string({ maxLength: 200 }), fc.string({ minLength: 3000, maxLength: 6000 }))
      .map((text) => `${text.replaceAll('\n', ' ')}\n`);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 40 }), (lines) => {
        const writes = writesOf(lines);
        assert.equal(writes.join(''), lines.join(''));
        // Every write is whole lines: the lines, regrouped.
        let at = 0;
        for (const write of writes) {
          let joined = '';
          const first = at;
          while (joined.length < write.length) joined += lines[at++] ?? '';
          assert.equal(joined, write);
          if (Buffer.byteLength(write) > PIPE_BUF)
            assert.equal(at - first, 1, 'over PIPE_BUF only alone');
        }
        // As few as that allows: no two neighbours would have fitted together.
        for (let i = 1; i < writes.length; i++)
          assert.ok(
            Buffer.byteLength(writes[i - 1] ?? '') + Buffer.byteLength(writes[i] ?? '') > PIPE_BUF,
          );
      }),
    );
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
