import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { isMintfsError } from '../../src/errors.js';
import {
  loadGatewayConfig,
  parseGatewayConfig,
  type UpstreamConfig,
} from '../../src/gateway/config.js';
import {
  partialRequestProblem,
  partialResponseProblem,
} from '../../src/gateway/partial-responses.js';
import { maskSecrets, RedactStream, redactText } from '../../src/gateway/redact.js';
import { injectedValue, maskedFor } from '../../src/gateway/inject.js';
import { Credential } from '../../src/credentials/credential.js';
import { routeRequest } from '../../src/gateway/route.js';
import { extractToken } from '../../src/gateway/token-extract.js';
import { VerificationCache } from '../../src/gateway/verify-cache.js';
import type { Keyring } from '../../src/keys/keyring.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken } from '../../src/token/mint.js';
import { isoTimestamp } from '../../src/log/logger.js';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';
import { GRANT, keyLookup, newKey, singleKeyKeyring } from '../helpers/tokens.js';

const CONFIG = `listen: [127.0.0.1:8787, unix:/run/mintfs/gateway.sock]
upstreams:
  github:
    url: https://api.github.com
    credential: { file: ./github.credential }
    inject: "Authorization: token {credential}"
  internal:
    url: https://internal.example.com/api/
    credential: { env: INTERNAL_KEY }
    inject: "X-Api-Key: {credential}"
`;

function configProblem(yaml: string): string {
  try {
    parseGatewayConfig(yaml, '/etc/mintfs/gateway.yaml');
  } catch (err) {
    assert.ok(isMintfsError(err, 'ERR_CONFIG_INVALID'), String(err));
    return err.message;
  }
  assert.fail('config should have been refused');
}

describe('gateway config', () => {
  it('parses listen addresses, upstreams and defaults; resolves files beside the config', () => {
    const config = parseGatewayConfig(CONFIG, '/etc/mintfs/gateway.yaml');
    assert.deepEqual(
      config.listen.map((l) => l.kind),
      ['tcp', 'unix'],
    );
    assert.deepEqual(config.upstreams.github?.credential, {
      file: '/etc/mintfs/github.credential',
    });
    assert.deepEqual(config.upstreams.github?.inject, {
      header: 'authorization',
      before: 'token ',
      after: '',
    });
    assert.equal(config.limits.maxBodyBytes, 100 * 1024 * 1024);
    assert.equal(config.limits.headersTimeout, 10_000);
  });

  it('refuses a head timeout longer than the request timeout (Node would throw at start), and approval with several workers', () => {
    assert.match(
      configProblem(`${CONFIG}limits:\n  requestTimeout: 2s\n`),
      /limits\.headersTimeout: must not be longer than requestTimeout \(2 s\)/,
    );
    assert.match(
      configProblem(`${CONFIG}workers: 2\napproval: { socket: /run/mintfs/approvals.sock }\n`),
      /approval: with workers other than 1 needs redis/,
    );
    assert.equal(
      parseGatewayConfig(
        `${CONFIG}workers: 2\nredis: redis://127.0.0.1:6379\napproval: { socket: /run/a.sock }\n`,
        '/etc/mintfs/gateway.yaml',
      ).workers,
      2,
    );
    const approval = parseGatewayConfig(
      `${CONFIG}approval: { socket: ./approvals.sock }\n`,
      '/etc/mintfs/gateway.yaml',
    ).approval;
    assert.equal(approval?.socket, '/etc/mintfs/approvals.sock');
    assert.equal(approval?.timeout, 180_000);
  });

  it('the approvers page leaves loopback only with TLS, and its origin is an https origin', () => {
    const page = (lines: string) => `${CONFIG}approval:\n  socket: /run/a.sock\n${lines}`;
    assert.match(
      configProblem(page('  listen: 10.0.0.5:8790\n')),
      /approval\.listen: without approval\.tls the approvers page listens on a loopback address only/,
    );
    assert.match(
      configProblem(page('  tls: { cert: ./c.pem, key: ./k.pem }\n')),
      /approval\.tls: needs approval\.listen/,
    );
    assert.match(
      configProblem(page('  listen: 0.0.0.0:8790\n  tls: { cert: ./c.pem, key: ./k.pem }\n')),
      /approval\.tls\.origin: is needed when approval\.listen is a wildcard address/,
    );
    for (const origin of [
      'http://approvals.example.com',
      'https://approvals.example.com/page',
      'https://user:pw@approvals.example.com',
      'https://approvals.example.com/?x=1',
      'approvals.example.com',
    ])
      assert.match(
        configProblem(
          page(
            `  listen: 10.0.0.5:8790\n  tls: { cert: c.pem, key: k.pem, origin: "${origin}" }\n`,
          ),
        ),
        /approval\.tls\.origin: must be an https:\/\/ origin/,
        origin,
      );
    const approval = parseGatewayConfig(
      page(
        '  listen: 10.0.0.5:8790\n  tls: { cert: c.pem, key: /k.pem, origin: "https://Approvals.example.com:8790/" }\n',
      ),
      '/etc/mintfs/gateway.yaml',
    ).approval;
    assert.deepEqual(approval?.tls, {
      cert: '/etc/mintfs/c.pem',
      key: '/k.pem',
      origin: 'https://approvals.example.com:8790',
    });
  });

  it('the example in mount-profiles/gateway/ is valid', () => {
    const config = loadGatewayConfig(join(REPO_ROOT, 'mount-profiles', 'gateway', 'github.yaml'));
    assert.equal(config.upstreams.github?.url.hostname, 'api.github.com');
    assert.equal(config.limits.requestTimeout, 300_000);
  });

  it('names the field of each mistake in one line', () => {
    assert.match(
      configProblem(
        CONFIG.replace(
          'inject: "Authorization: token {credential}"',
          'inject: "Authorization: token"',
        ),
      ),
      /upstreams\.github\.inject: must contain \{credential\} exactly once/,
    );
    assert.match(
      configProblem(CONFIG.replace('https://api.github.com', 'ftp://x')),
      /upstreams\.github\.url: must be an http/,
    );
    assert.match(
      configProblem(CONFIG.replace('127.0.0.1:8787', 'localhost')),
      /listen\[0\]: "localhost" is not host:port/,
    );
    assert.match(
      configProblem(CONFIG.replace('unix:/run', 'unix:run')),
      /listen\[1\]: a unix socket path must be absolute/,
    );
    assert.match(
      configProblem(CONFIG.replace('{ file: ./github.credential }', '{ path: x }')),
      /upstreams\.github\.credential: must be one of \{ file: \.\.\. \}, \{ env: \.\.\. \}, \{ command: \.\.\. \}/,
    );
    assert.match(configProblem(`${CONFIG}limits: { maxBodyBytes: -1 }\n`), /limits\.maxBodyBytes/);
    assert.match(configProblem(`${CONFIG}extra: 1\n`), /extra: unknown field/);
    assert.match(
      configProblem(CONFIG.replace('internal.example.com', 'api.github.com')),
      /upstreams\.internal\.hosts: host api\.github\.com is also upstream "github"'s/,
    );
    assert.match(
      configProblem(
        CONFIG.replace(
          '    url: https://internal.example.com/api/\n',
          '    url: https://internal.example.com/api/\n    hosts: [api.github.com]\n',
        ),
      ),
      /upstreams\.internal\.hosts: host api\.github\.com is also upstream "github"'s/,
    );
  });
});

describe('routing', () => {
  const { upstreams } = parseGatewayConfig(CONFIG, '/etc/gw.yaml');

  it('reverse: /<service>/<path>, with the upstream base path prefixed', () => {
    const route = routeRequest('/internal/v1/items?limit=5', upstreams);
    assert.ok(route.ok);
    assert.equal(route.service, 'internal');
    assert.equal(route.upstreamPath, '/api/v1/items');
    assert.equal(route.query, '?limit=5');
    const bare = routeRequest('/github', upstreams);
    assert.ok(bare.ok && bare.upstreamPath === '/');
  });

  it('hands the verifier the decoded segments of the path the upstream will see', () => {
    const plain = routeRequest('/github/repos/a%20b/x?y=1', upstreams);
    assert.ok(plain.ok);
    assert.deepEqual(plain.upstreamSegments, ['repos', 'a b', 'x']);
    const based = routeRequest('/internal/v1/items', upstreams);
    assert.ok(based.ok);
    assert.deepEqual(based.upstreamSegments, ['api', 'v1', 'items']);
    const forward = routeRequest('http://api.github.com/repos/a', upstreams);
    assert.ok(forward.ok);
    assert.deepEqual(forward.upstreamSegments, ['repos', 'a']);
  });

  it('hosts: the names agents use pick the upstream, and are what the host caveat judges', () => {
    const mirrored = parseGatewayConfig(
      CONFIG.replace(
        '    url: https://api.github.com\n',
        '    url: https://mirror.internal:8443\n    hosts: [api.github.com, github.example]\n',
      ),
      '/etc/gw.yaml',
    ).upstreams;
    for (const name of ['api.github.com', 'github.example']) {
      const route = routeRequest(`http://${name}/repos/a`, mirrored);
      assert.ok(route.ok);
      assert.equal(route.service, 'github');
      assert.equal(route.host, name);
      assert.equal(route.upstream.url.host, 'mirror.internal:8443');
    }
    assert.equal(routeRequest('http://mirror.internal/repos/a', mirrored).ok, false);
    const reverse = routeRequest('/github/repos/a', mirrored);
    assert.ok(reverse.ok && reverse.host === 'api.github.com');
  });

  it('forward: the upstream is chosen by host, port ignored', () => {
    const route = routeRequest('http://api.github.com:80/repos/a?x=1', upstreams);
    assert.ok(route.ok);
    assert.equal(route.mode, 'forward');
    assert.equal(route.service, 'github');
    assert.equal(route.upstreamPath, '/repos/a');
  });

  it('refuses https:// targets, unknown hosts and services, and ambiguous paths', () => {
    const code = (target: string) => {
      const route = routeRequest(target, upstreams);
      return route.ok ? 'ok' : route.code;
    };
    assert.equal(code('https://api.github.com/x'), 'ERR_REQUEST_INVALID');
    assert.equal(code('http://evil.example.com/x'), 'ERR_SERVICE_UNKNOWN');
    assert.equal(code('/gitlab/x'), 'ERR_SERVICE_UNKNOWN');
    assert.equal(code('/constructor/x'), 'ERR_SERVICE_UNKNOWN');
    assert.equal(code('/github/a/../b'), 'ERR_PATH_AMBIGUOUS');
    assert.equal(code('http://api.github.com/a/%2e%2e/b'), 'ERR_PATH_AMBIGUOUS');
    assert.equal(code('*'), 'ERR_REQUEST_INVALID');
  });
});

describe('log timestamps', () => {
  it('match toISOString, across second boundaries', (t) => {
    const instants = [
      Date.parse('2026-11-22T01:02:03.004Z'),
      Date.parse('2026-11-22T01:02:03.999Z'),
      Date.parse('2026-11-22T01:02:04.000Z'),
      Date.parse('2026-11-22T01:02:04.050Z'),
      Date.parse('2027-01-01T00:00:00.000Z'),
    ];
    let i = 0;
    t.mock.method(Date, 'now', () => instants[i] as number);
    for (i = 0; i < instants.length; i++)
      assert.equal(isoTimestamp(), `,"time":"${new Date(instants[i] as number).toISOString()}"`);
  });
});

describe('token extraction', () => {
  it('reads Bearer, token, Basic password and Proxy-Authorization', () => {
    assert.equal(extractToken({ authorization: 'Bearer abc' })?.token, 'abc');
    assert.equal(extractToken({ authorization: 'token abc' })?.token, 'abc');
    assert.equal(
      extractToken({ authorization: `Basic ${Buffer.from('x:abc').toString('base64')}` })?.token,
      'abc',
    );
    assert.equal(
      extractToken({ 'proxy-authorization': 'Bearer p', authorization: 'Bearer a' })?.token,
      'p',
    );
    assert.equal(extractToken({ authorization: 'Digest abc' }), undefined);
    assert.equal(
      extractToken({ authorization: `Basic ${Buffer.from('x:').toString('base64')}` }),
      undefined,
    );
    assert.equal(extractToken({}), undefined);
  });
});

describe("token extraction: the upstream's tokenHeader and tokenPrefix", () => {
  it('takes the raw value of tokenHeader, after Authorization; strips tokenPrefix wherever found', () => {
    const places = { tokenHeader: 'x-api-key', tokenPrefix: 'ghp_' };
    assert.deepEqual(extractToken({ 'x-api-key': ' abc ' }, places), {
      token: 'abc',
      header: 'x-api-key',
      scheme: 'raw',
    });
    assert.equal(extractToken({ 'x-api-key': 'k', authorization: 'Bearer a' }, places)?.token, 'a');
    assert.equal(extractToken({ authorization: 'token ghp_AgEG' }, places)?.token, 'AgEG');
    assert.equal(extractToken({ 'x-api-key': 'ghp_AgEG' }, places)?.token, 'AgEG');
    // Without the setting the header is not a token place, and nothing is stripped.
    assert.equal(extractToken({ 'x-api-key': 'abc' }), undefined);
    assert.equal(extractToken({ authorization: 'Bearer ghp_x' })?.token, 'ghp_x');
    // A repeated header (an array) is ambiguous: not taken.
    assert.equal(extractToken({ 'x-api-key': ['a', 'b'] }, places), undefined);
  });

  it('the config refuses a tokenHeader the gateway reads for routing or framing, and odd prefixes', () => {
    const base = (extra: string) =>
      `listen: [127.0.0.1:0]\nupstreams:\n  github:\n    url: https://api.github.com\n    credential: { env: X }\n    inject: "Authorization: token {credential}"\n${extra}`;
    for (const header of ['host', 'authorization', 'content-length', 'X-Api-Key', 'a b'])
      assert.throws(
        () => parseGatewayConfig(base(`    tokenHeader: "${header}"\n`), '/x.yaml'),
        /tokenHeader/,
      );
    for (const prefix of ['', 'ghp_ ', 'a'.repeat(17), 'gh/p'])
      assert.throws(
        () => parseGatewayConfig(base(`    tokenPrefix: "${prefix}"\n`), '/x.yaml'),
        /tokenPrefix/,
      );
    const ok = parseGatewayConfig(
      base('    tokenHeader: x-api-key\n    tokenPrefix: ghp_\nintercept:\n  ca: ./ca\n'),
      '/etc/mintfs/gateway.yaml',
    );
    assert.equal(ok.upstreams.github?.tokenHeader, 'x-api-key');
    assert.equal(ok.intercept?.ca, '/etc/mintfs/ca');
  });
});

describe('injection as HTTP Basic', () => {
  const basicConfig = (inject: string) =>
    parseGatewayConfig(
      CONFIG.replace('inject: "Authorization: token {credential}"', `inject: ${inject}`),
      '/etc/mintfs/gateway.yaml',
    );

  it('puts Basic base64(username:credential) in Authorization', () => {
    const inject = basicConfig('{ basic: { username: x-access-token } }').upstreams.github?.inject;
    assert.ok(inject);
    assert.equal(inject.header, 'authorization');
    assert.equal(
      injectedValue(inject, 'ghs_abc'),
      `Basic ${Buffer.from('x-access-token:ghs_abc').toString('base64')}`,
    );
    // The template form is unchanged, a `$&` in the credential included.
    const template = basicConfig('"Authorization: token {credential}"').upstreams.github?.inject;
    assert.ok(template);
    assert.equal(injectedValue(template, 'a$&b'), 'token a$&b');
  });

  it('refuses a user name a Basic header cannot carry, naming the field', () => {
    assert.match(
      configProblem(
        CONFIG.replace(
          'inject: "Authorization: token {credential}"',
          'inject: { basic: { username: "a:b" } }',
        ),
      ),
      /upstreams\.github\.inject: basic\.username: must not contain a colon/,
    );
    assert.match(
      configProblem(
        CONFIG.replace(
          'inject: "Authorization: token {credential}"',
          'inject: { basic: { username: x, password: y } }',
        ),
      ),
      /upstreams\.github\.inject\.basic\.password: unknown field/,
    );
    assert.match(
      configProblem(
        CONFIG.replace('inject: "Authorization: token {credential}"', 'inject: { basic: {} }'),
      ),
      /upstreams\.github\.inject: basic\.username: required/,
    );
    assert.match(
      configProblem(CONFIG.replace('inject: "Authorization: token {credential}"', 'inject: 42')),
      /upstreams\.github\.inject: must be "Header-Name: value with \{credential\}" or \{ basic: \{ username \} \}/,
    );
  });

  it('masks the encoded form of the current and the previous credential, as echoed in headers, JSON and URLs', async () => {
    const inject = basicConfig('{ basic: { username: x-access-token } }').upstreams.github?.inject;
    assert.ok(inject);
    // Chosen so the base64 holds '+', '/' and '=' (only '>', '?' and '~' third in a
    // group of three make them): every escaped form then differs from the plain one.
    const current = 'gh_ab>cd?x1';
    assert.equal(
      Buffer.from(`x-access-token:${current}`).toString('base64'),
      'eC1hY2Nlc3MtdG9rZW46Z2hfYWI+Y2Q/eDE=',
    );
    const credential = new Credential('github', current, 2, 'ghs_previous');
    const masked = maskedFor(inject, credential);
    const encodedNow = Buffer.from(`x-access-token:${current}`).toString('base64');
    const encodedBefore = Buffer.from('x-access-token:ghs_previous').toString('base64');
    const lowerHex = encodeURIComponent(encodedNow).replace(/%[0-9A-F]{2}/g, (h) =>
      h.toLowerCase(),
    );
    const header = injectedValue(inject, credential.value);
    assert.equal(header, `Basic ${encodedNow}`);
    assert.equal(redactText(header, masked.secrets), 'Basic [redacted]');
    assert.equal(redactText(`Basic ${encodedBefore}`, masked.secrets), 'Basic [redacted]');
    const echoes = [
      `{"authorization":"Basic ${encodedNow.replaceAll('/', '\\/')}"}`,
      `https://x/?auth=${encodeURIComponent(encodedNow)}`,
      `https://x/?auth=${lowerHex}`,
      `raw ${current} and ${encodedBefore}`,
    ];
    const body = echoes.join('\n');
    const out = await text(
      Readable.from([Buffer.from(body)]).pipe(new RedactStream(masked.secrets)),
    );
    assert.equal(out.length, body.length);
    for (const secret of [current, encodedNow, encodedBefore, 'ghs_previous'])
      assert.ok(!out.includes(secret), secret);
    assert.ok(!out.includes(encodedNow.replaceAll('/', '\\/')));
    assert.ok(!out.includes(encodeURIComponent(encodedNow)));
    assert.ok(!out.includes(lowerHex));
    // Cached per credential and injection: the same arrays each request.
    assert.equal(maskedFor(inject, credential), masked);
    // A template injection masks just the credential's own values.
    const template = basicConfig('"Authorization: token {credential}"').upstreams.github?.inject;
    assert.ok(template);
    assert.deepEqual(maskedFor(template, credential).secrets, credential.secrets);
  });
});

describe('redaction', () => {
  it('masks a secret split across any chunk boundary, keeping the length', async () => {
    const secret = 'ghp_SECRETvalue1234';
    const body = `{"a":"${secret}","b":"x${secret}${secret}y"}`;
    for (let size = 1; size <= secret.length + 2; size++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += size) chunks.push(Buffer.from(body.slice(i, i + size)));
      const out = await text(Readable.from(chunks).pipe(new RedactStream([secret, 'other'])));
      assert.equal(out.length, body.length, `chunk size ${size}`);
      assert.ok(!out.includes('SECRET'), `chunk size ${size}`);
      assert.equal(out, body.split(secret).join('*'.repeat(secret.length)));
    }
  });

  it('masks like the whole body masked at once, however it is cut (chunks far larger than a secret too)', async () => {
    const secrets = ['ghp_SECRETvalue1234', 'AKIAREAL0'];
    const piece = fc.oneof(
      fc.constantFrom(...secrets),
      fc.string({
        unit: fc.constantFrom('a', 'g', 'h', 'p', '_', 'S', 'A', 'K', '*', '0'),
        maxLength: 90,
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(piece, { maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 30 }),
        async (pieces, cuts) => {
          const body = Buffer.from(pieces.join(''));
          const expected = Buffer.from(body);
          maskSecrets(
            expected,
            secrets.map((s) => Buffer.from(s)),
          );
          const chunks: Buffer[] = [];
          for (let at = 0, i = 0; at < body.length; i++) {
            const size = cuts[i % cuts.length] as number;
            chunks.push(Buffer.from(body.subarray(at, at + size)));
            at += size;
          }
          const out = await text(Readable.from(chunks).pipe(new RedactStream(secrets)));
          assert.equal(out, expected.toString());
        },
      ),
      { numRuns: 300 },
    );
  });

  it('passes bodies without secrets through unchanged', async () => {
    const out = await text(
      Readable.from([Buffer.from('hello '), Buffer.from('world')]).pipe(new RedactStream(['zzz'])),
    );
    assert.equal(out, 'hello world');
  });

  it('replaces secrets in header values', () => {
    assert.equal(redactText('token abc and abc', ['abc']), 'token [redacted] and [redacted]');
  });
});

describe('verification cache', () => {
  const key = newKey();
  const keyring = singleKeyKeyring(key, '/k');
  const now = new Date();

  it('caches a token on its second use, then serves it without a signature check', () => {
    let lookups = 0;
    const counted: Keyring = { ...keyring, keyById: (id) => (lookups++, keyring.keyById(id)) };
    const cache = new VerificationCache();
    const token = mintToken(GRANT, { key, now, tokenId: newTokenId() }).token;
    for (let i = 0; i < 5; i++)
      assert.ok('authenticated' in cache.authenticate(token, counted, now));
    assert.equal(lookups, 2, 'checked on the first and second use only');
    assert.equal(cache.size, 1);
  });

  it('a token used once (fresh per request) is never cached', () => {
    const cache = new VerificationCache(4);
    for (let i = 0; i < 50; i++)
      cache.authenticate(mintToken(GRANT, { key, now, tokenId: newTokenId() }).token, keyring, now);
    assert.equal(cache.size, 0);
  });

  it('does not cache denials, drops expired entries, and empties on a keyring change', () => {
    const cache = new VerificationCache();
    assert.ok('allowed' in cache.authenticate('garbage', keyring, now));
    assert.ok('allowed' in cache.authenticate('garbage', keyring, now));
    assert.equal(cache.size, 0);
    const minted = mintToken(GRANT, { key, now, tokenId: newTokenId() });
    cache.authenticate(minted.token, keyring, now);
    cache.authenticate(minted.token, keyring, now);
    assert.equal(cache.size, 1);
    cache.authenticate(minted.token, { ...keyring }, now);
    assert.equal(cache.size, 0, 'emptied by the change, on probation again');
    const expired = new Date(minted.expiresAt.getTime() + 1);
    assert.equal(
      (cache.authenticate(minted.token, { ...keyring }, expired) as { authenticated?: boolean })
        .authenticated,
      true,
      'signature still valid; expiry is the caveat check',
    );
    const other = newKey('20261122T010000Z-00000009');
    const rotated: Keyring = {
      dir: '/k',
      keys: [other],
      current: other,
      keyById: keyLookup(other),
      retired: [],
    };
    assert.equal(
      (cache.authenticate(minted.token, rotated, now) as { code?: string }).code,
      'ERR_KEY_UNKNOWN',
    );
  });

  it('evicts the least recently used entry when full', () => {
    let lookups = 0;
    const counted: Keyring = { ...keyring, keyById: (id) => (lookups++, keyring.keyById(id)) };
    const cache = new VerificationCache(2);
    const [a, b, c] = [0, 1, 2].map(
      () => mintToken(GRANT, { key, now, tokenId: newTokenId() }).token,
    ) as [string, string, string];
    for (const token of [a, a, b, b]) cache.authenticate(token, counted, now);
    cache.authenticate(a, counted, now); // a is now the most recently used
    for (const token of [c, c]) cache.authenticate(token, counted, now); // evicts b, not a
    assert.equal(cache.size, 2);
    lookups = 0;
    cache.authenticate(a, counted, now);
    assert.equal(lookups, 0, 'a stayed cached');
    cache.authenticate(b, counted, now);
    assert.equal(lookups, 1, 'b was evicted');
  });
});

describe('partial responses', () => {
  it('an upstream refuses parts unless its config says allow; other values are refused', () => {
    const config = parseGatewayConfig(
      CONFIG.replace(
        '    inject: "X-Api-Key: {credential}"',
        '    inject: "X-Api-Key: {credential}"\n    partialResponses: allow',
      ),
      '/etc/mintfs/gateway.yaml',
    );
    assert.equal(config.upstreams.github?.partialResponses, 'refuse');
    assert.equal(config.upstreams.internal?.partialResponses, 'allow');
    assert.match(
      configProblem(
        CONFIG.replace(
          'inject: "Authorization',
          'partialResponses: yes\n    inject: "Authorization',
        ),
      ),
      /upstreams\.github\.partialResponses/,
    );
  });

  it('every header asking for a part is refused, any spelling; Content-Range (an upload) is not', () => {
    const { upstreams } = parseGatewayConfig(CONFIG, '/etc/mintfs/gateway.yaml');
    const github = upstreams.github as UpstreamConfig;
    for (const name of ['Range', 'RANGE', 'If-Range', 'Request-Range', 'x-ms-range', 'X-Range'])
      assert.match(
        partialRequestProblem([name, 'bytes=0-7'], 'github', github) ?? '',
        /upstreams\.github\.partialResponses: allow/,
        name,
      );
    for (const name of ['Content-Range', 'Accept-Ranges', 'X-Ranges', 'Rangefinder'])
      assert.equal(partialRequestProblem([name, 'bytes 0-7/8'], 'github', github), undefined, name);
    const allowing = { ...github, partialResponses: 'allow' as const };
    assert.equal(partialRequestProblem(['Range', 'bytes=0-7'], 'github', allowing), undefined);
  });

  it('a response that is a part is recognised by its status, Content-Range or media type', () => {
    assert.equal(partialResponseProblem(200, { 'content-type': 'application/json' }), undefined);
    assert.ok(partialResponseProblem(206, {}));
    assert.ok(partialResponseProblem(200, { 'content-range': 'bytes 0-7/100' }));
    assert.ok(partialResponseProblem(416, { 'content-range': 'bytes */100' }));
    assert.ok(partialResponseProblem(200, { 'content-type': ' Multipart/ByteRanges; boundary=x' }));
    assert.ok(partialResponseProblem(200, { 'content-type': 'multipart/x-byteranges' }));
    assert.equal(partialResponseProblem(200, { 'content-type': 'multipart/mixed' }), undefined);
  });
});
