/**
 * `github-repos widgets gadgets` and `github-perms contents=read metadata=read`:
 * what the token may ask of GitHub when the gateway mints an installation
 * token for it (a `githubApp` credential source). Like `uses`, they allow
 * every request themselves; the verdict reports their intersection and the
 * gateway asks GitHub for exactly that. A holder can append more of them,
 * which can only narrow: repositories are intersected, permissions are
 * intersected by name at the lower level.
 */
import type { Caveat, CaveatKind } from './kind.js';

/** A repository name as GitHub's token endpoint takes it (without its owner). */
export const GITHUB_REPOSITORY = /^[A-Za-z0-9_.-]{1,100}$/;
/** A permission name as GitHub spells them (contents, pull_requests, ...). */
export const GITHUB_PERMISSION = /^[a-z][a-z_]{0,63}$/;
export const GITHUB_LEVELS = ['read', 'write', 'admin'] as const;
export type GitHubLevel = (typeof GITHUB_LEVELS)[number];

export interface GitHubReposCaveat extends Caveat {
  readonly kind: 'github-repos';
  readonly repositories: readonly string[];
}

export interface GitHubPermsCaveat extends Caveat {
  readonly kind: 'github-perms';
  readonly permissions: Readonly<Record<string, GitHubLevel>>;
}

/** What a token's github caveats allow together; a field is absent when no caveat narrows it. */
export interface GitHubGrant {
  readonly repositories?: readonly string[] | undefined;
  readonly permissions?: Readonly<Record<string, GitHubLevel>> | undefined;
}

export const githubRepos: CaveatKind = {
  name: 'github-repos',
  parse(values, text, malformed) {
    if (values.some((name) => !GITHUB_REPOSITORY.test(name)))
      return malformed('expects repository names without their owner, such as widgets');
    const caveat: GitHubReposCaveat = {
      kind: 'github-repos',
      text,
      repositories: values,
      check: () => undefined,
    };
    return { ok: true, caveat };
  },
  fromGrant: (grant) =>
    grant.github?.repositories === undefined
      ? undefined
      : `github-repos ${grant.github.repositories.join(' ')}`,
};

export const githubPerms: CaveatKind = {
  name: 'github-perms',
  parse(values, text, malformed) {
    const permissions: Record<string, GitHubLevel> = {};
    for (const value of values) {
      const [name, level, extra] = value.split('=');
      if (
        extra !== undefined ||
        name === undefined ||
        !GITHUB_PERMISSION.test(name) ||
        !GITHUB_LEVELS.includes(level as GitHubLevel) ||
        Object.hasOwn(permissions, name)
      )
        return malformed('expects distinct NAME=read|write|admin values, such as contents=read');
      permissions[name] = level as GitHubLevel;
    }
    const caveat: GitHubPermsCaveat = {
      kind: 'github-perms',
      text,
      permissions,
      check: () => undefined,
    };
    return { ok: true, caveat };
  },
  fromGrant: (grant) =>
    grant.github?.permissions === undefined
      ? undefined
      : `github-perms ${Object.entries(grant.github.permissions)
          .map(([name, level]) => `${name}=${level}`)
          .join(' ')}`,
};

/** The intersection of a token's github caveats (undefined: it has none). */
export function githubGrantOf(caveats: readonly Caveat[]): GitHubGrant | undefined {
  let repositories: string[] | undefined;
  let permissions: Record<string, GitHubLevel> | undefined;
  for (const caveat of caveats) {
    if (caveat.kind === 'github-repos') {
      const names = (caveat as GitHubReposCaveat).repositories;
      // GitHub's repository names are case-insensitive.
      repositories =
        repositories === undefined
          ? [...new Set(names.map((name) => name.toLowerCase()))]
          : repositories.filter((name) => names.some((other) => other.toLowerCase() === name));
    } else if (caveat.kind === 'github-perms') {
      const next = (caveat as GitHubPermsCaveat).permissions;
      if (permissions === undefined) permissions = { ...next };
      else
        for (const [name, level] of Object.entries(permissions)) {
          const other = next[name];
          if (other === undefined) delete permissions[name];
          else permissions[name] = lowerLevel(level, other);
        }
    }
  }
  if (repositories === undefined && permissions === undefined) return undefined;
  return {
    ...(repositories === undefined ? {} : { repositories }),
    ...(permissions === undefined ? {} : { permissions }),
  };
}

export function lowerLevel(a: GitHubLevel, b: GitHubLevel): GitHubLevel {
  return GITHUB_LEVELS[Math.min(GITHUB_LEVELS.indexOf(a), GITHUB_LEVELS.indexOf(b))] as GitHubLevel;
}
