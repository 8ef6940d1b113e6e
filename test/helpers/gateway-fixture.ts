/**
 * A real `mintfs gateway` in a child process, in front of a real HTTPS test
 * upstream, with a keyring and a credential file; torn down at test end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request, type Agent } from 'node:http';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { initKeyring, loadKeyring, type Keyring } from '../../src/keys/keyring.js';
import { newTokenId } from '../../src/token/identifier.js';
import { mintToken, type TokenGrant } from '../../src/token/mint.js';
import { writeFileAtomic } from '../../src/keys/atomic-write.js';
import { initCa } from '../../src/intercept/ca.js';
import { CLI } from './paths.js';
import { pollUntil } from './poll.js';
import { tempDir, teardownOf, type Teardown } from './temp.js';
import { makeTestPki, type TestPki } from './tls.js';
import { startUpstream, type TestUpstream } from './upstream.js';

export const CREDENTIAL = 'ghp_REALSECRETcredential0123456789abcdef';

/** A mount profile whose token the fixture's gateway accepts for GET /repos/acme/widgets/**. */
export function upstreamProfile(agent: string, extraHeader = ''): string {
  return `agent: ${agent}
${extraHeader}files:
  github/token:
    service: github
    hosts: [localhost]
    methods: [GET]
    paths: ["/repos/acme/widgets/**"]
`;
}

/** GET with a bearer token through a keep-alive agent (faster than curl for request loops). */
export function bearerGet(
  agent: Agent,
  url: string,
  token: string,
): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface GatewayFixture {
  readonly dir: string;
  readonly keysDir: string;
  readonly credentialFile: string;
  readonly socketPath: string;
  /** http://127.0.0.1:PORT */
  readonly base: string;
  readonly port: number;
  readonly upstream: TestUpstream;
  readonly pki: TestPki;
  /** With `intercept`: the interception CA's certificate file (what sandboxes trust). */
  readonly interceptCa: string | undefined;
  readonly child: ChildProcess;
  keyring(): Keyring;
  stderr(): string;
  /** Parsed JSON log lines with event "request". */
  requestLogs(): Array<Record<string, unknown>>;
  /** A token for the test upstream, by default allowing GET/HEAD/POST under /repos/acme/widgets/**. */
  token(grant?: Partial<TokenGrant>, now?: Date): string;
}

export interface GatewayFixtureOptions {
  /** YAML lines under `limits:`. */
  readonly limits?: string;
  /** YAML lines at the top level of the config (`workers: 2`). */
  readonly topLevel?: string;
  /** YAML lines appended under `upstreams:` (indented by the caller). */
  readonly extraUpstreams?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Serve `git http-backend` for repositories under this directory at /git/. */
  readonly gitRoot?: string;
  /**
   * HTTPS interception: a CA made by `initCa` in DIR/intercept-ca (constrained
   * to these hosts), `intercept.ca` in the config, and these names as the
   * github upstream's `hosts` (unless `githubOwnsHosts` is false: other
   * upstreams in `extraUpstreams` claim them).
   */
  readonly intercept?: {
    readonly hosts: readonly string[];
    readonly githubOwnsHosts?: boolean;
    /** More names the CA may issue for (other upstreams' `hosts`). */
    readonly otherHosts?: readonly string[];
    /** More names the CA may issue for (hosts of extraUpstreams), not the github upstream's. */
    readonly caHosts?: readonly string[];
  };
  /** YAML lines added to the github upstream (indented by the caller: 4 spaces). */
  readonly githubUpstream?: string;
  /** The gateway's open-file limit (ulimit -n), set with prlimit. */
  readonly openFiles?: number;
  /** The github upstream's `credential:` (YAML flow text) instead of the credential file. */
  readonly credential?: string;
}

export async function startGatewayFixture(
  owner: TestContext | Teardown,
  options: GatewayFixtureOptions = {},
): Promise<GatewayFixture> {
  const teardown = 'add' in owner ? owner : teardownOf(owner);
  const dir = tempDir(teardown);
  const pki = makeTestPki(dir);
  const upstream = await startUpstream(pki, teardown, options.gitRoot);
  const keysDir = join(dir, 'keys');
  initKeyring(keysDir, new Date());
  const credentialFile = join(dir, 'github.credential');
  writeFileAtomic(credentialFile, `${CREDENTIAL}\n`, { mode: 0o600 });
  const socketPath = join(dir, 'gateway.sock');
  let caDir: string | undefined;
  if (options.intercept) {
    caDir = join(dir, 'intercept-ca');
    // Without githubOwnsHosts the github upstream answers for its URL's name,
    // localhost, which an interception CA must cover as well.
    await initCa(caDir, {
      hosts: [
        ...options.intercept.hosts,
        ...(options.intercept.githubOwnsHosts === false ? ['localhost'] : []),
        ...(options.intercept.otherHosts ?? []),
        ...(options.intercept.caHosts ?? []),
      ],
      now: new Date(),
      validDays: 2,
    });
  }
  const config = [
    'listen:',
    '  - 127.0.0.1:0',
    `  - unix:${socketPath}`,
    'upstreams:',
    '  github:',
    `    url: ${upstream.url}`,
    `    credential: ${options.credential ?? '{ file: ./github.credential }'}`,
    '    inject: "Authorization: token {credential}"',
    '    ca: ./ca.pem',
    ...(options.intercept && options.intercept.githubOwnsHosts !== false
      ? [`    hosts: [${options.intercept.hosts.join(', ')}]`]
      : []),
    ...(options.githubUpstream ? [options.githubUpstream] : []),
    ...(options.extraUpstreams ? [options.extraUpstreams] : []),
    ...(options.limits ? ['limits:', ...options.limits.split('\n').map((l) => `  ${l}`)] : []),
    ...(options.topLevel ? [options.topLevel] : []),
    ...(options.intercept ? ['intercept:', '  ca: ./intercept-ca'] : []),
  ].join('\n');
  writeFileSync(join(dir, 'gateway.yaml'), `${config}\n`);

  let stderr = '';
  const command = [process.execPath, CLI, 'gateway', join(dir, 'gateway.yaml'), '--keys', keysDir];
  const limited =
    options.openFiles === undefined
      ? command
      : ['prlimit', `--nofile=${options.openFiles}:${options.openFiles}`, '--', ...command];
  const child = spawn(limited[0] as string, limited.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  teardown.add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  const listening = await pollUntil('the gateway to listen', () => {
    if (child.exitCode !== null)
      throw new Error(`mintfs gateway exited ${child.exitCode}: ${stderr}`);
    const line = stderr.split('\n').find((l) => l.includes('"event":"gateway-listening"'));
    return line ? (JSON.parse(line) as { addresses: string[] }) : undefined;
  });
  const tcp = listening.addresses.find((a) => !a.startsWith('unix:')) as string;
  const port = Number(tcp.slice(tcp.lastIndexOf(':') + 1));

  const defaults: TokenGrant = {
    agent: 'test-agent',
    service: 'github',
    hosts: ['localhost'],
    methods: ['GET', 'HEAD', 'POST'],
    paths: ['/repos/acme/widgets/**'],
    ttlMs: 300_000,
  };
  return {
    dir,
    keysDir,
    credentialFile,
    socketPath,
    base: `http://127.0.0.1:${port}`,
    port,
    upstream,
    pki,
    interceptCa: caDir === undefined ? undefined : join(caDir, 'ca.crt'),
    child,
    keyring: () => loadKeyring(keysDir),
    stderr: () => stderr,
    requestLogs: () =>
      stderr
        .split('\n')
        .filter((l) => l.includes('"event":"request"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    token: (grant = {}, now = new Date()) =>
      mintToken(
        { ...defaults, ...grant },
        { key: loadKeyring(keysDir).current, now, tokenId: newTokenId() },
      ).token,
  };
}

/**
 * A gateway config of its own for `mintfs run --gateway` in front of the
 * fixture's upstream (run-gateway.yaml in the fixture's directory; with
 * interception of `intercept` hosts through the fixture's CA). Returns its path.
 */
export function runGatewayConfig(gw: GatewayFixture, intercept?: readonly string[]): string {
  const config = join(gw.dir, 'run-gateway.yaml');
  writeFileSync(
    config,
    [
      'listen: [127.0.0.1:0]',
      'upstreams:',
      '  github:',
      `    url: ${gw.upstream.url}`,
      `    credential: { file: ${gw.credentialFile} }`,
      '    inject: "Authorization: token {credential}"',
      `    ca: ${join(gw.dir, 'ca.pem')}`,
      ...(intercept === undefined
        ? []
        : [
            `    hosts: [${intercept.join(', ')}]`,
            'intercept:',
            `  ca: ${join(gw.dir, 'intercept-ca')}`,
          ]),
      '',
    ].join('\n'),
  );
  return config;
}

/** Another gateway process beside a fixture's (a peer sharing its Redis, a `workers: N` cluster). */
export interface GatewayProcess {
  readonly child: ChildProcess;
  /** http://ADDRESS of its first listening line. */
  readonly base: string;
  readonly stderr: () => string;
  /** Stops it with its stop signal and waits for its exit; also run at teardown. */
  readonly stop: () => Promise<void>;
}

/** The fixture's config without its unix socket line (that socket is the fixture's own). */
export function configWithoutSocket(gw: GatewayFixture): string {
  return readFileSync(join(gw.dir, 'gateway.yaml'), 'utf8')
    .split('\n')
    .filter((line) => !line.includes('unix:'))
    .join('\n');
}

/**
 * Writes `config` to NAME.yaml in the fixture's directory and starts a
 * gateway on it with the fixture's keys; resolves once `listeners`
 * gateway-listening lines are out (one per worker). SIGKILL stops it unless
 * `stopSignal` says otherwise (a cluster's primary takes SIGTERM, so its
 * workers go with it).
 */
export async function startGatewayProcess(
  t: TestContext,
  gw: GatewayFixture,
  name: string,
  config: string,
  options: { readonly listeners?: number; readonly stopSignal?: NodeJS.Signals } = {},
): Promise<GatewayProcess> {
  const { listeners = 1, stopSignal = 'SIGKILL' } = options;
  const file = join(gw.dir, `${name}.yaml`);
  writeFileSync(file, config);
  let stderr = '';
  const child = spawn(process.execPath, [CLI, 'gateway', file, '--keys', gw.keysDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill(stopSignal);
    await gone;
  };
  teardownOf(t).add(stop);
  const first = await pollUntil(
    `${name} to listen (${listeners} listening lines)`,
    () => {
      if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr}`);
      const lines = stderr.split('\n').filter((l) => l.includes('"event":"gateway-listening"'));
      return lines.length >= listeners
        ? (JSON.parse(lines[0] as string) as { addresses: string[] })
        : undefined;
    },
    20_000,
  );
  return { child, base: `http://${first.addresses[0] as string}`, stderr: () => stderr, stop };
}
