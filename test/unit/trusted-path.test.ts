/**
 * Configuration someone else could rewrite is refused, the way ssh's
 * StrictModes refuses authorized_keys: keyrings, profiles, gateway configs
 * and credential files, on real files with real owners (the tests run as root
 * and chown to other uids).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMintfsError } from '../../src/errors.js';
import { loadGatewayConfig } from '../../src/gateway/config.js';
import { CredentialStore } from '../../src/gateway/credentials.js';
import { initKeyring, loadKeyring } from '../../src/keys/keyring.js';
import { createLogger } from '../../src/log/logger.js';
import { loadProfile } from '../../src/profile/load-profile.js';
import { untrustedPathProblem } from '../../src/util/trusted-path.js';
import { tempDir } from '../helpers/temp.js';

const OTHER = 4242;
const PROFILE =
  'agent: a\nfiles:\n  x/token:\n    service: github\n    hosts: [api.github.com]\n    methods: [GET]\n    paths: ["/**"]\n';

function throwsCode(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isMintfsError(err), String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    assert.equal(err.message.split('\n').length, 1);
    return true;
  });
}

describe('trusted paths', () => {
  it('accepts root-owned files in private directories, and under a sticky /tmp', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'f');
    writeFileSync(file, 'x', { mode: 0o644 });
    assert.equal(untrustedPathProblem(file), undefined);
    assert.equal(untrustedPathProblem(join(dir, 'missing')), undefined);
  });

  it('refuses a file owned by another user, or writable by group or others', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'f');
    writeFileSync(file, 'x', { mode: 0o644 });
    chownSync(file, OTHER, OTHER);
    assert.match(untrustedPathProblem(file) ?? '', /owned by uid 4242/);
    chownSync(file, 0, 0);
    chmodSync(file, 0o664);
    assert.match(untrustedPathProblem(file) ?? '', /writable by group/);
    chmodSync(file, 0o646);
    assert.match(untrustedPathProblem(file) ?? '', /writable by (group and )?others/);
  });

  it('refuses a file whose directory another user owns or anyone can write (no sticky bit)', (t) => {
    const dir = tempDir(t);
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const file = join(sub, 'f');
    writeFileSync(file, 'x', { mode: 0o600 });
    chownSync(sub, OTHER, OTHER);
    assert.match(
      untrustedPathProblem(file) ?? '',
      new RegExp(`directory ${sub} is owned by uid 4242`),
    );
    chownSync(sub, 0, 0);
    chmodSync(sub, 0o777);
    assert.match(untrustedPathProblem(file) ?? '', /writable by (group and )?others/);
    chmodSync(sub, 0o1777);
    assert.equal(untrustedPathProblem(file), undefined, 'sticky: others cannot replace our entry');
  });

  it('follows links: a trusted link to an untrusted file is refused, and so is a link another user owns', (t) => {
    const dir = tempDir(t);
    const open = join(dir, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    const target = join(open, 'f');
    writeFileSync(target, 'x', { mode: 0o600 });
    const link = join(dir, 'link');
    symlinkSync(target, link);
    assert.match(untrustedPathProblem(link) ?? '', /writable by (group and )?others/);
  });

  it('a keyring owned by another user, or under a world-writable parent, is refused as the signing key', (t) => {
    const dir = tempDir(t);
    const keys = join(dir, 'keys');
    initKeyring(keys, new Date());
    assert.ok(loadKeyring(keys).current);
    chownSync(keys, OTHER, OTHER);
    throwsCode(() => loadKeyring(keys), 'ERR_PATH_UNSAFE', /keyring .* owned by uid 4242/);
    chownSync(keys, 0, 0);
    chmodSync(dir, 0o777);
    throwsCode(() => loadKeyring(keys), 'ERR_PATH_UNSAFE', /writable by (group and )?others/);
  });

  it('profiles, gateway configs and credential files someone else can rewrite are refused', (t) => {
    const dir = tempDir(t);
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chownSync(shared, OTHER, OTHER);
    const profile = join(shared, 'agent.yaml');
    writeFileSync(profile, PROFILE);
    throwsCode(() => loadProfile(profile), 'ERR_PATH_UNSAFE', /profile .* owned by uid 4242/);

    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      'listen: [127.0.0.1:0]\nupstreams:\n  github:\n    url: https://api.github.com\n    credential: { file: ./shared/cred }\n    inject: "Authorization: token {credential}"\n',
    );
    chmodSync(config, 0o664);
    throwsCode(
      () => loadGatewayConfig(config),
      'ERR_PATH_UNSAFE',
      /gateway config .* writable by group/,
    );
    chmodSync(config, 0o644);
    const parsed = loadGatewayConfig(config);
    writeFileSync(join(shared, 'cred'), 'secret', { mode: 0o600 });
    throwsCode(
      () => new CredentialStore(parsed.upstreams, createLogger({ level: 'silent' })),
      'ERR_CREDENTIAL_UNAVAILABLE',
      /owned by uid 4242/,
    );
  });

  it('a YAML alias bomb is a config error, not an unexpected one', (t) => {
    const dir = tempDir(t);
    const bomb = join(dir, 'bomb.yaml');
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++)
      levels.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(',')}]`,
      );
    writeFileSync(bomb, `${levels.join('\n')}\n`);
    throwsCode(() => loadProfile(bomb), 'ERR_PROFILE_INVALID', /invalid YAML/);
  });
});
