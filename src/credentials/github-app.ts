/**
 * `{ githubApp: { clientId, privateKey, installationId, repositories, permissions, api?, ca? } }`:
 * GitHub App installation tokens, narrowed to repositories and permissions.
 *
 * The app authenticates with a JWT (RS256, iat backdated 60 s against clock
 * skew, exp 9 minutes on, iss the client id) signed by its private key (a
 * trusted 0600 file), and asks `POST {api}/app/installations/{id}/access_tokens`
 * for a token limited to `repositories` and `permissions` — the ceiling the
 * operator wrote, never the installation's whole reach: a list that is
 * missing or empty is refused at load unless it says `all`.
 *
 * A new installation token can answer 401 for a moment; it is tried against
 * `GET {api}/installation/repositories` until it is accepted (a few
 * seconds), so no request is sent with a token GitHub does not know yet.
 * Tokens are revoked with `DELETE {api}/installation/token`.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { resolve } from 'node:path';
import * as z from 'zod';
import { readSecretFile } from './file.js';
import { HttpsUrl } from './schema-parts.js';
import {
  GITHUB_LEVELS,
  GITHUB_PERMISSION,
  GITHUB_REPOSITORY,
  lowerLevel,
  type GitHubLevel,
} from '../token/caveats.js';
import type { CredentialScope, Minted, SourceKind, TokenScope } from './source.js';
import { tokenService } from './token-service.js';
import { checkCredentialValue, refusalFor } from './value.js';

const REPOSITORY = GITHUB_REPOSITORY;
const PERMISSION = GITHUB_PERMISSION;
const LEVELS = GITHUB_LEVELS;

export const GitHubRepositoriesSchema = z
  .union(
    [
      z.literal('all'),
      z
        .array(
          z
            .string()
            .regex(REPOSITORY, 'must be a repository name without its owner, such as widgets'),
        )
        .max(500, 'GitHub narrows a token to at most 500 repositories'),
    ],
    {
      error: (issue) =>
        issue.input === undefined
          ? 'required'
          : Array.isArray(issue.input)
            ? undefined
            : 'must be a list of repository names, or `all`',
    },
  )
  .refine(
    (repositories) => repositories === 'all' || repositories.length > 0,
    'must list at least one repository, or say `all` for every repository of the installation',
  );

export const GitHubPermissionsSchema = z
  .record(
    z.string().regex(PERMISSION, 'must be a GitHub permission name such as contents'),
    z.enum(LEVELS),
  )
  .refine(
    (permissions) => Object.keys(permissions).length > 0,
    'must name at least one permission',
  );

const GitHubAppSchema = z.strictObject({
  clientId: z
    .string()
    .regex(/^[A-Za-z0-9.]{1,64}$/, "must be the app's client id (Iv23li...) or app id")
    .describe("The app's client id (or its numeric app id): the JWT's iss"),
  privateKey: z
    .string()
    .min(1)
    .describe("File holding the app's private key (PEM, mode 0600, trusted path)"),
  installationId: z
    .union([z.number().int().positive(), z.string().regex(/^[1-9][0-9]{0,19}$/)])
    .transform(String)
    .describe('The installation of the app on the organisation or account'),
  repositories: GitHubRepositoriesSchema.describe(
    'The repositories a token may reach at most (names without the owner), or `all` (every repository of the installation): required, so a token is never unnarrowed by omission',
  ),
  permissions: GitHubPermissionsSchema.describe(
    'The permissions a token may have at most, such as { contents: write, metadata: read }',
  ),
  api: HttpsUrl.prefault('https://api.github.com').describe(
    'The REST API base (GitHub Enterprise: https://HOST/api/v3)',
  ),
  ca: z.string().min(1).optional().describe('Extra CA certificates (PEM) to trust for the API'),
});

const GitHubAppSourceSchema = z.strictObject({
  githubApp: GitHubAppSchema.describe(
    'GitHub App installation tokens, narrowed per token (docs/credentials.md)',
  ),
});
type GitHubAppSource = z.output<typeof GitHubAppSourceSchema>;
export type GitHubAppConfig = GitHubAppSource['githubApp'];

/** Time a fresh token gets to become valid before the mint is refused. */
const ACTIVATION_MS = 5000;
const TIMEOUT_MS = 10_000;

const AccessTokenAnswer = z.looseObject({
  token: z.string().min(1),
  expires_at: z.string().refine((text) => !Number.isNaN(Date.parse(text))),
});

export const githubAppSource: SourceKind<GitHubAppSource> = {
  key: 'githubApp',
  schema: GitHubAppSourceSchema,
  resolvePaths: ({ githubApp }, base) => ({
    githubApp: {
      ...githubApp,
      privateKey: resolve(base, githubApp.privateKey),
      ...(githubApp.ca === undefined ? {} : { ca: resolve(base, githubApp.ca) }),
    },
  }),
  open: ({ githubApp: config }, { service, clock }) => {
    const keyFail = refusalFor(service, `githubApp ${config.privateKey}`);
    const api = refusalFor(service, `githubApp ${config.api}`);
    const readKey = (): KeyObject => {
      const pem = readSecretFile(config.privateKey, keyFail);
      try {
        const key = createPrivateKey(pem);
        if (key.asymmetricKeyType !== 'rsa') throw new Error('not rsa');
        return key;
      } catch {
        throw keyFail('is not an RSA private key in PEM');
      }
    };
    readKey();
    const client = tokenService(TIMEOUT_MS, config.ca, api);
    const base = config.api.replace(/\/$/, '');
    const headers = (authorization: string): Record<string, string> => ({
      authorization,
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      'user-agent': 'mintfs-gateway',
    });

    return {
      kind: 'minted',
      minter: {
        scope: (token) => githubScopeFor(config, token),
        mint: async (request): Promise<Minted> => {
          const scope = request.scope.github;
          // Only scopes made by githubScopeFor reach here; anything else is a bug, refused.
          if (scope === undefined) throw api('was asked for a token without a scope');
          const jwt = appJwt(config.clientId, readKey(), clock());
          const answer = await client.request(
            `${base}/app/installations/${config.installationId}/access_tokens`,
            {
              method: 'POST',
              headers: { ...headers(`Bearer ${jwt}`), 'content-type': 'application/json' },
              body: JSON.stringify(scope),
            },
            api,
          );
          if (answer.status !== 201) throw api(`answered ${answer.status} to the token request`);
          let parsed: z.output<typeof AccessTokenAnswer>;
          try {
            parsed = AccessTokenAnswer.parse(JSON.parse(answer.body));
          } catch {
            throw api('answered 201 without a token and its expiry');
          }
          const value = checkCredentialValue(parsed.token, (reason) =>
            api(`answered a token that ${reason}`),
          );
          // A new token can be unknown to GitHub for a moment: tried until accepted.
          const until = clock() + ACTIVATION_MS;
          for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
            const probe = await client.request(
              `${base}/installation/repositories`,
              { method: 'GET', headers: headers(`Bearer ${value}`) },
              api,
            );
            if (probe.status === 200) break;
            if (probe.status !== 401 || clock() + wait > until)
              throw api(`answered ${probe.status} to a new installation token`);
            await new Promise((resolve) => setTimeout(resolve, wait));
          }
          return { value, expiresAt: Date.parse(parsed.expires_at), handle: 'installation-token' };
        },
        revoke: async (minted) => {
          const answer = await client.request(
            `${base}/installation/token`,
            { method: 'DELETE', headers: headers(`Bearer ${minted.value}`) },
            api,
          );
          // 401: already expired or revoked, which is what was asked.
          if (answer.status !== 204 && answer.status !== 401)
            throw api(`answered ${answer.status} to a token revocation`);
        },
        close: () => client.close(),
      },
    };
  },
};

/**
 * The token request for a token's github caveats: what they allow, checked
 * against the ceiling. A token asking beyond it (a repository or a permission
 * level the upstream does not allow) is refused, not silently cut down, and
 * one that narrows to nothing is refused too: GitHub reads an empty list as
 * "everything the installation has".
 */
export function githubScopeFor(
  config: Pick<GitHubAppConfig, 'repositories' | 'permissions'>,
  token: TokenScope,
): CredentialScope | string {
  const wanted = token.github;
  let repositories: readonly string[] | undefined;
  if (wanted?.repositories === undefined)
    repositories = config.repositories === 'all' ? undefined : config.repositories;
  else {
    if (wanted.repositories.length === 0)
      return "the token's github-repos caveats allow no repository";
    if (config.repositories !== 'all') {
      const ceiling = new Set(config.repositories.map((name) => name.toLowerCase()));
      const beyond = wanted.repositories.find((name) => !ceiling.has(name.toLowerCase()));
      if (beyond !== undefined)
        return `repository ${beyond} is outside this upstream's githubApp.repositories`;
    }
    repositories = wanted.repositories;
  }
  let permissions: Readonly<Record<string, GitHubLevel>> = config.permissions;
  if (wanted?.permissions !== undefined) {
    for (const [name, level] of Object.entries(wanted.permissions)) {
      const most = config.permissions[name];
      if (most === undefined || lowerLevel(level, most) !== level)
        return `permission ${name}=${level} is outside this upstream's githubApp.permissions`;
    }
    if (Object.keys(wanted.permissions).length === 0)
      return "the token's github-perms caveats allow no permission";
    permissions = wanted.permissions;
  }
  const sortedPermissions = Object.fromEntries(
    Object.entries(permissions).sort(([a], [b]) => a.localeCompare(b)),
  );
  const sortedRepositories =
    repositories === undefined
      ? undefined
      : [...new Set(repositories.map((n) => n.toLowerCase()))].sort();
  const github = {
    ...(sortedRepositories === undefined ? {} : { repositories: sortedRepositories }),
    permissions: sortedPermissions,
  };
  return { key: JSON.stringify(github), github };
}

/** An app JWT (RS256): iat 60 s back for clock skew, exp 9 minutes on (GitHub allows 10). */
export function appJwt(clientId: string, key: KeyObject, nowMs: number): string {
  const now = Math.floor(nowMs / 1000);
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const data = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ iat: now - 60, exp: now + 540, iss: clientId })}`;
  return `${data}.${sign('sha256', Buffer.from(data), key).toString('base64url')}`;
}
