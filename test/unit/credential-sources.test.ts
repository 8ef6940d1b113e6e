/**
 * The credential source registry: config errors name the field inside the
 * kind, kinds cannot be mistaken for each other, and what a minting source
 * can check at start is checked there.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as z from 'zod';
import { isMintfsError } from '../../src/errors.js';
import { SOURCE_KINDS } from '../../src/credentials/registry.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { CredentialStore } from '../../src/gateway/credentials.js';
import { createLogger } from '../../src/log/logger.js';
import { tempDir } from '../helpers/temp.js';

function config(credential: string): string {
  return `listen: [127.0.0.1:0]
upstreams:
  github:
    url: https://api.github.com
    credential: ${credential}
    inject: "Authorization: token {credential}"
`;
}

function problem(credential: string, source = '/etc/mintfs/gateway.yaml'): string {
  try {
    parseGatewayConfig(config(credential), source);
  } catch (err) {
    assert.ok(isMintfsError(err));
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.message;
  }
  assert.fail('expected a config error');
}

function startProblem(credential: string, dir: string): string {
  const parsed = parseGatewayConfig(config(credential), join(dir, 'gateway.yaml'));
  try {
    void new CredentialStore(parsed.upstreams, createLogger({ level: 'silent' })).close();
  } catch (err) {
    assert.ok(isMintfsError(err));
    assert.equal(err.code, 'ERR_CREDENTIAL_UNAVAILABLE');
    return err.message;
  }
  assert.fail('expected a start-up refusal');
}

describe('credential source registry', () => {
  it('no kind has a field named like another kind (a parsed source maps to one kind)', () => {
    const keys = SOURCE_KINDS.map((kind) => kind.key);
    for (const kind of SOURCE_KINDS) {
      const json = z.toJSONSchema(kind.schema, { io: 'output', unrepresentable: 'any' }) as {
        properties: Record<string, unknown>;
      };
      for (const field of Object.keys(json.properties))
        if (field !== kind.key) assert.ok(!keys.includes(field), `${kind.key}.${field}`);
    }
  });

  it('an object naming no kind, or two, is refused with the list of kinds', () => {
    assert.match(problem('{ path: x }'), /credential: must be one of \{ file: \.\.\. \}/);
    assert.match(problem('{ file: x, env: Y }'), /credential: must be one of/);
  });

  it('a problem inside a kind names its field', () => {
    assert.match(
      problem('{ command: [/usr/bin/gh, auth, token] }'),
      /upstreams\.github\.credential(: |\.)ttl: required/,
    );
    assert.match(
      problem('{ command: [gh, auth, token], ttl: 5m }'),
      /credential(: |\.)command: the program must be an absolute path/,
    );
    assert.match(
      problem('{ command: [/usr/bin/gh], ttl: 5m, timeout: 1h }'),
      /credential(: |\.)timeout: 1h is outside 100ms\.\.2m/,
    );
    assert.match(
      problem('{ command: [/usr/bin/gh], ttl: 5m, shell: true }'),
      /credential(: |\.)shell: unknown field/,
    );
    assert.match(
      problem('{ command: [/usr/bin/gh], ttl: 5m, passEnv: ["A=B"] }'),
      /credential(: |\.)passEnv\[0\]: must be an environment variable name/,
    );
  });

  it('a command that is missing, not executable, or replaceable by others stops the start', (t) => {
    const dir = tempDir(t);
    assert.match(startProblem(`{ command: [${dir}/nope], ttl: 5m }`, dir), /nope does not exist/);
    const script = join(dir, 'token.sh');
    writeFileSync(script, '#!/bin/sh\necho x\n', { mode: 0o600 });
    assert.match(startProblem(`{ command: [${script}], ttl: 5m }`, dir), /is not executable/);
    chmodSync(script, 0o777);
    assert.match(
      startProblem(`{ command: [${script}], ttl: 5m }`, dir),
      /writable by group and others/,
    );
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const inOpen = join(open, 'token.sh');
    writeFileSync(inOpen, '#!/bin/sh\necho x\n', { mode: 0o700 });
    assert.match(
      startProblem(`{ command: [${inOpen}], ttl: 5m }`, dir),
      /directory .*open is writable/,
    );
  });

  it('an oauth2 source is refused at load without what its grant needs, or over plain http', () => {
    const base = 'tokenUrl: "https://auth.example.com/token", clientId: gw';
    assert.match(
      problem(`{ oauth2: { ${base}, grant: client_credentials } }`),
      /oauth2\.clientSecret: required for client_credentials/,
    );
    assert.match(
      problem(`{ oauth2: { ${base}, grant: refresh_token, clientSecret: ./s } }`),
      /oauth2\.refreshToken: required for refresh_token/,
    );
    assert.match(
      problem(
        '{ oauth2: { tokenUrl: "http://auth.example.com/token", clientId: gw, grant: client_credentials, clientSecret: ./s } }',
      ),
      /oauth2\.tokenUrl: must be an https:\/\/ URL/,
    );
    assert.match(
      problem(`{ oauth2: { ${base}, grant: password, clientSecret: ./s } }`),
      /oauth2\.grant/,
    );
  });

  it('an oauth2 client secret or refresh token others can read stops the start', (t) => {
    const dir = tempDir(t);
    const secret = join(dir, 'client-secret');
    writeFileSync(secret, 'cs_value\n', { mode: 0o644 });
    chmodSync(secret, 0o644);
    const source = `{ oauth2: { tokenUrl: "https://auth.example.com/token", clientId: gw, grant: client_credentials, clientSecret: ./client-secret } }`;
    assert.match(startProblem(source, dir), /client-secret is accessible by group or others/);
    chmodSync(secret, 0o600);
    writeFileSync(join(dir, 'empty'), '', { mode: 0o600 });
    assert.match(startProblem(source.replace('./client-secret', './empty'), dir), /empty is empty/);
  });

  it('a githubApp source without a repository list is refused at load unless it says all', () => {
    const app = (rest: string) =>
      `{ githubApp: { clientId: Iv23liX, privateKey: ./app.pem, installationId: 42${rest} } }`;
    const perms = ', permissions: { contents: read }';
    assert.match(problem(app(perms)), /githubApp\.repositories: required/);
    assert.match(
      problem(app(`, repositories: []${perms}`)),
      /githubApp\.repositories: must list at least one repository, or say `all`/,
    );
    assert.match(
      problem(app(`, repositories: [acme/widgets]${perms}`)),
      /githubApp\.repositories\[0\]: must be a repository name without its owner/,
    );
    assert.match(problem(app(', repositories: [widgets]')), /githubApp\.permissions: required/);
    assert.match(
      problem(app(', repositories: [widgets], permissions: {}')),
      /githubApp\.permissions: must name at least one permission/,
    );
    assert.match(
      problem(app(', repositories: [widgets], permissions: { contents: maintain }')),
      /githubApp\.permissions\.contents/,
    );
    const parsed = parseGatewayConfig(
      config(app(`, repositories: all${perms}`)),
      '/etc/mintfs/gateway.yaml',
    ).upstreams.github?.credential;
    assert.deepEqual(parsed, {
      githubApp: {
        clientId: 'Iv23liX',
        privateKey: '/etc/mintfs/app.pem',
        installationId: '42',
        repositories: 'all',
        permissions: { contents: 'read' },
        api: 'https://api.github.com/',
      },
    });
  });

  it('a githubApp private key that is not an RSA key, or readable by others, stops the start', (t) => {
    const dir = tempDir(t);
    const source =
      '{ githubApp: { clientId: Iv23liX, privateKey: ./app.pem, installationId: 42, repositories: [w], permissions: { contents: read } } }';
    writeFileSync(join(dir, 'app.pem'), 'not a key\n', { mode: 0o600 });
    assert.match(startProblem(source, dir), /app\.pem is not an RSA private key in PEM/);
    chmodSync(join(dir, 'app.pem'), 0o640);
    assert.match(startProblem(source, dir), /app\.pem is accessible by group or others/);
  });
});
