/**
 * The interception CA and its leaves: files and modes, never overwritten,
 * checked on load; name constraints that real OpenSSL enforces (a leaf
 * outside them does not verify); leaves cached and renewed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { caFiles, caPermits, initCa, loadCa } from '../../src/intercept/ca.js';
import { LEAF_LIFETIME_MS, LeafIssuer } from '../../src/intercept/leaf-certs.js';
import { isMintfsError } from '../../src/errors.js';
import { tempDir } from '../helpers/temp.js';

const NOW = new Date('2026-12-01T12:00:00Z');

function opensslVerify(dir: string, caCert: string, leafPem: string, at: Date): string {
  const leafFile = join(dir, `leaf-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(leafFile, leafPem);
  const result = spawnSync(
    'openssl',
    ['verify', '-attime', String(Math.floor(at.getTime() / 1000)), '-CAfile', caCert, leafFile],
    { encoding: 'utf8' },
  );
  return `${result.status} ${result.stdout}${result.stderr}`;
}

describe('mintfs ca: the interception CA', () => {
  it('writes ca.crt 0644 and ca.key 0600, and never overwrites either', async (t) => {
    const dir = join(tempDir(t), 'ca');
    const ca = await initCa(dir, { hosts: ['api.github.com'], now: NOW, validDays: 30 });
    const files = caFiles(dir);
    assert.equal(statSync(files.certPath).mode & 0o777, 0o644);
    assert.equal(statSync(files.keyPath).mode & 0o777, 0o600);
    const key = readFileSync(files.keyPath, 'utf8');
    await assert.rejects(initCa(dir, { hosts: ['x.test'], now: NOW, validDays: 30 }), (err) =>
      isMintfsError(err, 'ERR_CA_EXISTS'),
    );
    assert.equal(readFileSync(files.keyPath, 'utf8'), key, 'the key was replaced');
    // The fingerprint is what openssl prints.
    const openssl = execFileSync(
      'openssl',
      ['x509', '-in', files.certPath, '-noout', '-fingerprint', '-sha256'],
      { encoding: 'utf8' },
    );
    assert.equal(openssl.trim().split('=')[1], ca.fingerprint);
    assert.deepEqual(ca.permittedHosts, ['api.github.com']);
  });

  it('is refused on load when the key is not its own, it has expired, or the key file is not trusted', async (t) => {
    const root = tempDir(t);
    const a = join(root, 'a');
    const b = join(root, 'b');
    await initCa(a, { hosts: ['a.test'], now: new Date(), validDays: 1 });
    await initCa(b, { hosts: ['b.test'], now: new Date(), validDays: 1 });
    writeFileSync(caFiles(a).keyPath, readFileSync(caFiles(b).keyPath), { mode: 0o600 });
    await assert.rejects(loadCa(a), (err) => isMintfsError(err, 'ERR_CA_INVALID'));
    await assert.rejects(loadCa(b, new Date(Date.now() + 2 * 86_400_000)), (err) =>
      isMintfsError(err, 'ERR_CA_INVALID'),
    );
    chmodSync(caFiles(b).keyPath, 0o660);
    await assert.rejects(loadCa(b), (err) => isMintfsError(err, 'ERR_PATH_UNSAFE'));
  });

  it('leaves for its hosts verify with OpenSSL; a leaf for any other name does not', async (t) => {
    const dir = tempDir(t);
    const ca = await initCa(join(dir, 'ca'), {
      hosts: ['github.com'],
      now: new Date(),
      validDays: 1,
    });
    const issuer = new LeafIssuer(ca);
    for (const host of ['github.com', 'api.github.com'])
      assert.match(
        opensslVerify(dir, ca.certPath, (await issuer.leafFor(host)).certPem, new Date()),
        /^0 .*OK/s,
        host,
      );
    for (const host of ['evil.example', 'github.com.evil.example', 'notgithub.com']) {
      const verdict = opensslVerify(
        dir,
        ca.certPath,
        (await issuer.leafFor(host)).certPem,
        new Date(),
      );
      assert.match(verdict, /^2 .*(permitted subtree violation|name constraints)/is, host);
    }
  });

  it('an --any-host CA has no constraints', async (t) => {
    const dir = tempDir(t);
    const ca = await initCa(join(dir, 'ca'), { hosts: undefined, now: new Date(), validDays: 1 });
    assert.equal(ca.permittedHosts, undefined);
    const leaf = await new LeafIssuer(ca).leafFor('anything.example');
    assert.match(opensslVerify(dir, ca.certPath, leaf.certPem, new Date()), /^0 /);
  });

  it('caPermits: a name is covered by itself and its subdomains, nothing else', () => {
    // The reference, label by label (RFC 5280: zero or more labels added on the left).
    const covered = (base: string, name: string) => {
      const want = base.split('.');
      const got = name.split('.');
      return got.length >= want.length && got.slice(got.length - want.length).join('.') === base;
    };
    const label = fc.stringMatching(/^[a-z0-9]{1,10}$/);
    const dnsName = fc
      .array(label, { minLength: 1, maxLength: 4 })
      .map((labels) => labels.join('.'));
    fc.assert(
      fc.property(dnsName, dnsName, label, (base, name, other) => {
        assert.equal(caPermits(undefined, name), true);
        for (const candidate of [
          name,
          `${name}.${base}`,
          `${other}${base}`,
          `${base}.${other}`,
          base,
        ])
          assert.equal(
            caPermits([base], candidate),
            covered(base, candidate),
            `${candidate} under ${base}`,
          );
        // A suffix that is not at a label boundary is another name.
        assert.equal(caPermits(['github.com'], 'notgithub.com'), false);
      }),
      { numRuns: 500 },
    );
  });
});

describe('leaf certificates', () => {
  it('are made once per host, shared by concurrent tunnels, renewed at half-life, never past the CA', async (t) => {
    const dir = tempDir(t);
    let now = new Date();
    const ca = await initCa(join(dir, 'ca'), { hosts: ['a.test', 'b.test'], now, validDays: 1 });
    const issuer = new LeafIssuer(ca, () => now);
    const first = await Promise.all(Array.from({ length: 20 }, () => issuer.leafFor('a.test')));
    assert.equal(new Set(first.map((leaf) => leaf.certPem)).size, 1);
    assert.equal(issuer.stats.issued, 1);
    await issuer.leafFor('b.test');
    assert.equal(issuer.stats.issued, 2);
    now = new Date(now.getTime() + LEAF_LIFETIME_MS / 2 - 1_000);
    await issuer.leafFor('a.test');
    assert.equal(issuer.stats.issued, 2, 'renewed before half-life');
    now = new Date(now.getTime() + 2_000);
    const renewed = await issuer.leafFor('a.test');
    assert.equal(issuer.stats.issued, 3);
    assert.notEqual(renewed.certPem, first[0]?.certPem);
    // Valid now, and never beyond the CA's own expiry.
    assert.match(opensslVerify(dir, ca.certPath, renewed.certPem, now), /^0 /);
    now = new Date(ca.certificate.notAfter.getTime() - 10 * 60_000);
    const late = await issuer.leafFor('b.test');
    const text = execFileSync('openssl', ['x509', '-noout', '-enddate'], {
      input: late.certPem,
      encoding: 'utf8',
    });
    assert.ok(Date.parse(text.trim().split('=')[1] ?? '') <= ca.certificate.notAfter.getTime());
  });
});
