/** allow_other lets a container user in; the profile's owner and mode decide who reads. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CONFORMANCE_TARGETS, useTransport } from '../helpers/backends.js';
import { startMountFixture } from '../helpers/mount-fixture.js';

const PROFILE = `agent: perm-agent
files:
  agent/token:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/**"]
    uid: 1000
    gid: 1000
    mode: "0400"
  root/token:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/**"]
`;

function catAs(uid: number, file: string) {
  return spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'cat', file], {
    encoding: 'utf8',
  });
}

for (const target of CONFORMANCE_TARGETS) {
  const { backend, transport } = target;
  describe(`ownership and permissions (${target.label})`, () => {
    useTransport(target);
    it('files carry the owner and mode from the profile', async (t) => {
      const fixture = await startMountFixture(t, PROFILE, { backend, transport });
      const agentFile = statSync(join(fixture.mountpoint, 'agent/token'));
      assert.equal(agentFile.uid, 1000);
      assert.equal(agentFile.gid, 1000);
      assert.equal(agentFile.mode & 0o777, 0o400);
      const rootFile = statSync(join(fixture.mountpoint, 'root/token'));
      assert.equal(rootFile.uid, 0);
      assert.equal(rootFile.mode & 0o777, 0o440);
    });

    it('the owning uid reads its token; another uid is refused', async (t) => {
      const fixture = await startMountFixture(t, PROFILE, { backend, transport });
      const agent = catAs(1000, join(fixture.mountpoint, 'agent/token'));
      assert.equal(agent.status, 0, agent.stderr);
      assert.equal(agent.stdout.length, statSync(join(fixture.mountpoint, 'agent/token')).size);
      const other = catAs(1001, join(fixture.mountpoint, 'agent/token'));
      assert.notEqual(other.status, 0);
      assert.match(other.stderr, /Permission denied/);
      const rootOnly = catAs(1000, join(fixture.mountpoint, 'root/token'));
      assert.match(rootOnly.stderr, /Permission denied/);
      assert.equal(rootOnly.stdout, '');
    });
  });
}
