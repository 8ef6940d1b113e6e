/**
 * The one audit line a gateway request or WebSocket handshake leaves, written
 * through the real pino logger into a sink that parses each line.
 */
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { MintfsErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/log/logger.js';
import { logRequestAudit, type Audit } from '../../src/gateway/audit-line.js';

function sink(): { lines: Array<Record<string, unknown>>; stream: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

function request(method: string): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.method = method;
  return req;
}

type Counted = [MintfsErrorCode | undefined, boolean, number];

function recorder(): { calls: Counted[]; request: (...args: Counted) => void } {
  const calls: Counted[] = [];
  return { calls, request: (...args) => calls.push(args) };
}

// The fields every line carries besides the request's own.
const FRAME = ['level', 'time', 'pid', 'name', 'msg'];

describe('audit line', () => {
  it('a served request: who, what, status, bytes, and no reader or error field', () => {
    const { lines, stream } = sink();
    const metrics = recorder();
    const audit: Audit = {
      mode: 'reverse',
      service: 'github',
      agent: 'agent-1',
      tokenId: 'tok-1',
      path: '/repos/acme/widgets',
      forwarded: true,
      bytesIn: 12,
      bytesOut: 345,
    };
    const started = process.hrtime.bigint();
    logRequestAudit({ logger: createLogger({ stream }), metrics }, request('GET'), audit, started, {
      status: 200,
      completed: true,
    });
    assert.equal(lines.length, 1);
    const line = lines[0] ?? {};
    assert.deepEqual(
      Object.keys(line).sort(),
      [
        ...FRAME,
        'agent',
        'bytesIn',
        'bytesOut',
        'completed',
        'durationMs',
        'event',
        'method',
        'mode',
        'path',
        'service',
        'status',
        'tokenId',
      ].sort(),
    );
    assert.equal(line.event, 'request');
    assert.equal(line.method, 'GET');
    assert.equal(line.status, 200);
    assert.equal(line.bytesOut, 345);
    assert.equal(line.msg, 'gateway request');
    assert.equal(metrics.calls.length, 1);
    const [code, forwarded, seconds] = metrics.calls[0] ?? [];
    assert.equal(code, undefined);
    assert.equal(forwarded, true);
    // The metric and the line report the same duration.
    assert.equal(Number(line.durationMs), (seconds ?? NaN) * 1e3);
  });

  it('a refusal names its error and reader; no status when no response head was sent', () => {
    const { lines, stream } = sink();
    const metrics = recorder();
    logRequestAudit(
      { logger: createLogger({ stream }), metrics },
      request('POST'),
      {
        service: 'github',
        agent: 'agent-1',
        reader: 'uid:1000',
        code: 'ERR_CAVEAT_UNSATISFIED',
        bytesIn: 0,
        bytesOut: 0,
      },
      process.hrtime.bigint(),
      { status: undefined, completed: false },
    );
    const line = lines[0] ?? {};
    assert.equal(line.error, 'ERR_CAVEAT_UNSATISFIED');
    assert.equal(line.reader, 'uid:1000');
    assert.equal(line.completed, false);
    assert.ok(!('status' in line));
    assert.deepEqual(metrics.calls[0]?.slice(0, 2), ['ERR_CAVEAT_UNSATISFIED', false]);
  });

  it('a WebSocket handshake says so and carries no byte counts', () => {
    const { lines, stream } = sink();
    logRequestAudit(
      { logger: createLogger({ stream }) },
      request('GET'),
      { service: 'chat', agent: 'agent-1', tokenId: 'tok-2', bytesIn: 9, bytesOut: 9 },
      process.hrtime.bigint(),
      { websocket: true, status: 101 },
    );
    const line = lines[0] ?? {};
    assert.equal(line.websocket, true);
    assert.equal(line.status, 101);
    assert.ok(!('bytesIn' in line) && !('bytesOut' in line) && !('completed' in line));
  });
});
