/**
 * WebSockets through the gateway, with real clients (Node's WebSocket,
 * Python's websockets) and a real `ws` upstream: the handshake judged like a
 * request, the credential injected and never echoed back, frames relayed only
 * after a real acceptance, and live sockets closed with 1008 when their token
 * expires or is revoked, or their lifetime ends.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { inspectToken } from '../../src/token/inspect.js';
import { runCli } from '../helpers/cli.js';
import { CREDENTIAL, startGatewayFixture } from '../helpers/gateway-fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { teardownOf } from '../helpers/temp.js';
import {
  handshakeText,
  openNodeSocket,
  rawExchange,
  runPythonClient,
} from '../helpers/websocket-clients.js';

const ECHO = '/repos/acme/widgets/ws/echo';
const API = 'api.github.com';
const BIG = 8 * 1024 * 1024;

/** Within this long of a revocation or expiry, a live socket is closed (the revocation tests' bound). */
const CLOSE_DEADLINE_MS = 3_000;

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]);
}

describe('gateway: WebSocket', () => {
  it('Node WebSocket through the reverse route: text and binary echo, the credential upstream and never the token', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token({ methods: ['GET'] });
    const ws = await openNodeSocket(
      teardownOf(t),
      `ws://127.0.0.1:${gw.port}/github${ECHO}`,
      token,
    );
    ws.send('hello');
    assert.equal(await ws.message(0), 'hello');
    ws.send(Buffer.from([0, 1, 2, 255]));
    assert.deepEqual(await ws.message(1), Buffer.from([0, 1, 2, 255]));
    const seen = gw.upstream.websockets[0];
    assert.ok(seen);
    assert.equal(seen.headers.authorization, `token ${CREDENTIAL}`);
    // No extension offered upstream: every frame stays readable for redaction.
    assert.equal(seen.headers['sec-websocket-extensions'], undefined);
    assert.ok(!JSON.stringify(seen.headers).includes(token));
    ws.close();
    assert.equal((await ws.closed).code, 1000);
    await pollUntil('the upstream to see the close', () => seen.closed);
    await pollUntil('the websocket audit line', () => gw.stderr().includes('"event":"websocket"'));
    const line =
      gw
        .stderr()
        .split('\n')
        .find((l) => l.includes('"event":"websocket"')) ?? '';
    assert.match(line, /"closedBy":"client"/);
    assert.match(line, /"messagesIn":2/);
    assert.ok(!gw.stderr().includes(CREDENTIAL) && !gw.stderr().includes(token));
  });

  it('an echo of the credential in a text frame is masked', async (t) => {
    const gw = await startGatewayFixture(t);
    const ws = await openNodeSocket(
      teardownOf(t),
      `ws://127.0.0.1:${gw.port}/github/repos/acme/widgets/ws/echo-auth`,
      gw.token(),
    );
    const first = String(await ws.message(0));
    assert.equal(first, `you sent token ${'*'.repeat(CREDENTIAL.length)}`);
    // Sent by the agent and echoed back: the credential again, masked again.
    ws.send(`look: ${CREDENTIAL}!`);
    assert.equal(await ws.message(1), `look: ${'*'.repeat(CREDENTIAL.length)}!`);
  });

  it('Python websockets through the reverse route: an 8 MiB message both ways, then closed with 1008 when its token expires', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token({ ttlMs: 6_000 });
    const client = runPythonClient(teardownOf(t), {
      url: `ws://127.0.0.1:${gw.port}/github${ECHO}`,
      token,
      big: BIG,
      waitClose: true,
    });
    assert.deepEqual(await client.line(0), { echo: 'hello from python', bigEchoed: true });
    const seen = gw.upstream.websockets[0];
    assert.equal(seen?.messages[1]?.data.length, BIG);
    const closed = await client.line(1, 6_000 + CLOSE_DEADLINE_MS + 5_000);
    assert.equal(closed.code, 1008);
    assert.match(String(closed.reason), /^ERR_TOKEN_EXPIRED: /);
    await pollUntil('the upstream to be closed too', () => seen?.closed);
    assert.equal(await client.exited, 0, client.stderr());
  });

  it('Node WebSocket is closed with 1008 within seconds of mintfs revoke --token; another token’s socket stays open', async (t) => {
    const gw = await startGatewayFixture(t);
    const victim = gw.token();
    const bystander = gw.token();
    const url = `ws://127.0.0.1:${gw.port}/github${ECHO}`;
    const ws = await openNodeSocket(teardownOf(t), url, victim);
    const other = await openNodeSocket(teardownOf(t), url, bystander);
    ws.send('before');
    assert.equal(await ws.message(0), 'before');
    const revoked = runCli(['revoke', `--token=${inspectToken(victim).id}`, '--keys', gw.keysDir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const closed = await within(ws.closed, CLOSE_DEADLINE_MS, 'the close after revocation');
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /^ERR_TOKEN_REVOKED: /);
    other.send('still here');
    assert.equal(await other.message(0), 'still here');
  });

  it('mintfs revoke --agent closes that agent’s live sockets', async (t) => {
    const gw = await startGatewayFixture(t);
    const ws = await openNodeSocket(
      teardownOf(t),
      `ws://127.0.0.1:${gw.port}/github${ECHO}`,
      gw.token({ agent: 'doomed' }),
    );
    const revoked = runCli(['revoke', '--agent', 'doomed', '--keys', gw.keysDir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const closed = await within(ws.closed, CLOSE_DEADLINE_MS, 'the close after revocation');
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /ERR_TOKEN_REVOKED/);
  });

  it('retiring a key closes the sockets its tokens opened; a socket of the new key’s token stays open', async (t) => {
    const gw = await startGatewayFixture(t);
    const url = `ws://127.0.0.1:${gw.port}/github${ECHO}`;
    const oldKey = gw.keyring().current.id;
    const old = await openNodeSocket(teardownOf(t), url, gw.token());
    assert.equal(runCli(['keys', 'rotate', '--keys', gw.keysDir]).code, 0);
    const newer = gw.token();
    assert.notEqual(inspectToken(newer).keyId, oldKey);
    // Polled: the gateway picks the rotated-in key up from its watched keyring.
    const fresh = await pollUntil('the new key to verify', async () => {
      try {
        return await openNodeSocket(teardownOf(t), url, newer);
      } catch {
        return undefined;
      }
    });
    old.send('before');
    assert.equal(await old.message(0), 'before');

    const retired = runCli(['keys', 'retire', oldKey, '--keys', gw.keysDir]);
    assert.equal(retired.code, 0, retired.stderr);
    const closed = await within(old.closed, CLOSE_DEADLINE_MS, 'the close after retirement');
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /^ERR_KEY_RETIRED: /);
    fresh.send('still here');
    assert.equal(await fresh.message(0), 'still here');
  });

  it("an upstream's maxLifetime closes a socket with 1008, whatever its token says", async (t) => {
    const gw = await startGatewayFixture(t, {
      githubUpstream: '    websocket: { maxLifetime: 1s }',
    });
    const ws = await openNodeSocket(
      teardownOf(t),
      `ws://127.0.0.1:${gw.port}/github${ECHO}`,
      gw.token(),
    );
    const closed = await within(ws.closed, 1_000 + CLOSE_DEADLINE_MS, 'the close at maxLifetime');
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /maximum lifetime/);
  });

  it('open sockets count in the agent’s concurrency: a third is refused 429 until one closes', async (t) => {
    const gw = await startGatewayFixture(t, { limits: 'agentConcurrency: 2' });
    const url = `ws://127.0.0.1:${gw.port}/github${ECHO}`;
    const first = await openNodeSocket(teardownOf(t), url, gw.token());
    await openNodeSocket(teardownOf(t), url, gw.token());
    const third = await rawExchange(
      teardownOf(t),
      gw.port,
      handshakeText(`/github${ECHO}`, gw.token()),
    );
    assert.equal(third.status, 429);
    assert.match(third.rest.toString(), /ERR_TOO_MANY_REQUESTS/);
    first.close();
    await first.closed;
    await pollUntil('a socket to be accepted again', async () => {
      const answer = await rawExchange(
        teardownOf(t),
        gw.port,
        handshakeText(`/github${ECHO}`, gw.token()),
        () => true,
      );
      answer.socket.destroy();
      return answer.status === 101;
    });
  });

  it('refused handshakes are HTTP answers that never reach the upstream', async (t) => {
    const gw = await startGatewayFixture(t);
    const path = `/github${ECHO}`;
    const cases: Array<[string, string, number, RegExp]> = [
      ['no token', handshakeText(path, undefined), 401, /ERR_TOKEN_MISSING/],
      ['a forged token', handshakeText(path, `${gw.token()}x`), 401, /ERR_TOKEN/],
      [
        'a path outside the caveat',
        handshakeText('/github/repos/acme/other/ws/echo', gw.token()),
        403,
        /ERR_CAVEAT_UNSATISFIED/,
      ],
      [
        'a POST-only token',
        handshakeText(path, gw.token({ methods: ['POST'] })),
        403,
        /ERR_CAVEAT_UNSATISFIED/,
      ],
      [
        'a handshake with a body',
        handshakeText(path, gw.token(), ['Content-Length: 5']).replace(
          /\r\n\r\n$/,
          '\r\n\r\nhello',
        ),
        400,
        /no body/,
      ],
      [
        'another protocol',
        handshakeText(path, gw.token()).replace('Upgrade: websocket', 'Upgrade: h2c'),
        400,
        /other than websocket/,
      ],
      [
        'a bad key',
        handshakeText(path, gw.token()).replace('dGhlIHNhbXBsZSBub25jZQ==', 'short'),
        400,
        /Sec-WebSocket-Key/,
      ],
      [
        'an old version',
        handshakeText(path, gw.token()).replace('Version: 13', 'Version: 8'),
        400,
        /Sec-WebSocket-Version/,
      ],
      [
        'Upgrade without Connection: Upgrade',
        handshakeText(path, gw.token()).replace('Connection: Upgrade\r\n', ''),
        400,
        /protocol upgrades/,
      ],
    ];
    for (const [what, request, status, error] of cases) {
      const answer = await rawExchange(teardownOf(t), gw.port, request);
      assert.equal(answer.status, status, `${what}: ${answer.head}`);
      assert.match(answer.rest.toString(), error, what);
    }
    assert.equal(gw.upstream.websockets.length, 0);
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('websocket.enabled: false refuses every handshake', async (t) => {
    const gw = await startGatewayFixture(t, {
      githubUpstream: '    websocket: { enabled: false }',
    });
    const answer = await rawExchange(
      teardownOf(t),
      gw.port,
      handshakeText(`/github${ECHO}`, gw.token()),
    );
    assert.equal(answer.status, 400);
    assert.match(answer.rest.toString(), /websocket\.enabled/);
    assert.equal(gw.upstream.websockets.length, 0);
  });

  it("an upstream's refusal is relayed with the credential masked", async (t) => {
    const gw = await startGatewayFixture(t);
    const answer = await rawExchange(
      teardownOf(t),
      gw.port,
      handshakeText('/github/repos/acme/widgets/ws/refuse', gw.token()),
    );
    assert.equal(answer.status, 401);
    assert.ok(!answer.head.includes(CREDENTIAL), answer.head);
    assert.ok(!answer.rest.includes(CREDENTIAL));
    assert.match(answer.rest.toString(), /\*{10}/);
  });

  it('a 101 without the right Sec-WebSocket-Accept is a 502, and bytes the agent sent after its handshake never reach the upstream', async (t) => {
    const gw = await startGatewayFixture(t);
    // A second request pipelined behind the handshake: what a fake 101 would let through unjudged.
    const smuggled = 'GET /admin/delete-everything HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const answer = await rawExchange(
      teardownOf(t),
      gw.port,
      handshakeText('/github/repos/acme/widgets/ws/bad-accept', gw.token()) + smuggled,
    );
    assert.equal(answer.status, 502);
    assert.match(answer.rest.toString(), /Sec-WebSocket-Accept/);
    const seen = gw.upstream.websockets[0];
    await pollUntil('the upstream connection to be closed', () => seen?.closed);
    assert.deepEqual(seen?.smuggled, []);
    assert.ok(!gw.upstream.started.some((url) => url.includes('admin')));
  });

  it('an unmasked frame from the agent closes the socket with 1002 and never reaches the upstream', async (t) => {
    const gw = await startGatewayFixture(t);
    const opened = await rawExchange(
      teardownOf(t),
      gw.port,
      handshakeText(`/github${ECHO}`, gw.token()),
      () => true,
    );
    assert.equal(opened.status, 101);
    assert.match(opened.head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
    let after = Buffer.alloc(0);
    opened.socket.on('data', (chunk: Buffer) => (after = Buffer.concat([after, chunk])));
    // A text frame "hi" without a mask: clients must mask (RFC 6455 5.1).
    opened.socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
    await pollUntil('a close frame', () => after.length >= 4);
    assert.equal(after[0], 0x88);
    assert.equal(after.readUInt16BE(2), 1002);
    assert.equal(gw.upstream.websockets[0]?.messages.length, 0);
  });

  it('through the forward proxy (an absolute ws URL as http://): judged, the credential injected, a masked message echoed', async (t) => {
    const gw = await startGatewayFixture(t);
    const handshake = (path: string) =>
      handshakeText(`http://localhost${path}`, gw.token()).replace(
        'Host: 127.0.0.1',
        'Host: localhost',
      );
    const refused = await rawExchange(
      teardownOf(t),
      gw.port,
      handshake('/repos/acme/other/ws/echo'),
    );
    assert.equal(refused.status, 403);
    assert.equal(gw.upstream.websockets.length, 0);
    const opened = await rawExchange(teardownOf(t), gw.port, handshake(ECHO), () => true);
    assert.equal(opened.status, 101, opened.head);
    assert.equal(gw.upstream.websockets[0]?.headers.authorization, `token ${CREDENTIAL}`);
    let after = Buffer.alloc(0);
    opened.socket.on('data', (chunk: Buffer) => (after = Buffer.concat([after, chunk])));
    // A masked text frame "hi" (key 1 2 3 4), as a client sends it.
    const key = Buffer.from([1, 2, 3, 4]);
    const payload = Buffer.from('hi').map((byte, i) => byte ^ (key[i % 4] as number));
    opened.socket.write(Buffer.concat([Buffer.from([0x81, 0x82]), key, payload]));
    await pollUntil('the echo', () => after.length >= 4);
    assert.deepEqual(after.subarray(0, 4), Buffer.from([0x81, 0x02, 0x68, 0x69]));
  });

  describe('through HTTPS interception', () => {
    it('Node WebSocket (undici ProxyAgent): echo, then closed with 1008 on revocation mid-stream', async (t) => {
      const gw = await startGatewayFixture(t, { intercept: { hosts: [API] } });
      const token = gw.token({ hosts: [API] });
      const ws = await openNodeSocket(teardownOf(t), `wss://${API}${ECHO}`, token, {
        uri: gw.base,
        ca: readFileSync(gw.interceptCa as string, 'utf8'),
      });
      const big = Buffer.alloc(BIG / 4, 7);
      ws.send(big);
      assert.deepEqual(await ws.message(0), big);
      assert.equal(gw.upstream.websockets[0]?.headers.authorization, `token ${CREDENTIAL}`);
      const revoked = runCli(['revoke', `--token=${inspectToken(token).id}`, '--keys', gw.keysDir]);
      assert.equal(revoked.code, 0, revoked.stderr);
      const closed = await within(ws.closed, CLOSE_DEADLINE_MS, 'the close after revocation');
      assert.equal(closed.code, 1008);
      assert.match(closed.reason, /^ERR_TOKEN_REVOKED: /);
    });

    it('Python websockets through a CONNECT tunnel: an 8 MiB message both ways, closed with 1008 on expiry', async (t) => {
      const gw = await startGatewayFixture(t, { intercept: { hosts: [API] } });
      const client = runPythonClient(teardownOf(t), {
        url: `wss://${API}${ECHO}`,
        token: gw.token({ hosts: [API], ttlMs: 6_000 }),
        big: BIG,
        waitClose: true,
        proxy: ['127.0.0.1', gw.port],
        host: API,
        ca: gw.interceptCa,
      });
      assert.deepEqual(await client.line(0), { echo: 'hello from python', bigEchoed: true });
      const closed = await client.line(1, 6_000 + CLOSE_DEADLINE_MS + 5_000);
      assert.equal(closed.code, 1008);
      assert.match(String(closed.reason), /^ERR_TOKEN_EXPIRED: /);
    });
  });
});
