/**
 * Approval end to end: a real gateway holds the requests a token's approval
 * caveat names until an approver decides with `mintfs approvals` over the
 * gateway's local socket; the upstream sees a held request only after an
 * approval, with the credential and exactly the body the approver was shown.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { BACKENDS } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import {
  CREDENTIAL,
  runGatewayConfig,
  startGatewayFixture,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { startMountFixture } from '../helpers/mount-fixture.js';
import { CLI } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';
import { freePort } from '../helpers/free-port.js';
import { runAsync } from '../helpers/spawn.js';

const MERGE = '/github/repos/acme/widgets/pulls/7/merge';
const APPROVAL = { methods: ['PUT', 'DELETE'], paths: ['/repos/acme/widgets/pulls/*/merge'] };

interface Answer {
  status: number;
  body: string;
}

function send(
  gw: GatewayFixture,
  method: string,
  path: string,
  token: string,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${gw.base}${path}`,
      {
        method,
        agent: new Agent({ keepAlive: false }),
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
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

interface PendingLine {
  id: string;
  agent: string;
  tokenId: string;
  method: string;
  path: string;
  bodyBytes: number;
  bodyPreview: string;
}

function approvals(
  socket: string,
  ...args: string[]
): { code: number | null; json: unknown; stderr: string } {
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

async function waitingOne(socket: string, count = 1): Promise<PendingLine> {
  const lines = await pollUntil(`${count} request(s) to wait for an approver`, () => {
    // A gateway still starting has no socket yet.
    if (!existsSync(socket)) return undefined;
    const now = pending(socket);
    return now.length >= count ? now : undefined;
  });
  return lines.at(-1) as PendingLine;
}

async function gateway(
  t: TestContext,
  approval: string[] = [],
  limits?: string,
): Promise<{ gw: GatewayFixture; socket: string }> {
  let socket = '';
  const gw = await startGatewayFixture(t, {
    topLevel: ['approval:', '  socket: ./approvals.sock', '  timeout: 30s', ...approval].join('\n'),
    ...(limits === undefined ? {} : { limits }),
  });
  socket = join(gw.dir, 'approvals.sock');
  return { gw, socket };
}

function mergeToken(gw: GatewayFixture, agent = 'coder'): string {
  return gw.token({
    agent,
    methods: ['GET', 'PUT', 'DELETE'],
    paths: ['/repos/acme/widgets/**'],
    approval: APPROVAL,
  });
}

const upstreamMerges = (gw: GatewayFixture) =>
  gw.upstream.requests.filter((r) => r.url.endsWith('/pulls/7/merge'));

describe('approval: requests held for a person', () => {
  it('a merge waits; the approver sees it and approves; the upstream gets it once, with the credential and the body shown', async (t) => {
    const { gw, socket } = await gateway(t);
    assert.equal(statSync(socket).mode & 0o777, 0o600, 'the approvers socket is 0600');
    const token = mergeToken(gw);
    // Requests the approval caveat does not name go at once.
    assert.equal((await send(gw, 'GET', '/github/repos/acme/widgets/pulls', token)).status, 200);

    const body = JSON.stringify({ merge_method: 'squash', note: `from ${token}` });
    const held = send(gw, 'PUT', MERGE, token, body);
    const waiting = await waitingOne(socket);
    assert.equal(waiting.agent, 'coder');
    assert.equal(waiting.method, 'PUT');
    assert.equal(waiting.path, '/repos/acme/widgets/pulls/7/merge');
    assert.equal(waiting.bodyBytes, Buffer.byteLength(body));
    assert.match(waiting.bodyPreview, /squash/);
    assert.ok(
      !waiting.bodyPreview.includes(token),
      'a token in the body is masked for the approver',
    );
    assert.equal(upstreamMerges(gw).length, 0, 'nothing reaches the upstream before a decision');

    const approved = approvals(socket, 'approve', waiting.id);
    assert.equal(approved.code, 0, approved.stderr);
    const answer = await held;
    assert.equal(answer.status, 200, answer.body);
    const [merged] = upstreamMerges(gw);
    assert.equal(merged?.headers.authorization, `token ${CREDENTIAL}`);
    assert.equal(merged?.body.toString(), body);
    assert.ok(!JSON.stringify(merged?.headers).includes(token.slice(0, 40)));
    // The gateway's stderr is a pipe of its own: its audit line may arrive after the response.
    const decided = await pollUntil('the approval-decided audit line', () =>
      gw
        .stderr()
        .split('\n')
        .find((l) => l.includes('"event":"approval-decided"')),
    );
    assert.match(decided ?? '', /"decision":"approved"/);
    assert.match(decided ?? '', /"approver":"uid:0"/);
    assert.ok(!(decided ?? '').includes(token));

    // The decision released one request: the same request again waits again.
    const again = send(gw, 'PUT', MERGE, token, body);
    const second = await waitingOne(socket);
    assert.notEqual(second.id, waiting.id);
    const denied = approvals(socket, 'deny', second.id, '--reason', 'already merged once');
    assert.equal(denied.code, 0, denied.stderr);
    const refused = await again;
    assert.equal(refused.status, 403);
    const error = JSON.parse(refused.body) as { error: string; message: string };
    assert.equal(error.error, 'ERR_APPROVAL_DENIED');
    assert.match(error.message, /uid:0 denied this request.*already merged once.*Do not retry/);
    assert.equal(upstreamMerges(gw).length, 1);
    // Deciding what is no longer waiting is a clear error.
    const late = approvals(socket, 'approve', second.id);
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /ERR_APPROVAL_UNKNOWN|no request waits/);
  });

  it('an approval with --uses releases identical requests only; another body waits', async (t) => {
    const { gw, socket } = await gateway(t);
    const token = mergeToken(gw);
    const first = send(gw, 'PUT', MERGE, token, '{"merge_method":"merge"}');
    const waiting = await waitingOne(socket);
    assert.equal(approvals(socket, 'approve', waiting.id, '--uses', '2').code, 0);
    assert.equal((await first).status, 200);
    // The second use: no wait.
    assert.equal((await send(gw, 'PUT', MERGE, token, '{"merge_method":"merge"}')).status, 200);
    // A different body is a different request: it waits (and is denied here).
    const other = send(gw, 'PUT', MERGE, token, '{"merge_method":"rebase"}');
    const next = await waitingOne(socket);
    assert.equal(approvals(socket, 'deny', next.id, '--reason', 'no').code, 0);
    assert.equal((await other).status, 403);
    // Uses spent: the same request waits again.
    const third = send(gw, 'PUT', MERGE, token, '{"merge_method":"merge"}');
    const last = await waitingOne(socket);
    assert.equal(approvals(socket, 'deny', last.id, '--reason', 'enough').code, 0);
    assert.equal((await third).status, 403);
    assert.equal(upstreamMerges(gw).length, 2);
  });

  it('no decision in time is a 403 timeout; a stopping gateway answers held requests 503', async (t) => {
    const timed = await startGatewayFixture(t, {
      topLevel: ['approval:', '  socket: ./approvals.sock', '  timeout: 1s'].join('\n'),
    });
    const answer = await send(timed, 'PUT', MERGE, mergeToken(timed));
    assert.equal(answer.status, 403);
    assert.equal((JSON.parse(answer.body) as { error: string }).error, 'ERR_APPROVAL_TIMEOUT');
    assert.equal(upstreamMerges(timed).length, 0);

    const { gw, socket } = await gateway(t);
    const held = send(gw, 'PUT', MERGE, mergeToken(gw));
    await waitingOne(socket);
    gw.child.kill('SIGTERM');
    const stopped = await held;
    assert.equal(stopped.status, 503);
    assert.equal((JSON.parse(stopped.body) as { error: string }).error, 'ERR_APPROVAL_UNAVAILABLE');
    assert.equal(upstreamMerges(gw).length, 0);
  });

  it('without an approval service the request is refused, never sent; with one, a held request outlives the body timeouts', async (t) => {
    const plain = await startGatewayFixture(t);
    const refused = await send(plain, 'PUT', MERGE, mergeToken(plain), '{}');
    assert.equal(refused.status, 403);
    const error = JSON.parse(refused.body) as { error: string; message: string };
    assert.equal(error.error, 'ERR_APPROVAL_REQUIRED');
    assert.match(error.message, /no approval service/);
    assert.equal(upstreamMerges(plain).length, 0);

    const { gw, socket } = await gateway(
      t,
      [],
      'bodyIdleTimeout: 1s\nrequestTimeout: 2s\nheadersTimeout: 2s',
    );
    const held = send(gw, 'PUT', MERGE, mergeToken(gw), '{"merge_method":"squash"}');
    const waiting = await waitingOne(socket);
    // The wait itself is what is tested: longer than both body timeouts, as
    // a person's decision takes (not a stand-in for readiness).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal(approvals(socket, 'approve', waiting.id).code, 0);
    assert.equal((await held).status, 200);
  });

  it('an agent may have only approval.maxHeldPerAgent requests waiting; others still can', async (t) => {
    const { gw, socket } = await gateway(t, ['  maxHeldPerAgent: 1']);
    const first = send(gw, 'PUT', MERGE, mergeToken(gw, 'greedy'));
    const waiting = await waitingOne(socket);
    const second = await send(gw, 'DELETE', MERGE, mergeToken(gw, 'greedy'));
    assert.equal(second.status, 429);
    const other = send(gw, 'PUT', MERGE, mergeToken(gw, 'patient'));
    const otherWaiting = await waitingOne(socket, 2);
    assert.equal(otherWaiting.agent, 'patient');
    for (const id of [waiting.id, otherWaiting.id])
      assert.equal(approvals(socket, 'deny', id, '--reason', 'test over').code, 0);
    assert.equal((await first).status, 403);
    assert.equal((await other).status, 403);
  });

  it('only root reaches the approvers socket: another user cannot list or decide', async (t) => {
    const { gw, socket } = await gateway(t);
    const held = send(gw, 'PUT', MERGE, mergeToken(gw));
    const waiting = await waitingOne(socket);
    let failed = false;
    try {
      execFileSync(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          '-e',
          `require('net').connect(${JSON.stringify(socket)}).on('connect', () => process.exit(0)).on('error', () => process.exit(3))`,
        ],
        { stdio: 'pipe', timeout: 30_000 },
      );
    } catch (err) {
      failed = (err as { status?: number }).status === 3;
    }
    assert.ok(failed, 'uid 65534 connected to the approvers socket');
    assert.equal(approvals(socket, 'deny', waiting.id, '--reason', 'done').code, 0);
    assert.equal((await held).status, 403);
  });

  for (const backend of BACKENDS)
    it(`a token read from a ${backend} mount whose profile asks for approval waits, then goes`, async (t) => {
      const { gw, socket } = await gateway(t);
      const mount = await startMountFixture(
        t,
        `agent: mounted
files:
  github/token:
    service: github
    hosts: [localhost]
    methods: [GET, PUT]
    paths: ["/repos/acme/widgets/**"]
    approval:
      methods: [PUT]
      paths: ["/repos/acme/widgets/pulls/*/merge"]
`,
        { keysDir: gw.keysDir, backend },
      );
      const token = readFileSync(join(mount.mountpoint, 'github', 'token'), 'utf8');
      assert.equal((await send(gw, 'GET', '/github/repos/acme/widgets', token)).status, 200);
      const held = send(gw, 'PUT', MERGE, token, '{}');
      const waiting = await waitingOne(socket);
      assert.equal(waiting.agent, 'mounted');
      assert.equal(approvals(socket, 'approve', waiting.id).code, 0);
      assert.equal((await held).status, 200);
    });

  it(
    'from inside mintfs run: the agent waits for the approver, then goes; the approvers page is out of its reach',
    { timeout: 120_000 },
    async (t) => {
      const gw = await startGatewayFixture(t);
      const config = runGatewayConfig(gw);
      const socket = join(gw.dir, 'run-approvals.sock');
      const pagePort = await freePort();
      appendFileSync(
        config,
        `approval:\n  socket: ${socket}\n  listen: 127.0.0.1:${pagePort}\n  timeout: 60s\n`,
      );
      const profile = join(gw.dir, 'approving.yaml');
      writeFileSync(
        profile,
        `agent: sandboxed
files:
  github/token:
    service: github
    hosts: [localhost]
    methods: [GET, PUT]
    paths: ["/repos/acme/widgets/**"]
    approval: { methods: [PUT] }
`,
      );
      const script = [
        // The host's approvers page: the sandbox's loopback is its own.
        `curl --noproxy '*' -s -o /dev/null -w 'page:%{http_code}\\n' --max-time 5 http://127.0.0.1:${pagePort}/`,
        `curl --noproxy '*' -s -o /dev/null -w 'merge:%{http_code}\\n' -X PUT -H "Authorization: Bearer $(cat /secrets/github/token)" http://127.0.0.1:8787${MERGE}`,
      ].join('; ');
      const run = runAsync(process.execPath, [
        CLI,
        'run',
        '--profile',
        profile,
        '--gateway',
        config,
        '--keys',
        gw.keysDir,
        '--',
        'sh',
        '-c',
        script,
      ]);
      const waiting = await waitingOne(socket);
      assert.equal(waiting.agent, 'sandboxed');
      assert.equal(approvals(socket, 'approve', waiting.id).code, 0);
      const done = await run;
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stdout, /page:000/);
      assert.match(done.stdout, /merge:200/);
      assert.equal(upstreamMerges(gw).length, 1);
    },
  );
});
