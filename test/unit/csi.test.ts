/**
 * The CSI plugin's pure parts, from the pod author's side: what a publish
 * request may say (property-tested target paths: whatever is accepted is a
 * canonical path of the pod's own kubelet volume directory), what the
 * policy allows (against a plain reference), and the profile a volume
 * serves (the pod is its only reader, whatever the operator's profile says).
 */
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isMintfsError } from '../../src/errors.js';
import { authorize, parsePolicy, type Policy } from '../../src/csi/policy.js';
import { checkTargetPath, parsePublishRequest, POD_INFO } from '../../src/csi/requests.js';
import { podCgroupSegments, volumeProfileText } from '../../src/csi/volume-profile.js';
import { parseProfile } from '../../src/profile/load-profile.js';
import { AGENT_NAME } from '../../src/token/vocabulary.js';

const KUBELET = '/var/lib/kubelet';
const UID = '0f8c9a6e-1111-4222-8333-444455556666';
const TARGET = `${KUBELET}/pods/${UID}/volumes/kubernetes.io~csi/secrets/mount`;

function request(change: Record<string, unknown> = {}, context: Record<string, string> = {}) {
  return {
    volumeId: 'csi-1234',
    targetPath: TARGET,
    stagingTargetPath: '',
    readonly: true,
    volumeCapability: {
      mount: { fsType: '', mountFlags: [], volumeMountGroup: '' },
      block: null,
      accessMode: { mode: 'SINGLE_NODE_WRITER' },
    },
    volumeContext: {
      profile: 'github-readonly',
      [POD_INFO.name]: 'agent-0',
      [POD_INFO.namespace]: 'agents',
      [POD_INFO.uid]: UID,
      [POD_INFO.serviceAccount]: 'coder',
      [POD_INFO.ephemeral]: 'true',
      ...context,
    },
    ...change,
  };
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isMintfsError(err, 'ERR_VOLUME_ARGUMENT') || isMintfsError(err, 'ERR_VOLUME_DENIED'));
    return err.message;
  }
  assert.fail('accepted');
}

describe('CSI publish requests', () => {
  it("kubelet's request for an inline volume is taken, and names the pod", () => {
    assert.deepEqual(parsePublishRequest(request(), KUBELET), {
      volumeId: 'csi-1234',
      targetPath: TARGET,
      profile: 'github-readonly',
      pod: { uid: UID, name: 'agent-0', namespace: 'agents', serviceAccount: 'coder' },
    });
  });

  it('pod authors cannot add attributes, change who the pod is, or skip readOnly', () => {
    assert.match(
      refusal(() => parsePublishRequest(request({}, { agent: 'root' }), KUBELET)),
      /unknown attribute "agent"/,
    );
    assert.match(
      refusal(() => parsePublishRequest(request({ readonly: false }), KUBELET)),
      /^readonly: /,
    );
    assert.match(
      refusal(() =>
        parsePublishRequest(
          request({}, { [POD_INFO.uid]: '11111111-2222-3333-4444-555555555555' }),
          KUBELET,
        ),
      ),
      /^target_path: is not in the directory of pod/,
    );
    assert.match(
      refusal(() => parsePublishRequest(request({}, { profile: 'a/../../b' }), KUBELET)),
      /profile: must be a profile name/,
    );
  });

  const SEGMENTS = [
    '',
    '.',
    '..',
    'pods',
    UID,
    UID.toUpperCase(),
    'volumes',
    'kubernetes.io~csi',
    'kubernetes.io~empty-dir',
    'secrets',
    'mount',
    'a\0b',
    'x y',
    'Secrets',
    '-x',
    'var',
    'lib',
    'kubelet',
  ];

  it('an accepted target path is canonical, under <kubelet>/pods/, and five segments deep (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        (parts, absolute) => {
          const path = `${absolute ? '/' : ''}${parts.join('/')}`;
          let accepted = true;
          try {
            checkTargetPath(path, KUBELET);
          } catch (err) {
            assert.ok(isMintfsError(err, 'ERR_VOLUME_ARGUMENT'));
            accepted = false;
          }
          if (!accepted) return;
          assert.equal(posix.normalize(path), path);
          assert.ok(path.startsWith(`${KUBELET}/pods/`));
          assert.equal(path.split('/').length, KUBELET.split('/').length + 6);
          assert.ok(path.endsWith('/mount'));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('every path kubelet makes is accepted (property)', () => {
    fc.assert(
      fc.property(
        fc.uuid(),
        fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/),
        (uid, name) => {
          checkTargetPath(
            `${KUBELET}/pods/${uid}/volumes/kubernetes.io~csi/${name}/mount`,
            KUBELET,
            uid,
          );
        },
      ),
    );
  });
});

describe('CSI policy', () => {
  const policy = parsePolicy(
    `profiles: /etc/mintfs/profiles
bindings:
  - profile: github-readonly
    namespaces: [agents, ci]
    serviceAccounts: [coder]
  - profile: s3-read
    namespaces: [data]
`,
    'policy.yaml',
  );

  it('binds a profile to namespaces and, when listed, service accounts', () => {
    assert.equal(
      authorize(policy, 'github-readonly', { namespace: 'ci', serviceAccount: 'coder' }),
      '/etc/mintfs/profiles/github-readonly.yaml',
    );
    assert.equal(
      authorize(policy, 's3-read', { namespace: 'data', serviceAccount: 'anything' }),
      '/etc/mintfs/profiles/s3-read.yaml',
    );
    assert.match(
      refusal(() =>
        authorize(policy, 'github-readonly', { namespace: 'ci', serviceAccount: 'default' }),
      ),
      /not bound to ci\/default/,
    );
    assert.match(
      refusal(() => authorize(policy, 's3-read', { namespace: 'agents', serviceAccount: 'coder' })),
      /not bound/,
    );
  });

  it('allows exactly what some binding lists (property, against a plain reference)', () => {
    const names = ['a', 'b', 'c'];
    const binding = fc.record(
      {
        profile: fc.constantFrom(...names),
        namespaces: fc.uniqueArray(fc.constantFrom(...names), { minLength: 1 }),
        serviceAccounts: fc.uniqueArray(fc.constantFrom(...names), { minLength: 1 }),
      },
      { requiredKeys: ['profile', 'namespaces'] },
    );
    fc.assert(
      fc.property(
        fc.array(binding, { maxLength: 4 }),
        fc.constantFrom(...names, '..', 'a/b'),
        fc.constantFrom(...names),
        fc.constantFrom(...names),
        (bindings, profile, namespace, serviceAccount) => {
          const p: Policy = { profiles: '/p', bindings };
          const expected = bindings.some(
            (b) =>
              b.profile === profile &&
              b.namespaces.includes(namespace) &&
              (b.serviceAccounts?.includes(serviceAccount) ?? true),
          );
          let allowed: string | undefined;
          try {
            allowed = authorize(p, profile, { namespace, serviceAccount });
          } catch {
            allowed = undefined;
          }
          assert.equal(allowed !== undefined, expected);
          if (allowed !== undefined) assert.equal(allowed, `/p/${profile}.yaml`);
        },
      ),
    );
  });

  it('a typo, a relative directory or a profile name with a path is refused, naming the field', () => {
    const problem = (text: string) => {
      try {
        parsePolicy(text, 'policy.yaml');
      } catch (err) {
        assert.ok(isMintfsError(err, 'ERR_POLICY_INVALID'));
        return err.message;
      }
      assert.fail('accepted');
    };
    assert.match(
      problem('profiles: /p\nbindings:\n  - profile: a\n    namespace: [x]\n'),
      /bindings\[0\]\.namespace: unknown field/,
    );
    assert.match(problem('profiles: p\nbindings: []\n'), /profiles: must be an absolute directory/);
    assert.match(
      problem('profiles: /p\nbindings:\n  - profile: ../a\n    namespaces: [x]\n'),
      /bindings\[0\]\.profile: must be a profile name/,
    );
    assert.match(
      problem('profiles: /p\nbindings:\n  - profile: a\n    namespaces: []\n'),
      /namespaces: must list at least one/,
    );
  });
});

describe("a volume's profile", () => {
  const pod = { uid: UID, name: 'agent-0', namespace: 'agents', serviceAccount: 'coder' };
  const OPERATOR = `agent: whoever
readers: { uids: [1000] }
files:
  github/token:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/repos/**"]
    readers: { containers: [some-other-container], exe: [/usr/bin/gh] }
  s3/token:
    service: s3
    hosts: [s3.amazonaws.com]
    methods: [GET]
    paths: ["/**"]
    readerCaveat: false
`;

  it("names the workload as agent, pins every file to the pod's cgroup, keeps the operator's other rules", () => {
    const profile = parseProfile(volumeProfileText(OPERATOR, 'p.yaml', pod), 'volume');
    assert.equal(profile.agent, 'agents/coder');
    const containers = podCgroupSegments(UID);
    assert.deepEqual(profile.readers, { uids: [1000], containers });
    assert.deepEqual(profile.files['github/token']?.readers, { containers, exe: ['/usr/bin/gh'] });
    assert.deepEqual(profile.files['s3/token']?.readers, { uids: [1000], containers });
    assert.equal(profile.files['s3/token']?.readerCaveat, true);
    assert.equal(profile.files['github/token']?.readerCaveat, true);
  });

  it("a pod's cgroup names under both kubelet drivers, and no other pod's", () => {
    assert.deepEqual(podCgroupSegments(UID), [
      `pod${UID}`,
      'kubepods-pod0f8c9a6e_1111_4222_8333_444455556666.slice',
      'kubepods-burstable-pod0f8c9a6e_1111_4222_8333_444455556666.slice',
      'kubepods-besteffort-pod0f8c9a6e_1111_4222_8333_444455556666.slice',
    ]);
  });

  it('agent names: a name, or namespace/service-account; never more slashes or empty parts', () => {
    for (const ok of ['demo-agent', 'agents/coder', 'a/b.c-d']) assert.ok(AGENT_NAME.test(ok), ok);
    for (const bad of ['/a', 'a/', 'a//b', 'a/b/c', 'a/../b', '../a', 'a b'])
      assert.ok(!AGENT_NAME.test(bad), bad);
  });
});
