import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCaveat, type CaveatRequest } from '../../src/token/caveats.js';

const REQUEST: CaveatRequest = {
  service: 'github',
  host: 'api.github.com',
  method: 'GET',
  pathSegments: ['repos', 'acme', 'widgets'],
  now: new Date('2026-11-22T01:00:00Z'),
};

function check(text: string, request: Partial<CaveatRequest> = {}): string | undefined {
  const parsed = parseCaveat(text);
  assert.ok(parsed.ok, `${text} should parse`);
  return parsed.caveat.check({ ...REQUEST, ...request });
}

describe('caveats', () => {
  it('lists are space-separated alternatives', () => {
    assert.equal(check('method GET HEAD'), undefined);
    assert.equal(check('method POST PUT'), 'method GET is not allowed');
    assert.equal(check('host example.com api.github.com'), undefined);
    assert.equal(check('service gitlab github'), undefined);
    assert.equal(check('path /other/** /repos/*/widgets'), undefined);
  });

  it('time-before allows only strictly earlier instants', () => {
    assert.equal(check('time-before 2026-11-22T01:00:01Z'), undefined);
    assert.match(check('time-before 2026-11-22T01:00:00Z') ?? '', /expired/);
    assert.equal(check('time-before 2026-11-22T01:00:00.5Z'), undefined);
  });

  it('agent never refuses: it is reported, not enforced', () => {
    assert.equal(check('agent someone'), undefined);
  });

  const unknown = ['ip 10.0.0.1', 'Service github', 'time-after 2026-01-01T00:00:00Z', 'anything'];
  for (const text of unknown) {
    it(`refuses unknown caveat ${JSON.stringify(text)}`, () => {
      const parsed = parseCaveat(text);
      assert.equal(parsed.ok ? '' : parsed.code, 'ERR_CAVEAT_UNKNOWN');
    });
  }

  const malformed = [
    'method',
    'method  GET',
    'method GET ',
    'method get',
    'method FETCH',
    'time-before 2026-11-22',
    'time-before 2026-11-22T01:00:00+01:00',
    'time-before 2026-13-40T01:00:00Z',
    'time-before 2026-11-22T01:00:00Z 2026-11-22T02:00:00Z',
    'host API.github.com',
    'host api.github.com:443',
    'service GitHub',
    'agent a b',
    'path repos/**',
    'path /a/../b',
    'path /a/b**',
  ];
  for (const text of malformed) {
    it(`refuses malformed caveat ${JSON.stringify(text)}`, () => {
      const parsed = parseCaveat(text);
      assert.equal(parsed.ok ? '' : parsed.code, 'ERR_CAVEAT_MALFORMED');
    });
  }
});
