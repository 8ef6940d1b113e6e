/**
 * Resource exhaustion from the attacker's side, with no token needed: a
 * client that holds connections or tunnels open (silent, trickling, idle),
 * one client address or unix peer that opens thousands, and many addresses
 * that together reach the gateway's open-file limit. Every limit the listener
 * has must hold inside an intercepted tunnel, no one client may hold more
 * than limits.clientConnections, and under a flood the gateway keeps reading
 * its state files, logs the limit once, and serves again when it ends.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { describe, it } from 'node:test';
import { inspectToken } from '../../src/token/inspect.js';
import { startGatewayFixture, type GatewayFixture } from '../helpers/gateway-fixture.js';
import { runCli } from '../helpers/cli.js';
import { runAsync } from '../helpers/spawn.js';
import { pollUntil } from '../helpers/poll.js';

const HOST = 'api.github.com';

/** Resolves when the socket closes, or with 'open' after `ms` (the test fails on that). */
function closedWithin(socket: Socket, ms: number): Promise<'closed' | 'open'> {
  if (socket.destroyed) return Promise.resolve('closed');
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
  });
}

/** A TCP connection from `localAddress` (any 127/8 address is this host's). */
function connectFrom(gw: GatewayFixture, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ port: gw.port, host: '127.0.0.1', localAddress }, () =>
      resolve(socket),
    );
    socket.on('error', reject);
  });
}

/** A connection to the gateway's unix socket. */
function connectUnix(gw: GatewayFixture): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(gw.socketPath, () => resolve(socket));
    socket.on('error', reject);
  });
}

/** CONNECT, then TLS for HOST: an open tunnel ready for requests. */
async function tunnel(gw: GatewayFixture, localAddress = '127.0.0.1'): Promise<TLSSocket> {
  return tunnelOver(gw, await connectFrom(gw, localAddress));
}

async function tunnelOver(gw: GatewayFixture, socket: Socket): Promise<TLSSocket> {
  socket.write(`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`);
  await new Promise<void>((resolve, reject) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (head.startsWith('HTTP/1.1 200')) resolve();
      else reject(new Error(`CONNECT answered ${head.slice(0, 200)}`));
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before a CONNECT answer: ${head}`)));
  });
  const ca = readFileSync(gw.interceptCa as string, 'utf8');
  return new Promise((resolve, reject) => {
    const tls = connectTls({ socket, ca, servername: HOST });
    tls.once('secureConnect', () => resolve(tls));
    tls.once('error', reject);
  });
}

/** Everything the socket receives until it closes. */
function received(socket: Socket): () => string {
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  return () => text;
}

/** Sends `text` a byte at a time every `everyMs` until the socket closes. */
function trickle(socket: Socket, text: string, everyMs: number): void {
  let at = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || at >= text.length) return clearInterval(timer);
    socket.write(text[at++] as string);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

const LIMITS = [
  'headersTimeout: 1s',
  'requestTimeout: 2s',
  'idleTimeout: 1s',
  'bodyIdleTimeout: 1s',
].join('\n');

describe('gateway exhaustion: the listener limits hold inside a tunnel', () => {
  it('a tunnel that sends nothing, trickles its head, idles, or trickles its body is cut', async (t) => {
    const gw = await startGatewayFixture(t, { intercept: { hosts: [HOST] }, limits: LIMITS });
    const token = gw.token({ hosts: [HOST] });
    const silent = await tunnel(gw);
    const silentText = received(silent);
    const trickledHead = await tunnel(gw);
    const headText = received(trickledHead);
    // Slower than any limit, faster than the idle timeout: only headersTimeout can cut it.
    trickle(trickledHead, `GET /repos/acme/widgets HTTP/1.1\r\nHost: ${HOST}\r\n`, 300);
    const trickledBody = await tunnel(gw);
    const bodyText = received(trickledBody);
    trickledBody.write(
      `POST /repos/acme/widgets/issues HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${token}\r\nContent-Length: 200\r\n\r\n`,
    );
    // A byte every 300 ms never trips bodyIdleTimeout (1 s): requestTimeout must.
    trickle(trickledBody, 'x'.repeat(200), 300);
    const idle = await tunnel(gw);
    const idleText = received(idle);
    idle.write(
      `GET /repos/acme/widgets HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    await pollUntil('the idle tunnel to be answered', () => idleText().includes('\r\n\r\n'));
    assert.match(idleText(), /^HTTP\/1\.1 200/);

    // Each would stay open for good if the tunnel escaped the listener's limits.
    const outcomes = await Promise.all(
      [silent, trickledHead, trickledBody, idle].map((s) => closedWithin(s, 10_000)),
    );
    assert.deepEqual(outcomes, ['closed', 'closed', 'closed', 'closed']);
    assert.match(silentText(), /^HTTP\/1\.1 408|^$/);
    assert.match(headText(), /^HTTP\/1\.1 408/);
    assert.match(bodyText(), /408|^$/);
    assert.equal(
      gw.upstream.requests.filter((r) => r.method === 'POST').length,
      0,
      'the trickled body was forwarded whole',
    );
  });
});

describe('gateway exhaustion: one client cannot take every connection', () => {
  it('one address holds at most limits.clientConnections connections or tunnels; others are served', async (t) => {
    const gw = await startGatewayFixture(t, {
      intercept: { hosts: [HOST] },
      limits: 'clientConnections: 20',
    });
    const opened: Socket[] = [];
    t.after(() => opened.forEach((s) => s.destroy()));
    // Plain connections and tunnels from one address, three times the limit.
    const texts: Array<() => string> = [];
    for (let i = 0; i < 40; i += 1) {
      const socket = await connectFrom(gw, '127.0.0.5');
      opened.push(socket);
      texts.push(received(socket));
    }
    const refusedTunnels = await Promise.allSettled(
      Array.from({ length: 20 }, () => tunnel(gw, '127.0.0.5')),
    );
    await pollUntil(
      'the connections over the limit to be closed',
      () => opened.filter((s) => !s.destroyed).length === 20,
      10_000,
      () => `${opened.filter((s) => !s.destroyed).length} open`,
    );
    // The first 20 are held (no answer yet); the 20 over the limit were closed,
    // told why unless too many were being refused at once (those are cut).
    assert.ok(texts.slice(0, 20).every((text) => text() === ''));
    const refused = texts.slice(20).filter((text) => text().includes('ERR_TOO_MANY_CONNECTIONS'));
    assert.ok(refused.length >= 1, 'no refusal said why');
    assert.match(refused[0]?.() ?? '', /^HTTP\/1\.1 429/);
    assert.ok(texts.slice(20).every((text) => text() === '' || /^HTTP\/1\.1 429/.test(text())));
    assert.ok(
      refusedTunnels.every((r) => r.status === 'rejected'),
      'a tunnel over the limit',
    );

    // All of 127/8 is one client: another loopback address is no way around the limit.
    // While the refusals above still linger (LINGER_MS) the gateway cuts a new
    // one without an answer, which is no way around either; once they are gone
    // it says why. Every attempt must be closed, none held or served.
    await pollUntil('a sibling address to be refused, saying why', async () => {
      const sibling = await connectFrom(gw, '127.0.0.6');
      opened.push(sibling);
      const siblingText = received(sibling);
      assert.equal(await closedWithin(sibling, 10_000), 'closed', 'the sibling address was held');
      assert.match(siblingText(), /^$|^HTTP\/1\.1 429/);
      return siblingText().includes('ERR_TOO_MANY_CONNECTIONS');
    });
    // A refused connection is read (so its 429 arrives) but nothing it sends is acted on.
    const sneaky = await connectFrom(gw, '127.0.0.7');
    const sneakyText = received(sneaky);
    sneaky.write(
      `GET /github/repos/acme/widgets/sneaky HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${gw.token()}\r\n\r\n`,
    );
    assert.equal(await closedWithin(sneaky, 10_000), 'closed');
    assert.doesNotMatch(sneakyText(), /^HTTP\/1\.1 200/);
    assert.ok(
      gw.upstream.requests.every((r) => !r.url.includes('sneaky')),
      'a refused connection reached the upstream',
    );
    // Another client (a unix-socket peer) is served meanwhile, through a tunnel too.
    const other = await tunnelOver(gw, await connectUnix(gw));
    const answer = received(other);
    other.write(
      `GET /repos/acme/widgets HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${gw.token({ hosts: [HOST] })}\r\n\r\n`,
    );
    await pollUntil('the other client to be answered', () => answer().includes('\r\n\r\n'));
    assert.match(answer(), /^HTTP\/1\.1 200/);
    other.destroy();
    // Logged once for the whole burst, not once per connection.
    await pollUntil('the limit in the log', () => gw.stderr().includes('"connections-limited"'));
    const lines = gw
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"connections-limited"'));
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0] as string, /"client":"ip:127\.0\.0\.0\/8"/);
  });

  it('a unix-socket peer is counted by its uid', async (t) => {
    const gw = await startGatewayFixture(t, { limits: 'clientConnections: 10' });
    const sockets: Socket[] = [];
    t.after(() => sockets.forEach((s) => s.destroy()));
    const texts: Array<() => string> = [];
    for (let i = 0; i < 15; i += 1) {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s = connectTcp(gw.socketPath, () => resolve(s));
        s.on('error', reject);
      });
      sockets.push(socket);
      texts.push(received(socket));
    }
    await pollUntil('the unix connections over the limit to be closed', () =>
      sockets.filter((s) => !s.destroyed).length === 10 ? true : undefined,
    );
    assert.ok(texts.slice(10).some((text) => text().includes('ERR_TOO_MANY_CONNECTIONS')));
    assert.ok(texts.slice(0, 10).every((text) => text() === ''));
    // Log lines are written in batches: poll for it.
    await pollUntil('the limit in the log', () =>
      /"event":"connections-limited","client":"uid:0\/net:\d+"/.test(gw.stderr()),
    );
  });
});

describe('gateway exhaustion: many clients against the open-file limit', () => {
  it('a flood from several clients is dropped and logged once; revocations still reload; serving resumes', async (t) => {
    const gw = await startGatewayFixture(t, {
      openFiles: 400,
      limits: 'clientConnections: 200\nupstreamConnections: 8',
    });
    const listening = gw
      .stderr()
      .split('\n')
      .find((l) => l.includes('"gateway-listening"'));
    const budget = (JSON.parse(listening as string) as { maxConnections: number }).maxConnections;
    // 400 descriptors less 128 kept for state files and 8 for the one upstream pool.
    assert.equal(budget, 400 - 128 - 8);
    const victim = gw.token();
    const bystander = gw.token();
    const flood: Socket[] = [];
    t.after(() => flood.forEach((s) => s.destroy()));
    // Two clients (loopback, and a unix-socket peer), each within its own
    // limit, together well past the budget.
    for (const open of [() => connectFrom(gw, '127.0.0.1'), () => connectUnix(gw)])
      for (let i = 0; i < 200; i += 1) {
        const socket = await open().catch(() => undefined);
        if (socket === undefined) continue;
        socket.on('error', () => undefined);
        flood.push(socket);
      }
    await pollUntil(
      'the connections past the budget to be dropped',
      () => flood.filter((s) => !s.destroyed).length <= budget,
      10_000,
      () => `${flood.filter((s) => !s.destroyed).length} open of a budget of ${budget}`,
    );
    await pollUntil('the drop in the log', () => gw.stderr().includes('"connections-dropped"'));

    // With every connection slot taken, the gateway still reads its revocations.
    const revoked = runCli(['revoke', `--token=${inspectToken(victim).id}`, '--keys', gw.keysDir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await pollUntil('the revocation to be read under the flood', () =>
      /"event":"revocations-reloaded"/.test(gw.stderr()),
    );
    assert.doesNotMatch(gw.stderr(), /reload-failed|EMFILE|ERR_REVOCATIONS_UNREADABLE/);
    assert.equal(gw.child.exitCode, null, 'the gateway exited under the flood');

    flood.forEach((s) => s.destroy());
    const status = async (token: string) =>
      (
        await fetch(`${gw.base}/github/repos/acme/widgets`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).status;
    await pollUntil('serving to resume', async () => (await status(bystander)) === 200);
    assert.equal(await status(victim), 401);
    const drops = gw
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"connections-dropped"'));
    assert.equal(drops.length, 1, 'one line for the flood, not one per connection');
  });

  it('a maxConnections that does not fit under the open-file limit stops the start, naming it', async (t) => {
    await assert.rejects(
      startGatewayFixture(t, { openFiles: 400, limits: 'maxConnections: 1000' }),
      /limits\.maxConnections: 1000 does not fit: the open-file limit \(ulimit -n\) is 400/,
    );
  });
});

describe('gateway exhaustion: a response the client never reads (review of 98c7376)', () => {
  it('an agent that stops reading large responses does not hold the upstream pool from the others', async (t) => {
    const gw = await startGatewayFixture(t, {
      limits: 'upstreamConnections: 2\nagentConcurrency: 4\nupstreamTimeout: 2s',
    });
    const hogToken = gw.token({ agent: 'hog' });
    const hogs: Socket[] = [];
    t.after(() => hogs.forEach((s) => s.destroy()));
    // Two requests for bodies far larger than the socket buffers, never read:
    // the gateway pauses the upstream (backpressure), and undici's body
    // timeout does not run while paused.
    for (let i = 0; i < 2; i += 1) {
      const socket = await connectFrom(gw, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.pause();
      socket.write(
        `GET /github/repos/acme/widgets/big?bytes=${256 * 1024 * 1024} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${hogToken}\r\n\r\n`,
      );
      hogs.push(socket);
    }
    await pollUntil(
      'both unread responses to start upstream',
      () => gw.upstream.started.filter((u) => u.includes('/big')).length === 2,
    );
    // Another agent, same upstream: served once the unread responses are cut.
    const started = Date.now();
    const reply = await fetch(`${gw.base}/github/repos/acme/widgets`, {
      headers: { authorization: `Bearer ${gw.token({ agent: 'bystander' })}` },
      signal: AbortSignal.timeout(20_000),
    }).then(
      (r) => r.status,
      (err: Error) => `no answer in ${Date.now() - started} ms (${err.name})`,
    );
    assert.equal(reply, 200);
    await pollUntil(
      'both unread responses to be cut',
      () =>
        gw
          .requestLogs()
          .filter((l) => l.path === '/repos/acme/widgets/big' && l.completed === false).length ===
        2,
    );
    // Cut, not resumed: reading now drains what was buffered and reaches the
    // end well short of the body.
    const sizes = hogs.map((socket) => {
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      socket.resume();
      return () => bytes;
    });
    const cut = await Promise.all(hogs.map((s) => closedWithin(s, 20_000)));
    assert.deepEqual(cut, ['closed', 'closed'], 'an unread response held its connection');
    for (const size of sizes) assert.ok(size() < 256 * 1024 * 1024, `${size()} bytes: not cut`);
  });
});

describe('gateway exhaustion: clients that share a uid (review of 98c7376)', () => {
  it('two runs bridged as root from their own network namespaces are two clients, not one uid', async (t) => {
    // runc and Docker runs reach a shared gateway (--gateway-socket) through a
    // socat bridge that runs as root in each run's network namespace: counted
    // by uid alone, one run holding its connections locks every other run out.
    const gw = await startGatewayFixture(t, {
      limits: 'clientConnections: 5\nheadersTimeout: 60s',
    });
    const held: Socket[] = [];
    t.after(() => held.forEach((s) => s.destroy()));
    const unix = () =>
      new Promise<Socket>((resolve, reject) => {
        const s = connectTcp(gw.socketPath, () => resolve(s));
        s.on('error', reject);
      });
    for (let i = 0; i < 5; i += 1) held.push(await unix());
    // A sixth from this run is refused: the five are counted.
    const probe = await unix();
    held.push(probe);
    const probeText = received(probe);
    await pollUntil('the sixth connection to be refused', () =>
      probeText().includes('ERR_TOO_MANY_CONNECTIONS'),
    );
    // Another run: the same uid (0), its own network namespace.
    const other = await runAsync('timeout', [
      '30',
      'unshare',
      '--net',
      '--',
      'curl',
      '-sS',
      '-m',
      '20',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--unix-socket',
      gw.socketPath,
      '-H',
      `Authorization: Bearer ${gw.token()}`,
      'http://localhost/github/repos/acme/widgets',
    ]);
    assert.equal(
      other.stdout,
      '200',
      `another run was refused with the first's count: ${other.stdout} ${other.stderr.trim()}`,
    );
  });
});
