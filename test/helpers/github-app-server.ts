/**
 * A GitHub API stand-in over TLS for GitHub App installation tokens. It
 * checks what GitHub checks: the app JWT's RS256 signature against the app's
 * public key, its iat (not in the future), exp (not passed, at most 10
 * minutes after iat) and iss (the client id); a mint body whose repositories
 * and permissions the installation has. It records each mint's body, issues
 * 520-character `ghs_` tokens with a short expiry (valid only after
 * `activationMs`, as real new tokens can be), serves `/repos/OWNER/NAME...`
 * only to a live token listing NAME, and revokes on `DELETE /installation/token`.
 * With a git root it also serves git's smart HTTP at `/OWNER/NAME.git/...` as
 * github.com does: HTTP Basic with the installation token as the password,
 * the repository listed in the token, and `contents: write` for a push
 * (refused at discovery with GitHub's own message, which git shows its user).
 */
import {
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  verify,
  type KeyObject,
} from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serveGit } from './git-http-backend.js';
import type { Teardown } from './temp.js';
import type { TestPki } from './tls.js';

export const APP_CLIENT_ID = 'Iv23liMintfsTestApp';
export const INSTALLATION_ID = 4242;
export const OWNER = 'acme';

interface IssuedToken {
  readonly repositories: readonly string[];
  readonly permissions: Readonly<Record<string, string>>;
  readonly validFrom: number;
  readonly expiresAt: number;
  revoked: boolean;
}

export interface GitHubStandIn {
  readonly url: string;
  /** The app's private key (PEM), for the gateway's privateKey file. */
  readonly privateKeyPem: string;
  /** Bodies of accepted mints, in order. */
  readonly mints: Array<{ repositories?: string[]; permissions?: Record<string, string> }>;
  /** Mint requests refused, with why. */
  readonly refusals: string[];
  readonly tokens: Map<string, IssuedToken>;
  /** Authorization values /repos requests came with, in order. */
  readonly repoRequests: Array<{ path: string; status: number }>;
  /** git smart-HTTP requests (`/OWNER/NAME.git/...`) and what they were answered. */
  readonly gitRequests: Array<{ method: string; path: string; status: number }>;
  /** Seconds a token lives. */
  lifetimeSeconds: number;
  /** A new token answers 401 for this long. */
  activationMs: number;
  /** Verify JWTs against this key (a stand-in for a rotated app key). */
  publicKey: KeyObject;
}

/**
 * A gateway upstream (YAML lines under `upstreams:`) whose credential is an
 * installation token of the stand-in's app, read with its key at `keyFile`.
 */
export function githubAppUpstream(options: {
  readonly name: string;
  readonly host: string;
  readonly stand: GitHubStandIn;
  readonly pki: TestPki;
  readonly keyFile: string;
  /** The ceiling the gateway asks for, as YAML flow mappings. */
  readonly permissions: string;
  /** The `inject:` value, as YAML. */
  readonly inject: string;
}): string[] {
  const { stand, pki } = options;
  return [
    `  ${options.name}:`,
    `    url: ${stand.url}`,
    `    hosts: [${options.host}]`,
    '    credential:',
    '      githubApp:',
    `        clientId: ${APP_CLIENT_ID}`,
    `        privateKey: ${options.keyFile}`,
    `        installationId: ${INSTALLATION_ID}`,
    '        repositories: [widgets, gadgets]',
    `        permissions: ${options.permissions}`,
    `        api: ${stand.url}`,
    `        ca: ${pki.caFile}`,
    `    inject: ${options.inject}`,
    `    ca: ${pki.caFile}`,
  ];
}

export async function startGitHubStandIn(
  pki: TestPki,
  teardown: Teardown,
  installation: { repositories: string[]; permissions: Record<string, 'read' | 'write'> },
  options: { gitRoot?: string } = {},
): Promise<GitHubStandIn> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const state: GitHubStandIn = {
    url: '',
    privateKeyPem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    mints: [],
    refusals: [],
    tokens: new Map(),
    repoRequests: [],
    gitRequests: [],
    lifetimeSeconds: 3600,
    activationMs: 0,
    publicKey: createPublicKey(publicKey.export({ type: 'spki', format: 'pem' })),
  };
  const jwtProblem = (authorization: string | undefined): string | undefined => {
    const match = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(authorization ?? '');
    if (!match) return 'no JWT';
    const [, head, body, signature] = match as unknown as [string, string, string, string];
    const header = JSON.parse(Buffer.from(head, 'base64url').toString()) as { alg?: string };
    if (header.alg !== 'RS256') return 'alg';
    if (
      !verify(
        'sha256',
        Buffer.from(`${head}.${body}`),
        state.publicKey,
        Buffer.from(signature, 'base64url'),
      )
    )
      return 'signature';
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as {
      iat?: number;
      exp?: number;
      iss?: string;
    };
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.iat !== 'number' || claims.iat > now + 5) return 'iat';
    if (typeof claims.exp !== 'number' || claims.exp <= now || claims.exp - claims.iat > 600)
      return 'exp';
    if (claims.iss !== APP_CLIENT_ID) return 'iss';
    return undefined;
  };
  const liveToken = (authorization: string | undefined): IssuedToken | undefined => {
    const token = /^(?:Bearer|token) (\S+)$/.exec(authorization ?? '')?.[1];
    const issued = token === undefined ? undefined : state.tokens.get(token);
    const now = Date.now();
    if (!issued || issued.revoked || now < issued.validFrom || now >= issued.expiresAt)
      return undefined;
    return issued;
  };
  const server: Server = createServer({ cert: pki.cert, key: pki.key }, (req, res) => {
    const git = /^\/([^/]+)\/([^/]+)\.git(\/.*)$/.exec((req.url ?? '').split('?')[0] ?? '');
    if (git && options.gitRoot !== undefined) {
      serveGitAsGitHub(git[1] as string, git[2] as string, req, res, options.gitRoot);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body?: object) => {
        res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      const path = (req.url ?? '').split('?')[0] ?? '';
      if (req.method === 'POST' && path === `/app/installations/${INSTALLATION_ID}/access_tokens`) {
        const problem = jwtProblem(req.headers.authorization);
        if (problem !== undefined) {
          state.refusals.push(problem);
          return answer(401, { message: 'A JSON web token could not be decoded' });
        }
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as {
          repositories?: string[];
          permissions?: Record<string, string>;
        };
        const repositories = body.repositories ?? installation.repositories;
        if (repositories.some((name) => !installation.repositories.includes(name)))
          return answer(422, { message: 'There is at least one repository that does not exist' });
        const permissions = body.permissions ?? installation.permissions;
        for (const [name, level] of Object.entries(permissions))
          if (
            installation.permissions[name] === undefined ||
            (level === 'write' && installation.permissions[name] !== 'write')
          )
            return answer(422, {
              message: 'The permissions requested are not granted to this installation.',
            });
        state.mints.push(body);
        const token = `ghs_${randomBytes(400).toString('base64url').slice(0, 516)}`;
        const expiresAt = Date.now() + state.lifetimeSeconds * 1000;
        state.tokens.set(token, {
          repositories,
          permissions,
          validFrom: Date.now() + state.activationMs,
          expiresAt,
          revoked: false,
        });
        return answer(201, {
          token,
          expires_at: new Date(expiresAt).toISOString(),
          permissions,
          repository_selection: 'selected',
        });
      }
      const issued = liveToken(req.headers.authorization);
      if (req.method === 'DELETE' && path === '/installation/token') {
        if (!issued) return answer(401, { message: 'Bad credentials' });
        issued.revoked = true;
        return answer(204);
      }
      if (req.method === 'GET' && path === '/installation/repositories') {
        if (!issued) return answer(401, { message: 'Bad credentials' });
        return answer(200, {
          total_count: issued.repositories.length,
          repositories: issued.repositories.map((name) => ({ name })),
        });
      }
      const repo = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
      if (repo) {
        const allowed =
          issued !== undefined &&
          repo[1] === OWNER &&
          issued.repositories.includes(repo[2] as string);
        const status = issued === undefined ? 401 : allowed ? 200 : 404;
        state.repoRequests.push({ path, status });
        if (status !== 200)
          return answer(status, { message: status === 401 ? 'Bad credentials' : 'Not Found' });
        // Like a careless API: the credential echoed back (redaction must catch it).
        return answer(200, { full_name: `${repo[1]}/${repo[2]}`, seen: req.headers.authorization });
      }
      answer(404, { message: 'Not Found' });
    });
  });
  // github.com's smart HTTP: the token as Basic's password (any user name).
  const serveGitAsGitHub = (
    owner: string,
    name: string,
    req: IncomingMessage,
    res: ServerResponse,
    gitRoot: string,
  ) => {
    const url = new URL(req.url ?? '/', 'https://github.test');
    const push =
      url.pathname.endsWith('/git-receive-pack') ||
      url.searchParams.get('service') === 'git-receive-pack';
    const basic = /^Basic (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const password =
      basic === undefined ? undefined : Buffer.from(basic, 'base64').toString().split(':')[1];
    const issued = liveToken(password === undefined ? undefined : `token ${password}`);
    const refuse = (status: number, text: string, headers: Record<string, string> = {}) => {
      state.gitRequests.push({ method: req.method ?? '', path: url.pathname, status });
      req.resume();
      res.writeHead(status, { 'content-type': 'text/plain', ...headers });
      res.end(text);
    };
    if (!issued)
      return refuse(401, 'Invalid username or token.\n', {
        'www-authenticate': 'Basic realm="GitHub"',
      });
    if (owner !== OWNER || !issued.repositories.includes(name))
      return refuse(404, 'Repository not found.\n');
    const contents = issued.permissions['contents'];
    if (contents === undefined || (push && contents !== 'write'))
      return refuse(403, `Permission to ${owner}/${name}.git denied to mintfs-test[bot].\n`);
    state.gitRequests.push({ method: req.method ?? '', path: url.pathname, status: 200 });
    serveGit(gitRoot, url.pathname.slice(`/${owner}`.length), req, res, 'mintfs-test[bot]');
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.add(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, { url: `https://localhost:${port}` });
}
