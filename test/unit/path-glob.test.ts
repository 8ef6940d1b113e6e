import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matchPathGlob, parsePathGlob, pathGlobProblem } from '../../src/token/path-glob.js';
import { normaliseRequestPath } from '../../src/token/request-path.js';

function matches(glob: string, path: string): boolean {
  const normalised = normaliseRequestPath(path);
  assert.ok(normalised.ok, `${path} should normalise`);
  return matchPathGlob(parsePathGlob(glob), normalised.segments);
}

describe('path globs', () => {
  it('** matches zero or more whole segments', () => {
    assert.equal(matches('/repos/acme/widgets/**', '/repos/acme/widgets'), true);
    assert.equal(matches('/repos/acme/widgets/**', '/repos/acme/widgets/'), true);
    assert.equal(matches('/repos/acme/widgets/**', '/repos/acme/widgets/pulls'), true);
    assert.equal(matches('/repos/acme/widgets/**', '/repos/acme/widgets/pulls/1/files'), true);
    assert.equal(matches('/repos/**/pulls', '/repos/acme/widgets/pulls'), true);
    assert.equal(matches('/repos/**/pulls', '/repos/pulls'), true);
  });

  it('** does not match a longer sibling name', () => {
    assert.equal(matches('/repos/acme/widgets/**', '/repos/acme/widgets-private'), false);
    assert.equal(matches('/repos/acme/widgets/**', '/repos/acme/widgetsX/pulls'), false);
    assert.equal(matches('/repos/acme/widgets/**', '/repos/acme'), false);
  });

  it('* matches within one segment only', () => {
    assert.equal(matches('/repos/acme/*', '/repos/acme/widgets'), true);
    assert.equal(matches('/repos/acme/*', '/repos/acme/widgets/pulls'), false);
    assert.equal(matches('/repos/acme/*.git', '/repos/acme/widgets.git'), true);
    assert.equal(matches('/repos/acme/*.git', '/repos/acme/widgets.gi'), false);
    assert.equal(matches('/a/x*y*z', '/a/xyz'), true);
    assert.equal(matches('/a/x*y*z', '/a/xzy'), false);
    assert.equal(matches('/a/ab*ba', '/a/aba'), false);
  });

  it('matches decoded segments', () => {
    assert.equal(matches('/files/a:b', '/files/a%3Ab'), true);
    assert.equal(matches('/files/*', '/files/a%20b'), true);
  });

  it('/ matches only the root, /** everything', () => {
    assert.equal(matches('/', '/'), true);
    assert.equal(matches('/', '/x'), false);
    assert.equal(matches('/**', '/x/y'), true);
  });

  it('rejects globs that could never be meant', () => {
    assert.match(pathGlobProblem('repos/**') ?? '', /start with \//);
    assert.match(pathGlobProblem('/repos//x') ?? '', /empty segment/);
    assert.match(pathGlobProblem('/repos/../x') ?? '', /\.\./);
    assert.match(pathGlobProblem('/repos/a**') ?? '', /whole segment/);
    assert.match(pathGlobProblem('/repos/a b') ?? '', /not allowed/);
    assert.match(pathGlobProblem('/repos/%2e') ?? '', /not allowed/);
    assert.equal(pathGlobProblem('/repos/acme/widgets/**'), undefined);
  });
});

describe('request path normalisation', () => {
  const refused: Array<[string, RegExp]> = [
    ['/repos/acme/widgets/../secret', /dot segment/],
    ['/repos/acme/widgets/./x', /dot segment/],
    ['/repos/acme/widgets/%2e%2e/secret', /unreserved/],
    ['/repos/acme/widgets/%2E%2e/secret', /unreserved/],
    ['/repos/acme/widgets/.%2e/secret', /unreserved/],
    ['/repos/acme/widgets/..;/..;/evil', /;/],
    ['/repos/acme/widgets/%2e%2e;/evil', /unreserved|;/],
    ['/repos/acme/widgets/%2E%2E%3B/evil', /unreserved|;/],
    ['/repos/acme/widgets/x;jsessionid=1', /;/],
    ['/repos/acme/widgets/%252e%252e/evil', /%25/],
    ['/repos/acme/widgets/%25', /%25/],
    ['/repos/%61cme/widgets', /unreserved/],
    ['/repos/acme/widgets/...', /dot segment/],
    ['/repos/acme/widgets/..%20/evil', /dot segment/],
    ['/repos/acme/widgets/%EF%BC%8E%EF%BC%8E/evil', /NFKC/],
    ['/repos/acme/widgets/a%EF%BC%8Fb', /NFKC/],
    ['/repos/acme/%C0%AE%C0%AE/evil', /%-escape/],
    ['/repos/acme/%u002e%u002e/evil', /%-escape/],
    ['/repos/a b', /control|space/],
    [`/${'a/'.repeat(129)}`, /more than 128 segments/],
    ['/repos/acme%2fwidgets', /encoded slash/],
    ['/repos/acme%5Cwidgets', /encoded slash/],
    ['/repos/acme\\widgets', /backslash/],
    ['/repos//acme/widgets', /empty segment/],
    ['/repos/acme/%zz', /%-escape/],
    ['/repos/acme/%00', /control/],
    ['/repos/a%0a', /control/],
    ['repos/acme', /start with/],
    ['/repos?x=1', /query/],
  ];
  for (const [path, reason] of refused) {
    it(`refuses ${JSON.stringify(path)}`, () => {
      const result = normaliseRequestPath(path);
      assert.equal(result.ok, false);
      assert.match(result.ok ? '' : result.reason, reason);
    });
  }

  it('keeps ordinary paths and decodes escapes', () => {
    assert.deepEqual(normaliseRequestPath('/repos/acme/widgets'), {
      ok: true,
      segments: ['repos', 'acme', 'widgets'],
    });
    assert.deepEqual(normaliseRequestPath('/a%3Ab'), { ok: true, segments: ['a:b'] });
    assert.deepEqual(normaliseRequestPath('/caf%C3%A9'), { ok: true, segments: ['café'] });
    assert.deepEqual(normaliseRequestPath('/'), { ok: true, segments: [] });
    assert.deepEqual(normaliseRequestPath('/.well-known/x'), {
      ok: true,
      segments: ['.well-known', 'x'],
    });
  });
});
