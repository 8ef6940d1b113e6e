/**
 * The approvers' page in a real browser (Debian's Chromium, headless, driven
 * by playwright-core): enrol with a one-time link, see a held request appear
 * live, approve it from the keyboard, deny one with a reason the client
 * reads; and the page's defences against forged decisions from elsewhere.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { it, type TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { runCli } from '../helpers/cli.js';
import { startGatewayFixture, type GatewayFixture } from '../helpers/gateway-fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir } from '../helpers/temp.js';
import { makeTestPki } from '../helpers/tls.js';
import { describeOnFirstPass } from '../helpers/node-passes.js';

const MERGE = '/github/repos/acme/widgets/pulls/7/merge';

function send(
  gw: GatewayFixture,
  method: string,
  token: string,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${gw.base}${MERGE}`,
      {
        method,
        agent: new Agent({ keepAlive: false }),
        headers: { authorization: `Bearer ${token}` },
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

function post(
  origin: string,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${origin}${path}`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function setup(t: TestContext, extra: readonly string[] = []) {
  const gw = await startGatewayFixture(t, {
    topLevel: [
      'approval:',
      '  socket: ./approvals.sock',
      '  listen: 127.0.0.1:0',
      '  timeout: 60s',
      ...extra,
    ].join('\n'),
  });
  const socket = join(gw.dir, 'approvals.sock');
  const origin = await pollUntil('the approvers page to listen', () => {
    const line = gw
      .stderr()
      .split('\n')
      .find((l) => l.includes('"event":"approval-page-listening"'));
    return line === undefined ? undefined : (JSON.parse(line) as { origin: string }).origin;
  });
  const token = gw.token({
    agent: 'coder',
    methods: ['GET', 'PUT'],
    paths: ['/repos/acme/widgets/**'],
    approval: { methods: ['PUT'] },
  });
  const browser: Browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // Root in a container: Chromium's own sandbox needs user namespaces it may not get.
    args: ['--no-sandbox'],
  });
  t.after(() => browser.close());
  return { gw, socket, origin, token, browser };
}

function enrolLink(socket: string, name: string): string {
  const added = runCli(['approvers', 'add', name, '--socket', socket]);
  assert.equal(added.code, 0, added.stderr);
  return (JSON.parse(added.stdout) as { link: string }).link;
}

describeOnFirstPass('the approvers page in a browser', () => {
  it('enrol, see a held request live, approve from the keyboard, deny with a reason the client reads', async (t) => {
    const { gw, socket, origin, token, browser } = await setup(t);
    const link = enrolLink(socket, 'alice');
    assert.ok(link.startsWith(`${origin}/enrol#`));
    const page = await browser.newPage();
    await page.goto(link);
    await page.getByText('Signed in as alice').waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the code leaves the address bar');

    const held = send(gw, 'PUT', token, '{"merge_method":"squash"}');
    const heading = page.getByRole('heading', {
      name: /PUT localhost\/repos\/acme\/widgets\/pulls\/7\/merge/,
    });
    await heading.waitFor();
    assert.match(await page.locator('li.card pre').innerText(), /squash/);
    if (process.env.MINTFS_SCREENSHOTS !== undefined)
      await page.screenshot({ path: join(process.env.MINTFS_SCREENSHOTS, 'approval-page.png') });
    await page.locator('li.card button.approve').focus();
    await page.keyboard.press('Enter');
    assert.equal((await held).status, 200);
    await page.getByText('No request is waiting.').waitFor();
    // The audit line may be written after the response went out: polled, not read once.
    const decided = await pollUntil('the decision to be logged', () =>
      gw
        .stderr()
        .split('\n')
        .find((l) => l.includes('"event":"approval-decided"')),
    );
    assert.match(decided, /"approver":"web:alice"/);

    const second = send(gw, 'PUT', token, '{"merge_method":"rebase"}');
    await page.locator('li.card input').waitFor();
    await page.locator('li.card input').fill('rebase is not allowed here');
    await page.locator('li.card input').press('Enter');
    const refused = await second;
    assert.equal(refused.status, 403);
    assert.match(refused.body, /web:alice denied this request.*rebase is not allowed here/);
    // A spent link opens nothing.
    const again = await browser.newPage();
    await again.goto(link);
    await again.getByText(/spent, expired or wrong/).waitFor();
  });

  it('a decision without a session, from another origin, or without the CSRF token is refused; the request keeps waiting', async (t) => {
    const { gw, socket, origin, token, browser } = await setup(t);
    const page = await browser.newPage();
    await page.goto(enrolLink(socket, 'bob'));
    await page.getByText('Signed in as bob').waitFor();
    const cookie = (await page.context().cookies()).find((c) => c.name === 'mintfs_approver');
    assert.ok(cookie?.httpOnly, 'the session cookie is HttpOnly');
    assert.equal(cookie?.sameSite, 'Strict');
    const held = send(gw, 'PUT', token);
    const listed = await pollUntil('the request to wait', () => {
      const out = runCli(['approvals', 'list', '--socket', socket]);
      const pending = (JSON.parse(out.stdout) as { pending: Array<{ id: string }> }).pending;
      return pending[0]?.id;
    });
    const decision = JSON.stringify({ id: listed, decision: 'approve' });
    const json = { 'content-type': 'application/json' };
    const session = { cookie: `mintfs_approver=${cookie?.value ?? ''}` };
    const csrf = (await (await page.request.get(`${origin}/api/session`)).json()) as {
      csrf: string;
    };
    // No session.
    assert.equal(
      (await post(origin, '/api/decide', { ...json, origin, 'x-mintfs-csrf': csrf.csrf }, decision))
        .status,
      401,
    );
    // A session, but no CSRF token (a cross-site form), or another origin.
    assert.equal(
      (await post(origin, '/api/decide', { ...json, ...session, origin }, decision)).status,
      403,
    );
    assert.equal(
      (
        await post(
          origin,
          '/api/decide',
          { ...json, ...session, origin: 'http://evil.example', 'x-mintfs-csrf': csrf.csrf },
          decision,
        )
      ).status,
      403,
    );
    // A form post cannot send JSON.
    assert.equal(
      (
        await post(
          origin,
          '/api/decide',
          {
            'content-type': 'application/x-www-form-urlencoded',
            ...session,
            origin,
            'x-mintfs-csrf': csrf.csrf,
          },
          decision,
        )
      ).status,
      403,
    );
    assert.equal(gw.upstream.requests.filter((r) => r.url.endsWith('/merge')).length, 0);
    const pending = runCli(['approvals', 'list', '--socket', socket]);
    assert.equal(
      (JSON.parse(pending.stdout) as { pending: unknown[] }).pending.length,
      1,
      'still waiting',
    );
    // The page's own request works.
    const ok = await post(
      origin,
      '/api/decide',
      { ...json, ...session, origin, 'x-mintfs-csrf': csrf.csrf },
      JSON.stringify({ id: listed, decision: 'deny', reason: 'test' }),
    );
    assert.equal(ok.status, 200, ok.body);
    assert.equal((await held).status, 403);
    // The page forbids framing and inline script.
    const response = await page.request.get(`${origin}/`);
    assert.match(response.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'self'/);
  });

  it('over TLS: the page is https only, its cookie Secure, and an approval from it releases the request', async (t) => {
    // The test PKI's localhost certificate (DNS:localhost, IP:127.0.0.1), written where the config names it.
    const dir = tempDir(t);
    const pki = makeTestPki(dir);
    writeFileSync(join(dir, 'page.crt'), pki.cert);
    writeFileSync(join(dir, 'page.key'), pki.key, { mode: 0o600 });
    const { gw, socket, origin, token, browser } = await setup(t, [
      '  tls:',
      `    cert: ${join(dir, 'page.crt')}`,
      `    key: ${join(dir, 'page.key')}`,
    ]);
    assert.match(origin, /^https:\/\/127\.0\.0\.1:\d+$/);
    // A client that checks the chain against the CA gets the page, with HSTS.
    const head = await new Promise<{ status: number; hsts: string | undefined }>(
      (resolve, reject) =>
        httpsGet(`${origin}/`, { ca: pki.ca }, (res) => {
          res.resume();
          resolve({
            status: res.statusCode ?? 0,
            hsts: res.headers['strict-transport-security'],
          });
        }).on('error', reject),
    );
    assert.equal(head.status, 200);
    assert.match(head.hsts ?? '', /max-age=\d+/);
    // Plain HTTP on that port gets no page.
    const plain = await new Promise<number | string>((resolve) =>
      request(origin.replace('https:', 'http:'), (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', (err) => resolve(err.message))
        .end(),
    );
    assert.notEqual(plain, 200);

    const link = enrolLink(socket, 'carol');
    assert.ok(link.startsWith(`${origin}/enrol#`), link);
    // Chromium does not know the test CA: it is told to accept the certificate (the chain is checked above).
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(link);
    await page.getByText('Signed in as carol').waitFor();
    const cookie = (await context.cookies()).find((c) => c.name === 'mintfs_approver');
    assert.equal(cookie?.secure, true, 'the session cookie is Secure');
    assert.ok(cookie?.httpOnly);
    const held = send(gw, 'PUT', token, '{"merge_method":"squash"}');
    await page
      .getByRole('heading', { name: /PUT localhost\/repos\/acme\/widgets\/pulls\/7\/merge/ })
      .waitFor();
    await page.locator('li.card button.approve').focus();
    await page.keyboard.press('Enter');
    assert.equal((await held).status, 200);
    const decided = await pollUntil('the decision to be logged', () =>
      gw
        .stderr()
        .split('\n')
        .find((l) => l.includes('"event":"approval-decided"')),
    );
    assert.match(decided, /"approver":"web:carol"/);
  });
});
