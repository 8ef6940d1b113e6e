/**
 * The gateway against a hostile token holder: one test per attack class of
 * docs/security.md, each played from the client side against the real
 * gateway process and a real HTTPS upstream. "Never reached the upstream" is
 * checked on the upstream's own request log.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request, type IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { writeFileAtomic } from '../../src/keys/atomic-write.js';
import { TOKEN_LIMITS } from '../../src/token/limits.js';
import {
  CREDENTIAL,
  startGatewayFixture,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { CLI } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';
import { runAsync } from '../helpers/spawn.js';
import { appendRawCaveats } from '../helpers/tokens.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with the path and headers exactly as given (no URL normalisation). */
function send(
  gw: GatewayFixture,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gw.port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

function errorCode(reply: Reply): string {
  return (JSON.parse(reply.body) as { error: string }).error;
}

describe('gateway attacks: work a token holder can cause', () => {
  it(
    'a ** storm is refused at the caps, and a glob inside them costs a bounded match',
    { timeout: 60_000 },
    async (t) => {
      const gw = await startGatewayFixture(t);
      const deep = `/github/repos/acme/widgets/${Array.from({ length: 40 }, () => 'a').join('/')}`;
      // Over the ** cap: refused before any HMAC work.
      const storm = appendRawCaveats(gw.token(), [
        `path /${Array.from({ length: 12 }, () => '**').join('/')}/z`,
      ]);
      const refused = await send(gw, deep, { headers: bearer(storm) });
      assert.equal(refused.status, 401);
      assert.equal(errorCode(refused), 'ERR_TOKEN_MALFORMED');
      // Inside the caps, interleaved: answered (refused by the caveat), not hung.
      const interleaved = appendRawCaveats(gw.token(), ['path /**/a/**/a/**/a/**/z']);
      const longest = `/github/repos/acme/widgets/${Array.from({ length: 120 }, () => 'a').join('/')}`;
      const judged = await send(gw, longest, { headers: bearer(interleaved) });
      assert.equal(judged.status, 403);
      assert.equal(errorCode(judged), 'ERR_CAVEAT_UNSATISFIED');
      // A path past the segment cap is refused before any token work.
      const tooLong = `/github/${Array.from({ length: 200 }, () => 'a').join('/')}`;
      const past = await send(gw, tooLong, { headers: bearer(interleaved) });
      assert.equal(past.status, 400);
      assert.match(past.body, /more than 128 segments/);
      assert.equal(gw.upstream.requests.length, 0);
    },
  );

  it(
    'a token with hundreds of caveats is refused as malformed, like any other bad token',
    { timeout: 60_000 },
    async (t) => {
      const gw = await startGatewayFixture(t);
      const forged = appendRawCaveatsUnchecked(gw.token(), 900);
      const reply = await send(gw, '/github/repos/acme/widgets', { headers: bearer(forged) });
      assert.equal(reply.status, 401);
      assert.equal(errorCode(reply), 'ERR_TOKEN_MALFORMED');
      assert.match(reply.body, new RegExp(`more than ${TOKEN_LIMITS.maxCaveats} caveats`));
      // Still serving.
      assert.equal(
        (await send(gw, '/github/repos/acme/widgets', { headers: bearer(gw.token()) })).status,
        200,
      );
    },
  );
});

/** Resolves with the first response head a raw socket receives. */
function responseHead(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
}

/** Hundreds of tiny caveats: over the count cap, under the length cap. */
function appendRawCaveatsUnchecked(token: string, count: number): string {
  return appendRawCaveats(
    token,
    Array.from({ length: count }, () => 'm'),
  );
}

describe('gateway attacks: requests the upstream would read differently', () => {
  it('method, path, host, scheme and client-address headers of every family are refused, odd spellings too', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token({ methods: ['GET'] });
    const headerCases: Array<Record<string, string>> = [
      { 'X-HTTP-Method-Override': 'DELETE' },
      { 'X-HTTP-Method': 'DELETE' },
      { 'X-Method-Override': 'DELETE' },
      { X_HTTP_METHOD_OVERRIDE: 'DELETE' },
      { 'X-Original-URL': '/repos/acme/secret' },
      { 'X-Rewrite-URL': '/repos/acme/secret' },
      { 'X-Forwarded-Host': 'evil.example' },
      { 'X-Forwarded-Prefix': '/admin' },
      { Forwarded: 'host=evil.example' },
      { x_original_url: '/repos/acme/secret' },
      // Families, not names: CDN, load-balancer and framework spellings.
      { 'CF-Connecting-IP': '10.0.0.1' },
      { 'Fastly-Client-IP': '10.0.0.1' },
      { 'X-ProxyUser-Ip': '10.0.0.1' },
      { 'X-Original-Forwarded-For': '10.0.0.1' },
      { 'X-Method': 'DELETE' },
      { 'X-Envoy-Original-Dst-Host': 'evil.example' },
      { 'X.Forwarded.For': '10.0.0.1' },
    ];
    for (const extra of headerCases) {
      const reply = await send(gw, '/github/repos/acme/widgets', {
        headers: { ...bearer(token), ...extra },
      });
      assert.equal(reply.status, 400, JSON.stringify(extra));
      assert.equal(errorCode(reply), 'ERR_REQUEST_INVALID');
    }
    for (const query of [
      '?_method=DELETE',
      '?%5Fmethod=DELETE',
      '?a=1;_method=DELETE',
      '?X-HTTP-Method-Override=PUT',
    ]) {
      const reply = await send(gw, `/github/repos/acme/widgets${query}`, {
        headers: bearer(token),
      });
      assert.equal(reply.status, 400, query);
    }
    assert.equal(gw.upstream.requests.length, 0, 'none reached the upstream');
    // An ordinary query still passes.
    assert.equal(
      (await send(gw, '/github/repos/acme/widgets?page=2&method=x', { headers: bearer(token) }))
        .status,
      200,
    );
  });

  it('paths a ;-dropping, double-decoding or Unicode-folding server would read as another are refused', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token();
    const smuggled = [
      '/repos/acme/widgets/..;/..;/evil',
      '/repos/acme/widgets/%2e%2e;/%2e%2e;/evil',
      '/repos/acme/widgets/%2E%2E%3B/evil',
      '/repos/acme/widgets/%252e%252e/%252e%252e/evil',
      '/repos/acme/widgets/..%20/..%20/evil',
      '/repos/acme/widgets/.../evil',
      '/repos/acme/widgets/%EF%BC%8E%EF%BC%8E/evil',
      '/repos/acme/widgets%3b/../evil',
      '/repos/%61cme/widgets',
    ];
    for (const path of smuggled) {
      for (const mode of ['reverse', 'forward']) {
        const target =
          mode === 'reverse' ? `/github${path}` : `http://localhost:${gw.upstream.port}${path}`;
        const reply = await send(gw, target, { headers: bearer(token) });
        assert.equal(reply.status, 400, `${mode} ${path}: ${reply.body}`);
        assert.equal(errorCode(reply), 'ERR_PATH_AMBIGUOUS');
      }
    }
    assert.equal(gw.upstream.requests.length, 0, 'none reached the upstream');
  });
});

describe('gateway attacks: override carriers past the family rule (review of eb0e97e)', () => {
  it('X-Script-Name, which WSGI reverse-proxy middleware moves into SCRIPT_NAME, is refused', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token({ methods: ['GET'] });
    // Flask's ReverseProxied recipe: SCRIPT_NAME = X-Script-Name, PATH_INFO loses that
    // prefix; a token for /repos/acme/widgets/** would reach the app's /admin.
    for (const name of ['X-Script-Name', 'Script-Name']) {
      const reply = await send(gw, '/github/repos/acme/widgets/admin', {
        headers: { ...bearer(token), [name]: '/repos/acme/widgets' },
      });
      assert.equal(reply.status, 400, name);
      assert.equal(errorCode(reply), 'ERR_REQUEST_INVALID');
    }
    assert.equal(gw.upstream.requests.length, 0, 'a path override reached the upstream');
  });

  it('query keys PHP reads as _method (dots, spaces, an open bracket) are refused', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token({ methods: ['POST'] });
    // PHP strips leading spaces from a variable name and turns ' ', '.' and an
    // unclosed '[' into '_': Symfony and Laravel then read _method as the method.
    for (const query of [
      '?.method=DELETE',
      '?%2Emethod=DELETE',
      '?[method=DELETE',
      '?+.method=DELETE',
    ]) {
      const reply = await send(gw, `/github/repos/acme/widgets${query}`, {
        method: 'POST',
        headers: { ...bearer(token), 'content-length': '0' },
      });
      assert.equal(reply.status, 400, query);
    }
    assert.equal(gw.upstream.requests.length, 0, 'a method override reached the upstream');
  });

  it('a form body carrying _method is refused (Rails, Laravel, Symfony, Spring read it as the method)', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token({ methods: ['POST'] });
    // Rack::MethodOverride, Laravel/Symfony and Spring's HiddenHttpMethodFilter
    // turn this POST into a DELETE of the same path.
    const reply = await send(gw, '/github/repos/acme/widgets/issues/1', {
      method: 'POST',
      headers: { ...bearer(token), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'title=x&_method=DELETE',
    });
    assert.equal(reply.status, 400, `answered ${reply.status}: ${reply.body.slice(0, 200)}`);
    assert.equal(gw.upstream.requests.length, 0, 'a method override reached the upstream');
  });

  it('a configured tokenHeader in a refused family still carries the token (it is never forwarded)', async (t) => {
    // Cloudflare AI Gateway's SDK setups put the key in cf-aig-authorization.
    const gw = await startGatewayFixture(t, {
      githubUpstream: '    tokenHeader: cf-aig-authorization',
    });
    const reply = await send(gw, '/github/repos/acme/widgets', {
      headers: { 'cf-aig-authorization': gw.token() },
    });
    assert.equal(reply.status, 200, reply.body.slice(0, 200));
    assert.equal(gw.upstream.requests[0]?.headers['cf-aig-authorization'], undefined);
  });

  it('the headers the Anthropic and OpenAI SDKs send when streaming pass (X-Stainless-Helper-Method)', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token({ methods: ['POST'] });
    // Claude Code and the SDKs' stream()/runTools()/parse() helpers send these on every call.
    for (const extra of [
      { 'X-Stainless-Helper-Method': 'stream' },
      { 'X-Stainless-Helper-Method': 'runTools' },
      { 'X-Stainless-Helper-Method': 'beta.chat.completions.parse' },
      { 'X-Stainless-Poll-Helper': 'true', 'X-Stainless-Custom-Poll-Interval': '500' },
    ]) {
      const reply = await send(gw, '/github/repos/acme/widgets/messages', {
        method: 'POST',
        headers: { ...bearer(token), 'content-type': 'application/json', ...extra },
        body: '{}',
      });
      assert.equal(reply.status, 200, `${JSON.stringify(extra)}: ${reply.body.slice(0, 200)}`);
    }
  });
});

describe('gateway attacks: one agent against the others', () => {
  it(
    'a greedy agent is capped and its trickled bodies cut; another agent is still served',
    { timeout: 60_000 },
    async (t) => {
      const gw = await startGatewayFixture(t, {
        limits: 'agentConcurrency: 2\nupstreamConnections: 3\nbodyIdleTimeout: 1s',
      });
      const greedy = gw.token({ agent: 'greedy', methods: ['GET', 'POST'] });
      const sockets: Socket[] = [];
      t.after(() => sockets.forEach((s) => s.destroy()));
      const heads: Array<Promise<string>> = [];
      for (let i = 0; i < 3; i++) {
        const socket = connect(gw.port, '127.0.0.1');
        sockets.push(socket);
        socket.on('error', () => undefined);
        heads.push(responseHead(socket));
        socket.write(
          `POST /github/repos/acme/widgets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${greedy}\r\ncontent-length: 100000\r\n\r\nx`,
        );
        // In order, so the third is the one over the limit.
        if (i < 2)
          await pollUntil(
            'the upstream to hold the body',
            () => gw.upstream.started.length === i + 1,
          );
      }
      assert.match(await (heads[2] as Promise<string>), /^HTTP\/1\.1 429 /);
      // Meanwhile another agent is served at once.
      const other = await send(gw, '/github/repos/acme/widgets', {
        headers: bearer(gw.token({ agent: 'polite' })),
      });
      assert.equal(other.status, 200);
      // The two stalled bodies are cut by the body idle timeout.
      for (const head of await Promise.all(heads.slice(0, 2)))
        assert.match(head, /^HTTP\/1\.1 408 /);
    },
  );

  it('a body on a method that has none is refused before the upstream', async (t) => {
    const gw = await startGatewayFixture(t);
    const reply = await send(gw, '/github/repos/acme/widgets', {
      headers: { ...bearer(gw.token()), 'content-type': 'text/plain', 'content-length': '1000' },
      body: 'x'.repeat(1000),
    });
    assert.equal(reply.status, 400);
    assert.match(reply.body, /bodyMethods/);
    assert.equal(gw.upstream.requests.length, 0);
  });
});

describe('gateway attacks: audit, redaction, injection', () => {
  it('a holder-appended reader caveat is refused and never reaches the audit line', async (t) => {
    const gw = await startGatewayFixture(t);
    const spoofed = appendRawCaveats(gw.token(), [
      'reader uid=0 gid=0 pid=1 start=1 exe=/usr/bin/innocent cgroup=/',
    ]);
    const reply = await send(gw, '/github/repos/acme/widgets', { headers: bearer(spoofed) });
    assert.equal(reply.status, 401);
    assert.equal(errorCode(reply), 'ERR_CAVEAT_MALFORMED');
    const line = await pollUntil('the audit line', () => gw.requestLogs()[0]);
    assert.equal(line.reader, undefined);
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('every coding an upstream applies is decoded before redaction, or the response refused', async (t) => {
    const gw = await startGatewayFixture(t);
    const token = gw.token();
    // zstd where this Node decodes it (22.15+, 24): the bundle must reach
    // zlib's zstd on the Node it runs on, whatever Node built it.
    const zstd = 'zstdCompressSync' in zlib ? ['echo-zstd'] : [];
    for (const route of ['echo-te-gzip', 'echo-gzip-gzip', 'echo-gzip', ...zstd]) {
      const reply = await send(gw, `/github/repos/acme/widgets/${route}`, {
        headers: bearer(token),
      });
      assert.equal(reply.status, 200, route);
      assert.ok(!reply.body.includes(CREDENTIAL), `${route} leaked the credential`);
      const echoed = JSON.parse(reply.body) as { headers: { authorization: string } };
      assert.match(echoed.headers.authorization, /^token \*+$/, route);
    }
    const refused = await send(gw, '/github/repos/acme/widgets/echo-compress', {
      headers: bearer(token),
    });
    assert.equal(refused.status, 502);
    assert.ok(!refused.body.includes(CREDENTIAL));
    assert.match(refused.body, /unsupported coding compress/);
  });

  it('a credential holding $ patterns reaches the upstream byte for byte', async (t) => {
    const gw = await startGatewayFixture(t);
    const tricky = "ghp_$&x$'y$`z$$w$1";
    writeFileAtomic(gw.credentialFile, `${tricky}\n`, { mode: 0o600 });
    const token = gw.token();
    await pollUntil('the new credential upstream', async () => {
      await send(gw, '/github/repos/acme/widgets', { headers: bearer(token) });
      return gw.upstream.requests.at(-1)?.headers.authorization === `token ${tricky}`;
    });
  });
});

describe('gateway attacks: parts of a response', () => {
  it('an echo fetched in pieces shorter than the credential never comes back: ranges are refused, unasked parts too', async (t) => {
    const upstream = await startRangedUpstream(t, randomBytes(16));
    const gw = await startGatewayFixture(t, { extraUpstreams: rangedUpstreams(upstream.url) });
    const token = gw.token({ service: 'echoing', hosts: ['echoing.test'], paths: ['/**'] });
    const whole = await send(gw, '/echoing/doc', { headers: bearer(token) });
    assert.equal(whole.status, 200);
    assert.ok(!whole.body.includes(CREDENTIAL), 'the whole echo is redacted');
    assert.equal(whole.headers['accept-ranges'], 'none', 'ranges are not advertised');

    // The attack: every piece shorter than the credential, asked for by
    // header or (as S3's partNumber) by a query parameter the upstream honours.
    const piece = 8;
    let assembled = '';
    for (let at = 0; at < whole.body.length; at += piece) {
      const range = `${at}-${at + piece - 1}`;
      const asked = await send(gw, '/echoing/doc', {
        headers: { ...bearer(token), range: `bytes=${range}` },
      });
      assert.equal(asked.status, 400);
      assert.equal(errorCode(asked), 'ERR_REQUEST_INVALID');
      assert.match(asked.body, /upstreams\.echoing\.partialResponses/);
      const unasked = await send(gw, `/echoing/doc?part=${range}`, { headers: bearer(token) });
      assert.equal(unasked.status, 502);
      assert.equal(errorCode(unasked), 'ERR_UPSTREAM_UNREACHABLE');
      assembled += asked.body + unasked.body;
    }
    assert.ok(!assembled.includes(CREDENTIAL));

    // The rest of the class: every header that asks for a part, on any method, in any route form.
    const variants: Array<[string, string, Record<string, string>]> = [
      ['HEAD', '/echoing/doc', { Range: 'bytes=0-7' }],
      ['POST', '/echoing/doc', { Range: 'bytes=0-7' }],
      ['GET', '/echoing/doc', { RANGE: 'bytes=0-7,8-15' }],
      ['GET', '/echoing/doc', { Range: 'bytes=-8' }],
      ['GET', '/echoing/doc', { 'If-Range': '"v1"', Range: 'bytes=8-15' }],
      ['GET', '/echoing/doc', { 'If-Range': '"v1"' }],
      ['GET', '/echoing/doc', { 'Request-Range': 'bytes=0-7' }],
      ['GET', '/echoing/doc', { 'x-ms-range': 'bytes=0-7' }],
      ['GET', '/echoing/doc', { 'X-Range': 'bytes=0-7' }],
      ['GET', 'http://echoing.test/doc', { Range: 'bytes=0-7' }],
    ];
    for (const [method, path, headers] of variants) {
      const reply = await send(gw, path, { method, headers: { ...bearer(token), ...headers } });
      const label = `${method} ${path} ${JSON.stringify(headers)}`;
      assert.equal(reply.status, 400, label);
      if (method !== 'HEAD') assert.equal(errorCode(reply), 'ERR_REQUEST_INVALID', label);
    }
    // Parts sent unasked in other shapes: a 200 labelled with a Content-Range, multipart/byteranges.
    for (const query of ['part=0-7&as=200', 'part=0-7,8-15&as=multipart', 'part=0-999']) {
      const reply = await send(gw, `/echoing/doc?${query}`, { headers: bearer(token) });
      assert.equal(reply.status, 502, query);
      assert.match(reply.body, /partial response/, query);
    }
    assert.deepEqual(
      upstream.heads.filter((h) => Object.keys(h).some((name) => name.endsWith('range'))),
      [],
      'no request asking for a part reached the upstream',
    );
  });

  it('an upstream declared partialResponses: allow gets ranges through byte-exact', async (t) => {
    const object = randomBytes(200_000);
    const upstream = await startRangedUpstream(t, object);
    const gw = await startGatewayFixture(t, { extraUpstreams: rangedUpstreams(upstream.url) });
    const token = gw.token({ service: 'objects', hosts: ['objects.test'], paths: ['/**'] });
    const head = await sendBytes(gw, '/objects/object', { ...bearer(token) }, 'HEAD');
    assert.equal(head.headers['accept-ranges'], 'bytes');
    // As aws-cli fetches a big object: parts in parallel, assembled by offset.
    const size = 70_000; // over the gateway's one-piece redaction size, so parts stream
    const parts = await Promise.all(
      Array.from({ length: Math.ceil(object.length / size) }, (_, i) =>
        sendBytes(gw, '/objects/object', {
          ...bearer(token),
          range: `bytes=${i * size}-${Math.min(object.length, (i + 1) * size) - 1}`,
        }),
      ),
    );
    for (const [i, part] of parts.entries()) {
      assert.equal(part.status, 206);
      const end = Math.min(object.length, (i + 1) * size) - 1;
      assert.equal(part.headers['content-range'], `bytes ${i * size}-${end}/${object.length}`);
    }
    assert.ok(Buffer.concat(parts.map((p) => p.bytes)).equals(object), 'assembled byte for byte');
    // Several ranges in one answer, and If-Range: passed as the upstream sent them.
    const multi = await sendBytes(gw, '/objects/object', {
      ...bearer(token),
      range: 'bytes=0-99,150000-150099',
      'if-range': '"v1"',
    });
    assert.equal(multi.status, 206);
    assert.ok(
      multi.bytes.equals(
        multipartBody(
          object,
          [
            [0, 99],
            [150_000, 150_099],
          ],
          object.length,
        ),
      ),
    );
  });
});

describe('gateway attacks: connections that reset at any stage', () => {
  const stages: Array<[string, (gw: GatewayFixture, token: string) => string, number]> = [
    ['mid-head', () => 'GET /github/repos/acme/wid', 0],
    [
      'after the head',
      (_gw, token) =>
        `POST /github/repos/acme/widgets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\ncontent-length: 50\r\n\r\n`,
      0,
    ],
    [
      'after a CONNECT refusal',
      () => 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
      1,
    ],
    ['after a refusal', () => 'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n', 1],
    [
      'mid-body',
      (_gw, token) =>
        `POST /github/repos/acme/widgets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\ncontent-length: 50\r\n\r\nabc`,
      0,
    ],
    [
      'mid-response',
      (_gw, token) =>
        `GET /github/repos/acme/widgets/big?bytes=20000000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`,
      1,
    ],
  ];
  it(
    'resets at every stage, three times each, leave the gateway serving',
    { timeout: 120_000 },
    async (t) => {
      const gw = await startGatewayFixture(t);
      const token = gw.token();
      for (const [stage, text, waitForBytes] of stages) {
        for (let round = 0; round < 3; round++) {
          const socket = connect(gw.port, '127.0.0.1');
          socket.on('error', () => undefined);
          await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
          socket.write(text(gw, token));
          if (waitForBytes > 0) await new Promise((resolve) => socket.once('data', resolve));
          else await new Promise((resolve) => setImmediate(resolve));
          socket.resetAndDestroy();
          const ok = await send(gw, '/github/repos/acme/widgets', { headers: bearer(token) });
          assert.equal(ok.status, 200, `after a reset ${stage}`);
        }
      }
      assert.equal(gw.child.exitCode, null);
      assert.doesNotMatch(gw.stderr(), /unexpected error|Unhandled/);
    },
  );
});

describe('gateway: unix sockets', () => {
  it(
    'never takes over a socket something listens on; replaces a stale one',
    { timeout: 60_000 },
    async (t) => {
      const gw = await startGatewayFixture(t);
      const config = join(gw.dir, 'second.yaml');
      writeFileSync(
        config,
        readFileSync(join(gw.dir, 'gateway.yaml'), 'utf8').replace(/ {2}- 127\.0\.0\.1:0\n/, ''),
      );
      const live = await runAsync(process.execPath, [CLI, 'gateway', config, '--keys', gw.keysDir]);
      assert.equal(live.code, 3, live.stderr);
      assert.match(live.stderr, /another process is listening on this socket/);
      assert.equal(
        (await send(gw, '/github/repos/acme/widgets', { headers: bearer(gw.token()) })).status,
        200,
      );

      // A socket left by a process that died: replaced.
      const stalePath = join(gw.dir, 'stale.sock');
      const holder = spawn(process.execPath, [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(stalePath)})`,
      ]);
      await pollUntil('the stale socket', () => existsSync(stalePath));
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('exit', resolve));
      writeFileSync(config, readFileSync(config, 'utf8').replace(gw.socketPath, stalePath));
      let stderr = '';
      const second = spawn(process.execPath, [CLI, 'gateway', config, '--keys', gw.keysDir], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      t.after(() => second.kill('SIGKILL'));
      second.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      await pollUntil('the second gateway to listen on the stale path', () => {
        if (second.exitCode !== null) throw new Error(stderr);
        return stderr.includes('"event":"gateway-listening"');
      });
    },
  );
});

/** The two upstreams of a ranged test server, under `upstreams:`. */
function rangedUpstreams(url: string): string {
  const common = [
    `    url: ${url}`,
    '    credential: { file: ./github.credential }',
    '    inject: "Authorization: token {credential}"',
  ];
  return [
    '  echoing:',
    ...common,
    '    hosts: [echoing.test]',
    '  objects:',
    ...common,
    '    hosts: [objects.test]',
    '    partialResponses: allow',
  ].join('\n');
}

const BOUNDARY = 'mintfs-test-parts';

function multipartBody(data: Buffer, ranges: Array<[number, number]>, size: number): Buffer {
  return Buffer.concat([
    ...ranges.flatMap(([from, to]) => [
      Buffer.from(
        `--${BOUNDARY}\r\ncontent-type: application/octet-stream\r\ncontent-range: bytes ${from}-${to}/${size}\r\n\r\n`,
      ),
      data.subarray(from, to + 1),
      Buffer.from('\r\n'),
    ]),
    Buffer.from(`--${BOUNDARY}--\r\n`),
  ]);
}

/** `bytes=A-B,C-,-N` as inclusive [from, to] pairs within `size`; undefined if not that. */
function parseRanges(text: string, size: number): Array<[number, number]> | undefined {
  const spec = /^bytes=(.+)$/.exec(text.trim());
  if (!spec) return undefined;
  const ranges: Array<[number, number]> = [];
  for (const item of (spec[1] as string).split(',')) {
    const m = /^\s*(\d*)-(\d*)\s*$/.exec(item);
    if (!m || (m[1] === '' && m[2] === '')) return undefined;
    const from = m[1] === '' ? Math.max(0, size - Number(m[2])) : Number(m[1]);
    const to = m[1] === '' || m[2] === '' ? size - 1 : Math.min(size - 1, Number(m[2]));
    if (from > to) return undefined;
    ranges.push([from, to]);
  }
  return ranges;
}

/**
 * A plain-HTTP upstream that answers /doc with an echo of the credential it
 * received (as a careless API might) and /object with `object`, and serves
 * byte ranges of either as an object store does: Range, Request-Range or
 * x-ms-range, one range (206) or several (multipart/byteranges).
 * `?part=RANGES` sends a part unasked (as S3's partNumber does); `&as=200`
 * labels it 200 with a Content-Range, `&as=multipart` forces multipart.
 */
async function startRangedUpstream(
  t: TestContext,
  object: Buffer,
): Promise<{ url: string; heads: IncomingHttpHeaders[] }> {
  const heads: IncomingHttpHeaders[] = [];
  const server = createHttpServer((req, res) => {
    heads.push(req.headers);
    const url = new URL(req.url ?? '/', 'http://upstream');
    const body = url.pathname.endsWith('/object')
      ? object
      : Buffer.from(
          `${JSON.stringify({ path: url.pathname, authorization: req.headers.authorization ?? '' })}\n`,
        );
    const asked = req.headers.range ?? req.headers['request-range'] ?? req.headers['x-ms-range'];
    const part = url.searchParams.get('part');
    const ranges = parseRanges(
      String(asked ?? (part === null ? '' : `bytes=${part}`)),
      body.length,
    );
    const common = { 'accept-ranges': 'bytes', etag: '"v1"' };
    if (ranges === undefined) {
      res.writeHead(200, { ...common, 'content-length': body.length });
      return void res.end(req.method === 'HEAD' ? undefined : body);
    }
    const status = url.searchParams.get('as') === '200' ? 200 : 206;
    if (ranges.length === 1 && url.searchParams.get('as') !== 'multipart') {
      const [from, to] = ranges[0] as [number, number];
      res.writeHead(status, {
        ...common,
        'content-range': `bytes ${from}-${to}/${body.length}`,
        'content-length': to - from + 1,
      });
      return void res.end(req.method === 'HEAD' ? undefined : body.subarray(from, to + 1));
    }
    const parts = multipartBody(body, ranges, body.length);
    res.writeHead(status, {
      ...common,
      'content-type': `multipart/byteranges; boundary=${BOUNDARY}`,
      'content-length': parts.length,
    });
    res.end(req.method === 'HEAD' ? undefined : parts);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, heads };
}

/** One request through the gateway, with the response body as bytes. */
function sendBytes(
  gw: GatewayFixture,
  path: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ status: number; headers: IncomingHttpHeaders; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: gw.port, path, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            bytes: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
