/**
 * Property tests for the parsers a token holder feeds directly: caveat text
 * and the headers a token is taken from. Whatever the input, they return a
 * value or a refusal (never throw), and a caveat that parses never allows a
 * request its own text does not allow.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { extractToken } from '../../src/gateway/token-extract.js';
import { caveatLimitProblem, parseCaveat, type CaveatRequest } from '../../src/token/caveats.js';
import { authenticateToken } from '../../src/token/verify.js';
import { newKey } from '../helpers/tokens.js';

const KINDS = ['time-before', 'service', 'agent', 'host', 'method', 'path', 'reader', 'Path', 'x'];
const word = fc.oneof(
  fc.stringMatching(/^[ -~]{0,12}$/),
  fc.constantFrom(
    '/**',
    '/*',
    '/a/**/b',
    'GET',
    'github',
    'api.github.com',
    '2026-11-22T01:20:00Z',
    'uid=1',
    '',
  ),
);
const caveatText = fc
  .tuple(
    fc.constantFrom(...KINDS),
    fc.array(word, { maxLength: 20 }),
    fc.constantFrom(' ', '  ', '\t', ''),
  )
  .map(([kind, values, sep]) => [kind, ...values].join(sep === '' ? ' ' : sep));

const REQUEST: CaveatRequest = {
  service: 'github',
  host: 'api.github.com',
  method: 'GET',
  pathSegments: ['repos', 'acme', 'widgets'],
  now: new Date('2026-11-22T01:00:00Z'),
};

describe('caveat parsing (properties)', () => {
  it('any text parses to a caveat or a refusal with a code, never a throw', () => {
    fc.assert(
      fc.property(fc.oneof(caveatText, fc.string({ unit: 'binary', maxLength: 300 })), (text) => {
        const parsed = parseCaveat(text);
        if (!parsed.ok) {
          assert.match(parsed.code, /^ERR_CAVEAT_(MALFORMED|UNKNOWN)$/);
          assert.doesNotMatch(parsed.reason, /[\n\r]/);
          return;
        }
        // A parsed list caveat allows only values it names.
        const verdict = parsed.caveat.check(REQUEST);
        if (verdict === undefined && ['service', 'host', 'method'].includes(parsed.caveat.kind)) {
          const fields: Record<string, string> = {
            service: 'github',
            host: 'api.github.com',
            method: 'GET',
          };
          const field = fields[parsed.caveat.kind] as string;
          assert.ok(text.split(' ').slice(1).includes(field), text);
        }
        assert.equal(caveatLimitProblem(text), undefined, 'a parsed caveat is inside the limits');
      }),
      { numRuns: 5000 },
    );
  });

  it('list values past the limit are refused whatever they are', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('service', 'host', 'method', 'path'),
        fc.integer({ min: 17, max: 60 }),
        (kind, n) => {
          const value = { service: 'github', host: 'a.example', method: 'GET', path: '/a' }[kind];
          const parsed = parseCaveat(`${kind} ${Array(n).fill(value).join(' ')}`);
          assert.equal(parsed.ok, false);
        },
      ),
    );
  });
});

describe('token extraction (properties)', () => {
  const key = newKey();
  it('random header values never throw and never yield a token that authenticates', () => {
    fc.assert(
      fc.property(
        fc.record({
          authorization: fc.option(
            fc.oneof(
              fc.string({ maxLength: 200 }),
              fc.constantFrom('Bearer ', 'Basic Og==', 'Basic', 'token  x'),
            ),
          ),
          'proxy-authorization': fc.option(fc.string({ maxLength: 200 })),
        }),
        (headers) => {
          const clean = Object.fromEntries(
            Object.entries(headers).filter(([, v]) => v !== null),
          ) as Record<string, string>;
          const found = extractToken(clean);
          if (found === undefined) return;
          assert.ok(found.token.length > 0);
          const verdict = authenticateToken(found.token, () => key);
          assert.ok('allowed' in verdict && verdict.allowed === false);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
