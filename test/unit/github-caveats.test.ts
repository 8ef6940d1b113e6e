/**
 * The github-repos and github-perms caveats: parsing, their intersection
 * (attenuation only narrows), minting from a profile, and the token request
 * the gateway makes of them against an upstream's ceiling.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { githubScopeFor } from '../../src/credentials/github-app.js';
import { parseProfile } from '../../src/profile/load-profile.js';
import {
  githubGrantOf,
  grantCaveats,
  parseCaveat,
  type Caveat,
  type GitHubLevel,
} from '../../src/token/caveats.js';

function caveats(...texts: string[]): Caveat[] {
  return texts.map((text) => {
    const parsed = parseCaveat(text);
    assert.ok(parsed.ok, text);
    return parsed.caveat;
  });
}

/** The refusal reason a scope computation returned (fails when it returned a scope). */
function refusalOf(scope: ReturnType<typeof githubScopeFor>): string {
  assert.equal(typeof scope, 'string', 'expected a refusal');
  return scope as string;
}

describe('github caveats', () => {
  it('malformed github caveats are refused, never skipped', () => {
    for (const text of [
      'github-repos acme/widgets',
      'github-perms contents',
      'github-perms contents=maintain',
      'github-perms contents=read contents=write',
      'github-perms Contents=read',
      'github-perms contents=read=write',
    ]) {
      const parsed = parseCaveat(text);
      assert.ok(!parsed.ok, text);
      assert.equal(parsed.code, 'ERR_CAVEAT_MALFORMED');
    }
  });

  it('appended caveats intersect: repositories by name (case-insensitive), permissions at the lower level', () => {
    assert.equal(githubGrantOf(caveats('service github')), undefined);
    assert.deepEqual(
      githubGrantOf(
        caveats(
          'github-repos widgets Gadgets',
          'github-perms contents=write issues=write',
          'github-repos gadgets other',
          'github-perms contents=read metadata=read',
        ),
      ),
      { repositories: ['gadgets'], permissions: { contents: 'read' } },
    );
  });

  it('an appended caveat never widens (property)', () => {
    const names = fc.constantFrom('a', 'b', 'c', 'd');
    const levels = fc.constantFrom<GitHubLevel>('read', 'write', 'admin');
    const perms = fc.dictionary(fc.constantFrom('contents', 'issues', 'metadata'), levels, {
      minKeys: 1,
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(names, { minLength: 1 }),
        perms,
        fc.uniqueArray(names, { minLength: 1 }),
        perms,
        (r1, p1, r2, p2) => {
          const text = (p: Record<string, GitHubLevel>) =>
            `github-perms ${Object.entries(p)
              .map(([n, l]) => `${n}=${l}`)
              .join(' ')}`;
          const one = githubGrantOf(caveats(`github-repos ${r1.join(' ')}`, text(p1)));
          const two = githubGrantOf(
            caveats(
              `github-repos ${r1.join(' ')}`,
              text(p1),
              `github-repos ${r2.join(' ')}`,
              text(p2),
            ),
          );
          for (const repo of two?.repositories ?? []) assert.ok(one?.repositories?.includes(repo));
          const order = ['read', 'write', 'admin'];
          for (const [name, level] of Object.entries(two?.permissions ?? {})) {
            const before = one?.permissions?.[name];
            assert.ok(before !== undefined && order.indexOf(level) <= order.indexOf(before));
          }
        },
      ),
    );
  });

  it("a profile's github field is minted as caveats", () => {
    const profile = parseProfile(
      `agent: a
files:
  github/token:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/repos/acme/**"]
    github:
      repositories: [widgets, gadgets]
      permissions: { contents: read, pull_requests: write }
`,
      'test.yaml',
    );
    const spec = profile.files['github/token'];
    assert.ok(spec);
    const minted = grantCaveats(
      {
        agent: 'a',
        service: 'github',
        hosts: spec.hosts,
        methods: spec.methods,
        paths: spec.paths,
        ttlMs: 60_000,
        github: spec.github,
      },
      new Date(),
    );
    assert.ok(minted.includes('github-repos widgets gadgets'));
    assert.ok(minted.includes('github-perms contents=read pull_requests=write'));
  });

  it('the token request never exceeds the ceiling and never goes out empty', () => {
    const ceiling = {
      repositories: ['widgets', 'gadgets'],
      permissions: { contents: 'write', metadata: 'read' } as Record<string, GitHubLevel>,
    };
    assert.deepEqual(githubScopeFor(ceiling, {}), {
      key: JSON.stringify({
        repositories: ['gadgets', 'widgets'],
        permissions: { contents: 'write', metadata: 'read' },
      }),
      github: {
        repositories: ['gadgets', 'widgets'],
        permissions: { contents: 'write', metadata: 'read' },
      },
    });
    assert.match(
      refusalOf(githubScopeFor(ceiling, { github: { repositories: ['secret'] } })),
      /secret is outside/,
    );
    assert.match(
      refusalOf(githubScopeFor(ceiling, { github: { permissions: { metadata: 'write' } } })),
      /metadata=write is outside/,
    );
    assert.match(
      refusalOf(githubScopeFor(ceiling, { github: { repositories: [] } })),
      /no repository/,
    );
    assert.match(
      refusalOf(githubScopeFor(ceiling, { github: { permissions: {} } })),
      /no permission/,
    );
    const all = githubScopeFor(
      { ...ceiling, repositories: 'all' },
      { github: { repositories: ['Any'] } },
    );
    assert.ok(typeof all !== 'string');
    assert.deepEqual(all.github?.repositories, ['any']);
    // Equal scopes share a cache key whatever their order.
    const a = githubScopeFor(ceiling, { github: { repositories: ['widgets', 'gadgets'] } });
    const b = githubScopeFor(ceiling, { github: { repositories: ['gadgets', 'widgets'] } });
    assert.ok(typeof a !== 'string' && typeof b !== 'string' && a.key === b.key);
  });
});
