/**
 * Attacks on approval found in review: a held request the condition should
 * name but misses (case), a preview that hides what the approver judges or
 * leaks the end of a token, and agent-chosen text that repaints the
 * approver's terminal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bodyPreview } from '../../src/approval/service.js';
import { formatPending } from '../../src/cli/commands/approvals.js';
import { mintToken, type TokenGrant } from '../../src/token/mint.js';
import { verifyToken } from '../../src/token/verify.js';
import { GRANT, NOW, keyLookup, newKey } from '../helpers/tokens.js';

const WIDE: TokenGrant = {
  ...GRANT,
  methods: ['GET', 'PUT', 'DELETE'],
  paths: ['/repos/**'],
  approval: { methods: ['PUT', 'DELETE'], paths: ['/repos/acme/widgets/**'] },
};

function mint(grant: TokenGrant) {
  const key = newKey();
  return {
    key,
    token: mintToken(grant, { key, now: NOW, tokenId: 'AAAAAAAAAAAAAAAAAAAAAA' }).token,
  };
}

describe('approval conditions fail closed on case', () => {
  it('a path in another case (GitHub owners and repositories ignore case) still waits', () => {
    const { key, token } = mint(WIDE);
    const context = { keyById: keyLookup(key), now: NOW };
    for (const rawPath of [
      '/repos/acme/widgets/git/refs/heads/main',
      '/repos/ACME/widgets/git/refs/heads/main',
      '/repos/Acme/Widgets/git/refs/heads/main',
      '/repos/acme/WIDGETS/contents/README.md',
    ]) {
      const verdict = verifyToken(
        token,
        { service: 'github', host: 'api.github.com', method: 'DELETE', rawPath },
        context,
      );
      assert.equal(!verdict.allowed && verdict.code, 'ERR_APPROVAL_REQUIRED', rawPath);
    }
    // Paths outside the condition still go at once.
    const other = verifyToken(
      token,
      {
        service: 'github',
        host: 'api.github.com',
        method: 'DELETE',
        rawPath: '/repos/acme/gadgets/x',
      },
      context,
    );
    assert.equal(other.allowed, true);
  });
});

describe('the preview an approver judges', () => {
  it('shows a commit SHA and other long words: only a mintfs token is masked', () => {
    const sha = 'b3f1c0de9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d';
    const content = 'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ';
    const preview = bodyPreview(Buffer.from(JSON.stringify({ sha, force: true, content })));
    assert.ok(preview.includes(sha), preview);
    assert.ok(preview.includes(content), preview);

    const { token } = mint(WIDE);
    const withToken = bodyPreview(Buffer.from(`{"note":"${token}"}`));
    assert.ok(!withToken.includes(token.slice(-40)), withToken);
    assert.match(withToken, /a mintfs token, \d+ characters, masked/);
  });

  it('never shows the end of a token the cut falls inside (its signature)', () => {
    const { token } = mint(WIDE);
    const body = Buffer.from(`${'x '.repeat(1000)}${token} tail`);
    // The cut falls a few characters before the token's end.
    const preview = bodyPreview(body, 2000 + token.length - 3);
    assert.ok(!preview.includes(token.slice(-46, -3)), preview);
    assert.ok(!preview.includes(token.slice(0, 60)), preview);
  });

  it('escapes what would repaint the terminal: ESC, CR, bidi overrides', () => {
    const body = Buffer.from('{"title":"ok"}\r\u001b[2K{"title":"harmless"}\u202edelete\u202c');
    const preview = bodyPreview(body);
    assert.ok(!/[\u0000-\u0008\u000b-\u001f\u202e\u202c]/.test(preview), JSON.stringify(preview));
    assert.match(preview, /\\u\{1b\}/);
    assert.match(preview, /\\u\{202e\}/);
  });

  it('the terminal listing shows each held body, and no agent-chosen field carries a control character', () => {
    const text = formatPending([
      {
        id: 'apr_0123456789ab',
        agent: 'coder',
        method: 'POST',
        host: 'api.github.com',
        path: '/repos/acme/widgets/pulls/7/merge',
        query: '?x=\u001b[1A',
        bodyBytes: 40,
        bodyPreview: '{"merge_method":"squash"}\r\u001b[2Kfine',
        timesOutAt: '2026-12-07T06:00:00.000Z',
      },
    ]);
    assert.match(text, /squash/);
    assert.ok(!/[\u0000-\u0009\u000b-\u001f]/.test(text), JSON.stringify(text));
  });
});
