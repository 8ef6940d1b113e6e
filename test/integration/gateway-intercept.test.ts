/**
 * HTTPS interception through CONNECT, with real clients against a real HTTPS
 * upstream: the agent's tools talk to https://api.github.com through
 * HTTPS_PROXY, trust only the deployment's CA, and the upstream (a local
 * test server standing in for GitHub) sees the real credential, never the
 * token. Every refusal is checked to never reach the upstream.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { describe, it } from 'node:test';
import {
  CREDENTIAL,
  startGatewayFixture,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { CLI } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';

const HOST = 'api.github.com';

function intercepting(t: Parameters<typeof startGatewayFixture>[0], githubUpstream?: string) {
  return startGatewayFixture(t, {
    intercept: { hosts: [HOST, 'github.com'] },
    ...(githubUpstream === undefined ? {} : { githubUpstream }),
  });
}

/** curl through the gateway as HTTPS_PROXY, trusting only the interception CA. */
function curl(
  gw: GatewayFixture,
  url: string,
  headers: string[] = [],
  extra: string[] = [],
): Promise<{ code: number | null; status: string; body: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      'curl',
      [
        '-sS',
        '--proxy',
        gw.base,
        '--cacert',
        gw.interceptCa as string,
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        ...headers.flatMap((h) => ['-H', h]),
        ...extra,
        url,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } },
    );
    let out = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => {
      const cut = out.lastIndexOf('\n');
      resolve({ code, status: out.slice(cut + 1), body: out.slice(0, cut), stderr });
    });
  });
}

/** A raw CONNECT, answered how? Returns the socket (for TLS) and the proxy's status line and body. */
function openTunnel(
  gw: GatewayFixture,
  authority: string,
): Promise<{ socket: Socket; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(gw.port, '127.0.0.1', () =>
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`),
    );
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = Number(head.slice(9, 12));
      if (status === 200) {
        socket.off('data', onData);
        resolve({ socket, status, body: '' });
      } else socket.once('end', () => resolve({ socket, status, body: head.slice(end + 4) }));
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

function tlsOver(socket: Socket, servername: string | undefined, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const tls = connectTls({
      socket,
      ca,
      ...(servername === undefined ? {} : { servername }),
      checkServerIdentity: () => undefined,
    });
    tls.once('secureConnect', () => resolve(tls));
    tls.once('error', reject);
  });
}

/** One HTTP/1.1 exchange on an open TLS tunnel; resolves with the status and body. */
function exchange(tls: TLSSocket, request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const chunked = /transfer-encoding: chunked/i.test(text.slice(0, end));
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? 0);
      const complete = chunked ? text.endsWith('\r\n0\r\n\r\n') : text.length - end - 4 >= length;
      if (complete) {
        tls.off('data', onData);
        resolve({ status: Number(text.slice(9, 12)), text });
      }
    };
    tls.on('data', onData);
    tls.write(request);
  });
}

describe('HTTPS interception (CONNECT) through the gateway', () => {
  it('curl reaches the upstream by its real name; the credential is injected, the token never forwarded', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: [HOST] });
    const result = await curl(gw, `https://${HOST}/repos/acme/widgets/pulls?state=open`, [
      `Authorization: Bearer ${token}`,
    ]);
    assert.equal(result.status, '200', result.stderr + result.body);
    assert.equal((JSON.parse(result.body) as { path: string }).path, '/repos/acme/widgets/pulls');
    const seen = gw.upstream.requests.at(-1);
    assert.equal(seen?.headers.authorization, `token ${CREDENTIAL}`);
    assert.equal(seen?.url, '/repos/acme/widgets/pulls?state=open');
    assert.ok(!JSON.stringify(seen?.headers).includes(token));
    // Redaction still applies inside the tunnel.
    const echo = await curl(gw, `https://${HOST}/repos/acme/widgets/echo`, [
      `Authorization: Bearer ${token}`,
    ]);
    assert.equal(echo.status, '200');
    assert.ok(!echo.body.includes(CREDENTIAL), 'the credential came back to the client');
    // Audit lines are written in batches (at least every 250 ms).
    await pollUntil('two intercept audit lines', () =>
      gw.requestLogs().filter((l) => l.mode === 'intercept').length === 2 ? true : undefined,
    );
  });

  it('keeps the tunnel alive across requests; a client asking for HTTP/2 gets it (gateway-http2.test.ts)', async (t) => {
    const gw = await intercepting(t);
    const ca = readFileSync(gw.interceptCa as string, 'utf8');
    const { socket } = await openTunnel(gw, `${HOST}:443`);
    const tls = await tlsOver(socket, HOST, ca);
    for (let i = 0; i < 3; i++) {
      const reply = await exchange(
        tls,
        `GET /repos/acme/widgets/pulls HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${gw.token({ hosts: [HOST] })}\r\n\r\n`,
      );
      assert.equal(reply.status, 200, reply.text);
    }
    tls.destroy();
    assert.equal(gw.upstream.requests.length, 3);
    await pollUntil('one tunnel, three requests in the log', () => {
      const lines = gw.stderr().split('\n');
      return lines.filter((l) => l.includes('"event":"tunnel"')).length === 1 &&
        gw.requestLogs().filter((l) => l.mode === 'intercept').length === 3
        ? true
        : undefined;
    });
    const h2 = await curl(
      gw,
      `https://${HOST}/repos/acme/widgets/pulls`,
      [`Authorization: Bearer ${gw.token({ hosts: [HOST] })}`],
      // Replaces the helper's -w: the last line is then "status version".
      ['--http2', '-w', '\n%{http_code} %{http_version}'],
    );
    assert.equal(h2.status, '200 2', h2.stderr);
  });

  it('the leaf is for the CONNECT host, signed by the CA, short-lived', async (t) => {
    const gw = await intercepting(t);
    const { socket } = await openTunnel(gw, `${HOST}:443`);
    const tls = await tlsOver(socket, HOST, readFileSync(gw.interceptCa as string, 'utf8'));
    const cert = tls.getPeerX509Certificate();
    tls.destroy();
    assert.ok(cert?.checkHost(HOST));
    assert.equal(cert?.checkHost('evil.example'), undefined);
    const lifetime = Date.parse(cert?.validTo ?? '') - Date.parse(cert?.validFrom ?? '');
    assert.ok(lifetime <= 2 * 3600_000, `leaf valid for ${lifetime} ms`);
    assert.equal(tls.alpnProtocol === false || tls.alpnProtocol === 'http/1.1', true);
  });

  it('refuses CONNECT to a host no upstream lists, or to another port, before any tunnel', async (t) => {
    const gw = await intercepting(t);
    for (const authority of ['example.com:443', `${HOST}:8443`, '127.0.0.1:443', 'localhost:443']) {
      const refused = await openTunnel(gw, authority);
      refused.socket.destroy();
      assert.equal(refused.status, 403, authority);
      assert.equal((JSON.parse(refused.body) as { error: string }).error, 'ERR_TUNNEL_REFUSED');
    }
    const viaCurl = await curl(gw, 'https://example.com/', ['Authorization: Bearer x']);
    assert.notEqual(viaCurl.code, 0);
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('refuses a TLS handshake whose SNI is not the CONNECT host, or has none', async (t) => {
    const gw = await intercepting(t);
    const ca = readFileSync(gw.interceptCa as string, 'utf8');
    const token = gw.token({ hosts: [HOST] });
    for (const servername of ['github.com', 'evil.example']) {
      const { socket } = await openTunnel(gw, `${HOST}:443`);
      await assert.rejects(tlsOver(socket, servername, ca), `SNI "${servername}" was accepted`);
    }
    // Without SNI the server learns it only when the handshake completes: the
    // tunnel is closed then, and no request is ever read from it.
    const { socket } = await openTunnel(gw, `${HOST}:443`);
    const served = await tlsOver(socket, '', ca).then(
      (tls) =>
        new Promise<boolean>((resolve) => {
          tls.on('data', () => resolve(true));
          tls.on('close', () => resolve(false));
          tls.on('error', () => resolve(false));
          tls.write(
            `GET /repos/acme/widgets/pulls HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
          );
        }),
      () => false,
    );
    assert.equal(served, false, 'a tunnel without SNI answered a request');
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('refuses a request whose Host is not the tunnel host, an absolute target, and upgrades other than WebSocket', async (t) => {
    const gw = await intercepting(t);
    const ca = readFileSync(gw.interceptCa as string, 'utf8');
    const token = gw.token({ hosts: [HOST, 'github.com'] });
    const { socket } = await openTunnel(gw, `${HOST}:443`);
    const tls = await tlsOver(socket, HOST, ca);
    const cases: Array<[string, number, string]> = [
      ['Host: github.com', 421, 'ERR_HOST_MISMATCH'],
      ['Host: localhost', 421, 'ERR_HOST_MISMATCH'],
    ];
    for (const [headers, status, code] of cases) {
      const reply = await exchange(
        tls,
        `GET /repos/acme/widgets/pulls HTTP/1.1\r\n${headers}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
      );
      assert.equal(reply.status, status, `${headers}: ${reply.text}`);
      assert.ok(reply.text.includes(code), reply.text);
    }
    const absolute = await exchange(
      tls,
      `GET https://github.com/repos/acme/widgets/pulls HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    assert.equal(absolute.status, 400);
    // Last: a refused upgrade ends the connection (WebSockets: gateway-websocket.test.ts).
    const h2c = await exchange(
      tls,
      `GET /repos/acme/widgets/pulls HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    assert.equal(h2c.status, 400, h2c.text);
    assert.match(h2c.text, /ERR_REQUEST_INVALID/);
    tls.destroy();
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('refuses a CONNECT inside a tunnel, saying so (not that interception is off)', async (t) => {
    const gw = await intercepting(t);
    const ca = readFileSync(gw.interceptCa as string, 'utf8');
    const { socket } = await openTunnel(gw, `${HOST}:443`);
    const tls = await tlsOver(socket, HOST, ca);
    const reply = await exchange(
      tls,
      `CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\n\r\n`,
    );
    tls.destroy();
    assert.equal(reply.status, 403, reply.text);
    assert.match(reply.text, /ERR_TUNNEL_REFUSED/);
    assert.match(reply.text, /inside a tunnel/);
    assert.doesNotMatch(reply.text, /interception is off/);
  });

  it('refuses out-of-scope paths and missing, foreign-host, expired or revoked tokens', async (t) => {
    const gw = await intercepting(t);
    const url = `https://${HOST}/repos/acme/widgets/pulls`;
    const good = gw.token({ hosts: [HOST] });
    const expired = gw.token({ hosts: [HOST], ttlMs: 1_000 }, new Date(Date.now() - 60_000));
    const cases: Array<[string, string[], string, string]> = [
      [
        'out of scope',
        [`Authorization: Bearer ${good}`],
        `https://${HOST}/repos/acme/secret/keys`,
        '403',
      ],
      ['no token', [], url, '401'],
      ['other host', [`Authorization: Bearer ${gw.token({ hosts: ['localhost'] })}`], url, '403'],
      ['expired', [`Authorization: Bearer ${expired}`], url, '401'],
    ];
    for (const [name, headers, target, status] of cases) {
      const result = await curl(gw, target, headers);
      assert.equal(result.status, status, `${name}: ${result.body}`);
    }
    assert.equal(gw.upstream.requests.length, 0);

    const revoked = gw.token({ hosts: [HOST] });
    const { id } = JSON.parse(
      spawnSync(process.execPath, [CLI, 'inspect', revoked], { encoding: 'utf8', timeout: 30_000 })
        .stdout,
    ) as { id: string };
    // `--token=<id>`: an id is random base64url and starts with "-" one time in 64,
    // which `--token <id>` refuses (cli.test.ts).
    const revoke = spawnSync(
      process.execPath,
      [CLI, 'revoke', `--token=${id}`, '--keys', gw.keysDir],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(revoke.status, 0, revoke.stderr);
    // Revocations are polled (within 2 s): wait until it is in force, then it holds.
    await pollUntil('the revocation to apply', async () => {
      const result = await curl(gw, url, [`Authorization: Bearer ${revoked}`]);
      return result.status === '401' ? true : undefined;
    });
    const before = gw.upstream.requests.length;
    const again = await curl(gw, url, [`Authorization: Bearer ${revoked}`]);
    assert.equal(again.status, '401');
    assert.ok(again.body.includes('ERR_TOKEN_REVOKED'), again.body);
    assert.equal(gw.upstream.requests.length, before);
  });
});
