/**
 * Held requests shared through a real Redis: gateways (and workers of one
 * gateway) sharing it show every held request to every approver, and a
 * decision on any of them releases, denies or lets time out the request
 * wherever it is held. Records in Redis cannot release anything by
 * themselves: a forged decision is ignored, and a gateway that dies leaves
 * nothing an approver can decide.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { APPROVAL_ID, CHANNEL, DECISION_PREFIX, HELD_PREFIX } from '../../src/approval/shared.js';
import { sealRecord } from '../../src/approval/sealed-record.js';
import { createLogger } from '../../src/log/logger.js';
import { connectRedis } from '../../src/state/redis.js';
import { RootKey } from '../../src/token/root-key.js';
import { runCli } from '../helpers/cli.js';
import {
  CREDENTIAL,
  configWithoutSocket,
  startGatewayFixture,
  startGatewayProcess,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { teardownOf } from '../helpers/temp.js';

const MERGE = '/github/repos/acme/widgets/pulls/7/merge';
const APPROVAL = { methods: ['PUT', 'DELETE'], paths: ['/repos/acme/widgets/pulls/*/merge'] };

interface Answer {
  status: number;
  body: string;
}

function send(base: string, token: string, body = '{"merge_method":"squash"}'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${MERGE}`,
      {
        method: 'PUT',
        agent: new Agent({ keepAlive: false }),
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const codeOf = (answer: Answer) => (JSON.parse(answer.body) as { error: string }).error;

interface PendingLine {
  id: string;
  agent: string;
  method: string;
  path: string;
  bodyPreview: string;
}

function approvals(socket: string, ...args: string[]) {
  const result = runCli(['approvals', ...args, '--socket', socket]);
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    json = undefined;
  }
  return { code: result.code, json, stderr: result.stderr };
}

function pending(socket: string): PendingLine[] {
  const listed = approvals(socket, 'list');
  assert.equal(listed.code, 0, listed.stderr);
  return (listed.json as { pending: PendingLine[] }).pending;
}

async function waiting(socket: string, count = 1): Promise<PendingLine[]> {
  return pollUntil(`${count} request(s) to wait for an approver`, () => {
    if (!existsSync(socket)) return undefined;
    const now = pending(socket);
    return now.length >= count ? now : undefined;
  });
}

interface Gateway {
  readonly base: string;
  readonly socket: string;
  readonly stderr: () => string;
  kill(): Promise<void>;
}

/** Another gateway with the fixture's config, keys and Redis, and an approvals socket of its own. */
async function startPeer(t: TestContext, gw: GatewayFixture, name: string): Promise<Gateway> {
  const socket = join(gw.dir, `${name}-approvals.sock`);
  const config = configWithoutSocket(gw).replace('socket: ./approvals.sock', `socket: ${socket}`);
  const peer = await startGatewayProcess(t, gw, name, config);
  return { base: peer.base, socket, stderr: peer.stderr, kill: peer.stop };
}

/** A real Redis, the fixture's gateway (A) and a peer (B) sharing it. */
async function twoGateways(
  t: TestContext,
  timeout = '60s',
  extra: readonly string[] = [],
): Promise<{ redis: RedisServer; gw: GatewayFixture; a: Gateway; b: Gateway }> {
  const redis = await startRedis(teardownOf(t));
  const gw = await startGatewayFixture(t, {
    topLevel: [
      `redis: ${redis.url}`,
      'approval:',
      '  socket: ./approvals.sock',
      `  timeout: ${timeout}`,
      ...extra,
    ].join('\n'),
  });
  const a: Gateway = {
    base: gw.base,
    socket: join(gw.dir, 'approvals.sock'),
    stderr: () => gw.stderr(),
    kill: async () => {
      if (gw.child.exitCode !== null || gw.child.signalCode !== null) return;
      const gone = new Promise((resolve) => gw.child.once('exit', resolve));
      gw.child.kill('SIGKILL');
      await gone;
    },
  };
  const b = await startPeer(t, gw, 'peer');
  return { redis, gw, a, b };
}

function mergeToken(gw: GatewayFixture, agent = 'coder'): string {
  return gw.token({
    agent,
    methods: ['GET', 'PUT', 'DELETE'],
    paths: ['/repos/acme/widgets/**'],
    approval: APPROVAL,
  });
}

const merges = (gw: GatewayFixture) =>
  gw.upstream.requests.filter((r) => r.url.endsWith('/pulls/7/merge'));

function auditLine(stderr: string, id: string): Record<string, unknown> | undefined {
  const line = stderr
    .split('\n')
    .find((l) => l.includes('"event":"approval-decided"') && l.includes(id));
  return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
}

describe('approvals shared through Redis', () => {
  it('a second gateway sharing Redis releases a request held on the first', async (t) => {
    const { gw, a, b } = await twoGateways(t);
    const token = mergeToken(gw);
    const body = JSON.stringify({ merge_method: 'squash', note: `from ${token}` });
    const held = send(a.base, token, body);
    // B's approver sees the request A holds, its body masked as A would show it.
    const [seen] = await waiting(b.socket);
    assert.equal(seen?.agent, 'coder');
    assert.equal(seen?.method, 'PUT');
    assert.match(seen?.bodyPreview ?? '', /squash/);
    assert.ok(!(seen?.bodyPreview ?? '').includes(token));
    assert.deepEqual(
      pending(a.socket).map((p) => p.id),
      [seen?.id],
      'A lists the same request',
    );
    assert.equal(merges(gw).length, 0);
    // `show` on B gives the whole body A read, the token in it masked.
    const shown = approvals(b.socket, 'show', seen?.id ?? '');
    assert.equal(shown.code, 0, shown.stderr);
    const detail = (shown.json as { pending: { id: string; body: string } }).pending;
    assert.equal(detail.id, seen?.id);
    assert.match(
      detail.body,
      /^\{"merge_method":"squash","note":"from \[a mintfs token, \d+ characters, masked\]"\}$/,
    );
    assert.ok(!detail.body.includes(token));

    const approved = approvals(b.socket, 'approve', seen?.id ?? '');
    assert.equal(approved.code, 0, approved.stderr);
    const answer = await held;
    assert.equal(answer.status, 200, answer.body);
    assert.equal(merges(gw).length, 1);
    assert.equal(merges(gw)[0]?.body.toString(), body);
    // The holder's audit line names B's approver.
    const line = await pollUntil('A to log the decision', () =>
      auditLine(a.stderr(), seen?.id ?? ''),
    );
    assert.equal(line.decision, 'approved');
    assert.equal(line.approver, 'uid:0');
    assert.deepEqual(pending(b.socket), [], 'nothing waits any more, on either gateway');
    assert.deepEqual(pending(a.socket), []);
    // Decided once: a second decision on A is a clear error.
    const late = approvals(a.socket, 'deny', seen?.id ?? '', '--reason', 'too late');
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /ERR_APPROVAL_UNKNOWN|no request waits/);
  });

  it('a denial on the second gateway reaches the agent on the first, with its reason', async (t) => {
    const { gw, a, b } = await twoGateways(t);
    const held = send(a.base, mergeToken(gw));
    const [seen] = await waiting(b.socket);
    const denied = approvals(b.socket, 'deny', seen?.id ?? '', '--reason', 'not on a Friday');
    assert.equal(denied.code, 0, denied.stderr);
    const answer = await held;
    assert.equal(answer.status, 403);
    assert.equal(codeOf(answer), 'ERR_APPROVAL_DENIED');
    assert.match(answer.body, /uid:0 denied this request.*not on a Friday.*Do not retry/);
    assert.equal(merges(gw).length, 0);
  });

  it('a request that times out on its holder cannot be approved on another gateway', async (t) => {
    const { gw, a, b } = await twoGateways(t, '3s');
    const held = send(a.base, mergeToken(gw));
    const [seen] = await waiting(b.socket);
    const answer = await held;
    assert.equal(answer.status, 403);
    assert.equal(codeOf(answer), 'ERR_APPROVAL_TIMEOUT');
    assert.deepEqual(pending(b.socket), []);
    const late = approvals(b.socket, 'approve', seen?.id ?? '');
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /ERR_APPROVAL_UNKNOWN|no request waits/);
    assert.equal(merges(gw).length, 0);
  });

  it('an approval with --uses given on one gateway releases the identical request on the other', async (t) => {
    const { gw, a, b } = await twoGateways(t);
    const token = mergeToken(gw);
    const first = send(a.base, token);
    const [seen] = await waiting(b.socket);
    assert.equal(approvals(b.socket, 'approve', seen?.id ?? '', '--uses', '2').code, 0);
    assert.equal((await first).status, 200);
    // The second use, on B: no wait.
    assert.equal((await send(b.base, token)).status, 200);
    // Spent: the third waits again (denied here).
    const third = send(a.base, token);
    const [next] = await waiting(a.socket);
    assert.equal(approvals(a.socket, 'deny', next?.id ?? '', '--reason', 'enough').code, 0);
    assert.equal((await third).status, 403);
    assert.equal(merges(gw).length, 2);
  });

  it('a gateway that dies with a request held leaves nothing an approver can decide', async (t) => {
    const { gw, a, b } = await twoGateways(t);
    const held = send(a.base, mergeToken(gw)).catch(() => undefined);
    const [seen] = await waiting(b.socket);
    await a.kill();
    await held;
    // The record's lease ends within seconds of its holder's last renewal.
    await pollUntil(
      'the dead gateway’s request to leave the list',
      () => pending(b.socket).length === 0,
      20_000,
    );
    const late = approvals(b.socket, 'approve', seen?.id ?? '');
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /ERR_APPROVAL_UNKNOWN|no request waits/);
    assert.equal(merges(gw).length, 0);
  });

  it('a decision forged in Redis releases nothing; the request stays held for a real approver', async (t) => {
    const { redis, gw, a, b } = await twoGateways(t);
    const held = send(a.base, mergeToken(gw));
    const [seen] = await waiting(b.socket);
    const id = seen?.id ?? '';
    assert.match(id, APPROVAL_ID);
    const logger = createLogger({ level: 'silent' });
    const client = await connectRedis(redis.url, logger, { failFast: true });
    t.after(() => client.close());
    // Someone who can write to Redis but holds no keyring: an approval sealed
    // under a key of the gateway's key id but other bytes, as the decide
    // script would write it (held record gone, decision stored, announced).
    const keyId = gw.keyring().current.id;
    const forger = new RootKey(keyId, Buffer.alloc(32, 7));
    const forged = sealRecord(forger, 'decision', id, {
      kind: 'approved',
      approver: 'uid:0',
      discharges: ['AgETbWludGZzLWFwcHJvdmFs'],
      terms: { decisionId: id, expiresAt: new Date(Date.now() + 60_000).toISOString(), uses: 1 },
    });
    await client.client.del(`${HELD_PREFIX}${id}`);
    await client.client.set(`${DECISION_PREFIX}${id}`, forged, { PX: 60_000 });
    await client.client.publish(CHANNEL, `decided ${id}`);
    await pollUntil('A to ignore the forged decision', () =>
      a.stderr().includes('"event":"approval-record-unreadable"'),
    );
    // The holder shows its request again (its record was deleted): still held, nothing sent.
    const [again] = await waiting(b.socket);
    assert.equal(again?.id, id);
    assert.equal(merges(gw).length, 0);
    // The forged decision is in the way of no real one.
    assert.equal(approvals(b.socket, 'approve', id).code, 0);
    assert.equal((await held).status, 200);
    assert.equal(merges(gw).length, 1);
  });

  it('what lands in Redis shows a reader no agent, path, body, token or token id', async (t) => {
    const { redis, gw, a, b } = await twoGateways(t);
    const token = mergeToken(gw, 'coder-with-a-name');
    const body = JSON.stringify({ merge_method: 'squash', note: 'a body only approvers may read' });
    const first = send(a.base, token, body);
    const [seen] = await waiting(b.socket);
    const held = await pollUntil('A to log the hold', () =>
      a
        .stderr()
        .split('\n')
        .find((l) => l.includes('"event":"approval-held"')),
    );
    const tokenId = (JSON.parse(held) as { tokenId: string }).tokenId;
    const logger = createLogger({ level: 'silent' });
    const client = await connectRedis(redis.url, logger, { failFast: true });
    t.after(() => client.close());
    /** Every key and every value in Redis, as one text. */
    const everything = async (): Promise<string> => {
      const parts: string[] = [];
      for (const key of await client.client.keys('*')) {
        const type = await client.client.type(key);
        parts.push(key);
        if (type === 'string') parts.push((await client.client.get(key)) ?? '');
        else if (type === 'zset') parts.push(...(await client.client.zRange(key, 0, -1)));
        else if (type === 'hash') parts.push(JSON.stringify(await client.client.hGetAll(key)));
      }
      return parts.join('\n');
    };
    const secrets = (dump: string) =>
      [
        'coder-with-a-name',
        'pulls/7/merge',
        'squash',
        'a body only approvers may read',
        tokenId,
        token,
        CREDENTIAL,
      ].filter((secret) => dump.includes(secret));
    const whileHeld = await everything();
    assert.ok(whileHeld.includes(`${HELD_PREFIX}${seen?.id ?? ''}`), 'the held record is there');
    assert.deepEqual(secrets(whileHeld), []);
    // An approval with uses left is stored too (under a name that is an HMAC).
    assert.equal(approvals(b.socket, 'approve', seen?.id ?? '', '--uses', '3').code, 0);
    assert.equal((await first).status, 200);
    const afterApproval = await everything();
    assert.match(afterApproval, /mintfs:approval:standing:/);
    assert.match(afterApproval, /mintfs:approval:decision:/);
    assert.deepEqual(secrets(afterApproval), []);
    // And the standing approval is what it says: the next identical request goes at once, on B.
    assert.equal((await send(b.base, token, body)).status, 200);
  });

  it('with workers: 2 the approvers of the first worker release requests held on either worker', async (t) => {
    const redis = await startRedis(teardownOf(t));
    const gw = await startGatewayFixture(t);
    const socket = join(gw.dir, 'workers-approvals.sock');
    const cluster = await startGatewayProcess(
      t,
      gw,
      'workers',
      [
        configWithoutSocket(gw),
        'workers: 2',
        `redis: ${redis.url}`,
        'approval:',
        `  socket: ${socket}`,
        '  timeout: 60s',
        '',
      ].join('\n'),
      { listeners: 2, stopSignal: 'SIGTERM' },
    );
    const token = mergeToken(gw);
    // Each on a new connection: the cluster hands connections to the workers in turn.
    const answers = [1, 2, 3, 4].map((n) =>
      send(cluster.base, token, JSON.stringify({ merge_method: 'squash', n })),
    );
    const seen = await waiting(socket, 4);
    // The hold's log line may follow its record into Redis.
    const holders = await pollUntil('four approval-held lines', () => {
      const lines = cluster
        .stderr()
        .split('\n')
        .filter((l) => l.includes('"event":"approval-held"'));
      return lines.length === 4
        ? new Set(lines.map((l) => (JSON.parse(l) as { pid: number }).pid))
        : undefined;
    });
    assert.equal(holders.size, 2, 'both workers hold some of the requests');
    for (const request of seen) assert.equal(approvals(socket, 'approve', request.id).code, 0);
    const statuses = (await Promise.all(answers)).map((answer) => answer.status);
    assert.deepEqual(statuses, [200, 200, 200, 200]);
    assert.equal(merges(gw).length, 4);
    assert.deepEqual(pending(socket), []);
  });

  it('with Redis away a new request is refused (503, retryable); one held before is released once it is back', async (t) => {
    const { redis, gw, a, b } = await twoGateways(t);
    const token = mergeToken(gw);
    const held = send(a.base, token);
    const [seen] = await waiting(b.socket);
    await redis.kill();
    await pollUntil('A to see Redis down', () => a.stderr().includes('"event":"redis-down"'));
    // Not held where no approver could see it.
    const refused = await send(a.base, token, '{"merge_method":"rebase"}');
    assert.equal(refused.status, 503, refused.body);
    assert.equal(codeOf(refused), 'ERR_STATE_UNAVAILABLE');
    const listed = approvals(b.socket, 'list');
    assert.notEqual(listed.code, 0);
    assert.match(listed.stderr, /ERR_STATE_UNAVAILABLE|Redis/);
    await redis.start();
    // B reconnects within a second or so; the held request is there (or shown again by A).
    const again = await pollUntil('B to list the held request again', () => {
      const now = approvals(b.socket, 'list');
      return now.code === 0 ? (now.json as { pending: PendingLine[] }).pending[0] : undefined;
    });
    assert.equal(again.id, seen?.id);
    assert.equal(approvals(b.socket, 'approve', seen?.id ?? '').code, 0);
    assert.equal((await held).status, 200);
    assert.equal(merges(gw).length, 1);
  });

  it('the limit on held requests of an agent counts what it has waiting on every gateway', async (t) => {
    const { gw, a, b } = await twoGateways(t, '60s', ['  maxHeldPerAgent: 1']);
    const first = send(a.base, mergeToken(gw));
    const [seen] = await waiting(b.socket);
    // The same agent on the other gateway: refused at once, not held.
    const second = await send(b.base, mergeToken(gw));
    assert.equal(second.status, 429, second.body);
    assert.equal(codeOf(second), 'ERR_TOO_MANY_REQUESTS');
    assert.match(second.body, /maxHeldPerAgent/);
    // Another agent is not counted against it.
    const other = send(b.base, mergeToken(gw, 'reviewer'));
    const both = await waiting(a.socket, 2);
    assert.deepEqual(both.map((p) => p.agent).sort(), ['coder', 'reviewer']);
    for (const p of both) assert.equal(approvals(a.socket, 'approve', p.id).code, 0);
    assert.equal((await first).status, 200);
    assert.equal((await other).status, 200);
    assert.ok(seen !== undefined);
  });
});
