import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMintfsError } from '../../src/errors.js';
import { buildTree } from '../../src/fs/virtual-tree.js';
import { loadProfile, parseProfile } from '../../src/profile/load-profile.js';
import { REPO_ROOT } from '../helpers/paths.js';

const VALID = `agent: demo-agent
ttl: 5m
files:
  github/token:
    service: github
    hosts: [api.github.com]
    methods: [GET, HEAD]
    paths: ["/repos/acme/widgets/**"]
    ttl: 2m
`;

function problem(yaml: string): string {
  try {
    parseProfile(yaml, 'p.yaml');
  } catch (err) {
    assert.ok(isMintfsError(err, 'ERR_PROFILE_INVALID'), String(err));
    assert.doesNotMatch(err.message, /\n/, 'one line');
    return err.message;
  }
  assert.fail('profile should have been refused');
}

describe('profiles', () => {
  it('every example in mount-profiles/ is valid', () => {
    const dir = join(REPO_ROOT, 'mount-profiles');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length > 0);
    for (const file of files) assert.ok(loadProfile(join(dir, file)).files);
  });

  it('resolves defaults: ttl, format, owner and mode', () => {
    const profile = parseProfile(VALID.replace('    ttl: 2m\n', ''), 'p.yaml');
    const file = buildTree(profile).files.get('github/token');
    assert.equal(file?.grant.ttlMs, 300_000);
    assert.equal(file?.format, 'raw');
    assert.equal(file?.mode, 0o440);
    assert.equal(file?.uid, 0);
  });

  it('a per-file ttl overrides the profile ttl', () => {
    assert.equal(
      buildTree(parseProfile(VALID, 'p.yaml')).files.get('github/token')?.grant.ttlMs,
      120_000,
    );
  });

  it('derives directories from file paths', () => {
    const tree = buildTree(
      parseProfile(
        VALID.replace(
          'files:\n',
          'files:\n  a/b/c:\n    service: x\n    hosts: [h]\n    methods: [GET]\n    paths: [/]\n',
        ),
        'p.yaml',
      ),
    );
    assert.deepEqual(tree.directories.get(''), ['a', 'github']);
    assert.deepEqual(tree.directories.get('a'), ['b']);
    assert.deepEqual(tree.directories.get('a/b'), ['c']);
  });

  it('names a missing field with its full path', () => {
    assert.equal(
      problem(VALID.replace('    service: github\n', '')),
      'profile p.yaml: files."github/token".service: required',
    );
  });

  it('refuses unknown keys (a typo is not ignored)', () => {
    assert.match(
      problem(VALID.replace('methods:', 'methdos:')),
      /files\."github\/token"\.methdos: unknown field/,
    );
    assert.match(problem(`${VALID}extra: 1\n`), /extra: unknown field/);
  });

  it('refuses a ttl over one hour, or not a duration', () => {
    assert.match(
      problem(VALID.replace('ttl: 5m', 'ttl: 2h')),
      /^profile p\.yaml: ttl: 2h is outside 10s\.\.1h$/,
    );
    assert.match(
      problem(VALID.replace('ttl: 2m', 'ttl: soon')),
      /files\."github\/token"\.ttl: "soon" is not a duration/,
    );
  });

  it('refuses empty lists, bad methods, hosts with ports and bad globs', () => {
    assert.match(
      problem(VALID.replace('[GET, HEAD]', '[]')),
      /methods: must list at least one method/,
    );
    assert.match(
      problem(VALID.replace('[GET, HEAD]', '[GET, FETCH]')),
      /methods\[1\]: must be one of/,
    );
    assert.match(
      problem(VALID.replace('[api.github.com]', '[api.github.com:443]')),
      /hosts\[0\]: must be a lower-case hostname/,
    );
    assert.match(
      problem(VALID.replace('/repos/acme/widgets/**', '/repos/../x')),
      /paths\[0\]: glob must not contain \. or \.\./,
    );
    assert.match(
      problem(VALID.replace('/repos/acme/widgets/**', 'repos')),
      /paths\[0\]: glob must start with \//,
    );
  });

  it('refuses lists and globs a verifier would refuse in a token (the token limits)', () => {
    const many = Array.from({ length: 17 }, (_, i) => `"/p${i}/**"`).join(', ');
    assert.match(
      problem(VALID.replace('["/repos/acme/widgets/**"]', `[${many}]`)),
      /paths: lists at most 16/,
    );
    const long = Array.from({ length: 16 }, (_, i) => `"/${`s${i}`.padEnd(150, 'x')}/**"`).join(
      ', ',
    );
    assert.match(
      problem(VALID.replace('["/repos/acme/widgets/**"]', `[${long}]`)),
      /paths: together are over/,
    );
    assert.match(
      problem(VALID.replace('/repos/acme/widgets/**', '/**/a/**/b/**/c/**/d/**')),
      /more than 4 \*\* segments/,
    );
    assert.match(
      problem(VALID.replace('/repos/acme/widgets/**', `/${Array(33).fill('a').join('/')}`)),
      /more than 32 segments/,
    );
  });

  it('refuses file paths that escape or clash', () => {
    assert.match(
      problem(VALID.replace('github/token:', '../token:')),
      /files\."\.\.\/token": must not contain/,
    );
    assert.match(problem(VALID.replace('github/token:', '/abs/token:')), /no leading \//);
    assert.match(
      problem(
        VALID.replace(
          'files:\n',
          'files:\n  github:\n    service: x\n    hosts: [h]\n    methods: [GET]\n    paths: [/]\n',
        ),
      ),
      /files\.github: is also a directory of "github\/token"/,
    );
    assert.match(problem('agent: a\nfiles: {}\n'), /files: must declare at least one file/);
  });

  it('refuses writable modes and unquoted octal modes', () => {
    assert.match(
      problem(VALID.replace('    ttl: 2m\n', '    mode: "0640"\n')),
      /mode: must grant read permission only/,
    );
    assert.match(
      problem(VALID.replace('    ttl: 2m\n', '    mode: 0440\n')),
      /mode: write the mode as a quoted octal string/,
    );
    assert.equal(
      buildTree(
        parseProfile(VALID.replace('    ttl: 2m\n', '    mode: "0400"\n    uid: 1000\n'), 'p'),
      ).files.get('github/token')?.mode,
      0o400,
    );
  });

  it('reports YAML syntax errors with a line number', () => {
    assert.match(problem('agent: [unclosed\n'), /invalid YAML \(line \d+\)/);
    assert.match(problem('agent: a\nagent: b\nfiles: {}\n'), /invalid YAML/);
  });

  it('readers and readerCaveat: per file, or profile-wide defaults a file may override', () => {
    const tree = buildTree(
      parseProfile(
        `${VALID}readers: { uids: [1000] }\nreaderCaveat: true\n`.replace(
          '    ttl: 2m\n',
          '    ttl: 2m\n    readers: { exe: [/usr/bin/cat], containers: [ctr-1] }\n    readerCaveat: false\n',
        ),
        'p.yaml',
      ),
    );
    const file = tree.files.get('github/token');
    assert.deepEqual(file?.readers, { exe: ['/usr/bin/cat'], containers: ['ctr-1'] });
    assert.equal(file?.readerCaveat, false);
    const defaults = buildTree(parseProfile(`${VALID}readers: { uids: [0, 1000] }\n`, 'p.yaml'));
    assert.deepEqual(defaults.files.get('github/token')?.readers, { uids: [0, 1000] });
    assert.equal(defaults.files.get('github/token')?.readerCaveat, false);
  });

  it('refuses empty or malformed readers rules, naming the field', () => {
    assert.match(
      problem(`${VALID}readers: {}\n`),
      /readers: must restrict by at least one of uids, exe, containers/,
    );
    assert.match(
      problem(`${VALID}readers: { uids: [] }\n`),
      /readers\.uids: must list at least one uid/,
    );
    assert.match(
      problem(`${VALID}readers: { exe: [cat] }\n`),
      /readers\.exe\[0\]: must be an absolute executable path/,
    );
    for (const entry of ['a/b', '/', '/a/', '/a//b', '/a/../b', '/a/./b', "'/a b'", "'docker-1 '"])
      assert.match(
        problem(`${VALID}readers: { containers: [${entry}] }\n`),
        /readers\.containers\[0\]: must be one cgroup path segment \(a container id\), or a cgroup path from the root/,
        entry,
      );
    const anchored = buildTree(
      parseProfile(
        `${VALID}readers: { containers: [/system.slice/docker-1.scope, ctr-1] }\n`,
        'p.yaml',
      ),
    );
    assert.deepEqual(anchored.files.get('github/token')?.readers, {
      containers: ['/system.slice/docker-1.scope', 'ctr-1'],
    });
    assert.match(problem(`${VALID}readers: { pids: [1] }\n`), /readers\.pids: unknown field/);
    assert.match(problem(`${VALID}readerCaveat: yes please\n`), /readerCaveat/);
  });

  it('a missing file is unreadable, not invalid', () => {
    assert.throws(
      () => loadProfile('/nonexistent/p.yaml'),
      (err) => isMintfsError(err, 'ERR_PROFILE_UNREADABLE'),
    );
  });
});
