/**
 * HTTP/2 inside intercepted tunnels, with real clients (curl --http2,
 * nghttp) and a raw one (Python's h2) for the attacks: every stream is a
 * request judged on its own, refusals are per stream while the connection
 * serves the others, and the known HTTP/2 attacks end the connection (GOAWAY
 * ENHANCE_YOUR_CALM) or the stream, never the gateway.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  CREDENTIAL,
  startGatewayFixture,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { rawH2, runAsync, tunnelForwarder } from '../helpers/http2-clients.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir, teardownOf } from '../helpers/temp.js';

const API = 'api.github.com';
const ENHANCE_YOUR_CALM = 11;
const PROTOCOL_ERROR = 1;

async function intercepting(t: TestContext, limits?: string): Promise<GatewayFixture> {
  return startGatewayFixture(t, {
    intercept: { hosts: [API, 'localhost'] },
    ...(limits === undefined ? {} : { limits }),
  });
}

function rawArgs(
  gw: GatewayFixture,
  token: string,
  mode: string,
  extra: Record<string, unknown> = {},
) {
  return { proxy: ['127.0.0.1', gw.port], host: API, ca: gw.interceptCa, token, mode, ...extra };
}

/** curl --http2 through the gateway as HTTPS proxy: `http_version status` per URL. */
async function curlH2(gw: GatewayFixture, token: string, urls: string[]): Promise<string[]> {
  const result = await runAsync('curl', [
    '-s',
    '--http2',
    '-Z',
    '-x',
    gw.base,
    '--cacert',
    gw.interceptCa as string,
    '-H',
    `Authorization: Bearer ${token}`,
    '-w',
    '%{http_version} %{http_code} %{num_connects} %{url_effective}\\n',
    ...urls.flatMap((url) => ['-o', '/dev/null', url]),
  ]);
  return result.stdout.trim().split('\n').sort();
}

/** The gateway still serves a normal HTTP/2 request after an attack. */
async function stillServes(gw: GatewayFixture, token: string): Promise<void> {
  const [line] = await curlH2(gw, token, [`https://${API}/repos/acme/widgets/pulls`]);
  assert.match(line ?? '', /^2 200 /);
}

describe('gateway: HTTP/2 inside intercepted tunnels', () => {
  it('curl --http2: streams on one connection, the out-of-scope one refused (403) while the others pass', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: [API] });
    const lines = await curlH2(gw, token, [
      `https://${API}/repos/acme/widgets/pulls`,
      `https://${API}/repos/acme/secret/keys`,
      `https://${API}/repos/acme/widgets/issues`,
    ]);
    assert.deepEqual(
      lines.map((l) =>
        l
          .split(' ')
          .filter((_, i) => i !== 2)
          .join(' '),
      ),
      [
        `2 200 https://${API}/repos/acme/widgets/issues`,
        `2 200 https://${API}/repos/acme/widgets/pulls`,
        `2 403 https://${API}/repos/acme/secret/keys`,
      ],
    );
    // One connection for all three: they were streams of it.
    assert.equal(
      lines.reduce((n, l) => n + Number(l.split(' ')[2]), 0),
      1,
    );
    assert.equal(gw.upstream.requests.length, 2);
    for (const request of gw.upstream.requests) {
      assert.equal(request.headers.authorization, `token ${CREDENTIAL}`);
      assert.ok(!JSON.stringify(request.headers).includes(token));
    }
  });

  it('nghttp: an out-of-scope stream refused while the others on its connection succeed', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: ['localhost'] });
    const port = await tunnelForwarder(teardownOf(t), gw.port, 'localhost');
    const har = join(tempDir(t), 'nghttp.har');
    const result = await runAsync('nghttp', [
      '-n',
      `--har=${har}`,
      '-H',
      ':authority: localhost',
      '-H',
      `authorization: Bearer ${token}`,
      `https://localhost:${port}/repos/acme/widgets/pulls`,
      `https://localhost:${port}/repos/acme/other/pulls`,
      `https://localhost:${port}/repos/acme/widgets/issues`,
    ]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const entries = (
      JSON.parse(readFileSync(har, 'utf8')) as {
        log: { entries: Array<{ request: { url: string }; response: { status: number } }> };
      }
    ).log.entries;
    const statuses = Object.fromEntries(
      entries.map((e) => [new URL(e.request.url).pathname, e.response.status]),
    );
    assert.deepEqual(statuses, {
      '/repos/acme/widgets/pulls': 200,
      '/repos/acme/other/pulls': 403,
      '/repos/acme/widgets/issues': 200,
    });
    assert.equal(gw.upstream.requests.length, 2);
  });

  it('a stream whose :authority (or Host beside it) is not the tunnel host is refused 421; one with a connection-specific field is reset; the others pass', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: [API, 'github.com'] });
    const result = await rawH2(
      rawArgs(gw, token, 'streams', {
        requests: [
          { path: '/repos/acme/widgets/pulls' },
          { path: '/repos/acme/widgets/pulls', headers: [['host', 'github.com']] },
          { path: '/repos/acme/widgets/issues', headers: [['connection', 'keep-alive']] },
          { path: '/repos/acme/widgets/issues' },
        ],
      }),
    );
    const [ok, host, connection, last] = (result.order ?? []).map(
      (id) => result.streams[String(id)],
    );
    assert.equal(ok?.status, 200);
    assert.equal(host?.status, 421);
    assert.equal(connection?.reset, PROTOCOL_ERROR);
    assert.equal(last?.status, 200);
    assert.equal(gw.upstream.requests.length, 2);
  });

  it('a stream over the agent’s concurrency is refused 429 while its others run', async (t) => {
    const gw = await intercepting(t, 'agentConcurrency: 2');
    const token = gw.token({ hosts: [API] });
    const path = '/repos/acme/widgets/delay?ms=1000';
    const result = await rawH2(
      rawArgs(gw, token, 'streams', { requests: [{ path }, { path }, { path }] }),
    );
    const statuses = Object.values(result.streams)
      .map((s) => s.status)
      .sort();
    assert.deepEqual(statuses, [200, 200, 429]);
  });

  it('rapid reset (CVE-2023-44487): streams opened and cancelled at once end the connection with ENHANCE_YOUR_CALM', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: [API] });
    const result = await rawH2(rawArgs(gw, token, 'rapid-reset', { count: 1000 }));
    assert.ok(result.goaway === ENHANCE_YOUR_CALM || result.closed, JSON.stringify(result));
    // The gateway says why it ended the connection (the client may not read the GOAWAY before the reset).
    await pollUntil('the rapid-reset log line', () =>
      gw.stderr().includes('"reason":"rapid reset"'),
    );
    await stillServes(gw, token);
  });

  it('CONTINUATION flood (CVE-2024-27316): an endless header block ends the connection and reaches nothing', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: [API] });
    const result = await rawH2(rawArgs(gw, token, 'continuation', { count: 10_000 }));
    assert.ok(result.goaway !== null || result.closed, JSON.stringify(result));
    assert.equal(result.streams['1']?.status, undefined);
    assert.equal(gw.upstream.requests.length, 0);
    await stillServes(gw, token);
  });

  it('HPACK bomb: a header list that decodes to megabytes is refused, the stream never forwarded', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: [API] });
    const result = await rawH2(rawArgs(gw, token, 'hpack-bomb', { count: 10_000 }));
    const stream = result.streams['1'];
    assert.ok(
      result.goaway !== null ||
        result.closed ||
        stream?.reset !== undefined ||
        stream?.status === 431,
      JSON.stringify(result),
    );
    assert.notEqual(stream?.status, 200);
    assert.equal(gw.upstream.requests.length, 0);
    await stillServes(gw, token);
  });

  it('WebSocket over HTTP/2 (RFC 8441 extended CONNECT), never enabled, is refused and reaches nothing', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: [API] });
    const result = await rawH2(rawArgs(gw, token, 'extended-connect'));
    const stream = result.streams['1'];
    // nghttp2 resets a stream carrying :protocol when the setting was never
    // sent; the raw client sent stream 1 below h2's state machine, so h2
    // may refuse that reset (ProtocolError) rather than report its code.
    assert.ok(
      stream?.reset !== undefined || result.goaway !== null || result.closed,
      JSON.stringify(result),
    );
    assert.equal(stream?.status, undefined);
    assert.equal(gw.upstream.websockets.length, 0);
    assert.equal(gw.upstream.requests.length, 0);
    await stillServes(gw, token);
  });

  it('PING flood: the connection ends with ENHANCE_YOUR_CALM', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: [API] });
    const result = await rawH2(rawArgs(gw, token, 'ping-flood', { count: 1000 }));
    assert.equal(result.goaway, ENHANCE_YOUR_CALM, JSON.stringify(result));
    await stillServes(gw, token);
  });

  it('SETTINGS flood: the connection ends with ENHANCE_YOUR_CALM', async (t) => {
    const gw = await intercepting(t);
    const token = gw.token({ hosts: [API] });
    const result = await rawH2(rawArgs(gw, token, 'settings-flood', { count: 1000 }));
    assert.equal(result.goaway, ENHANCE_YOUR_CALM, JSON.stringify(result));
    await stillServes(gw, token);
  });
});
