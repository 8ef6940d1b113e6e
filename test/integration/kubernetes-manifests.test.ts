/**
 * deploy/kubernetes rendered by the real `kubectl kustomize`, and the
 * fields a cluster depends on checked: the CSIDriver's modes, the node
 * plugin's privileges and mount propagation, the registrar's paths agreeing
 * with the plugin's socket, the configs inside the ConfigMaps passing
 * mintfs's own schemas, the policy binding the example pod, the
 * NetworkPolicies' selectors matching the pods they are about, the example
 * pod's read-only volume and trust variables.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { authorize, parsePolicy } from '../../src/csi/policy.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { parseProfile } from '../../src/profile/load-profile.js';
import { Manifest } from '../helpers/manifest.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { runSync } from '../helpers/spawn.js';
import { EXPECTED_TRUST_VARIABLES } from '../helpers/trust-variables.js';

function render(dir: string): Manifest[] {
  return Manifest.all(
    runSync(
      'kubectl',
      ['kustomize', join(REPO_ROOT, dir)],
      `kubectl kustomize ${dir} (scripts/install-system-packages.sh installs kubectl)`,
    ),
  );
}

function one(docs: Manifest[], kind: string, name: string): Manifest {
  const found = docs.filter((d) => d.path === `${kind}/${name}`);
  assert.equal(found.length, 1, `${kind}/${name}`);
  return found[0] as Manifest;
}

/** Whether a pod's labels satisfy a selector's matchLabels. */
function selects(selector: Manifest, labels: Manifest): boolean {
  const wanted = selector.get('matchLabels').value as Record<string, string>;
  const have = labels.value as Record<string, string>;
  return Object.entries(wanted).every(([key, value]) => have[key] === value);
}

describe('deploy/kubernetes manifests', () => {
  const docs = render('deploy/kubernetes');
  const example = render('deploy/kubernetes/example');
  const agent = one(example, 'Pod', 'agent');

  it('the CSIDriver: inline volumes only, pod info on mount, nothing to attach', () => {
    const spec = one(docs, 'CSIDriver', 'csi.mintfs.dev').get('spec');
    assert.equal(spec.get('attachRequired').value, false);
    assert.equal(spec.get('podInfoOnMount').value, true);
    assert.deepEqual(spec.get('volumeLifecycleModes').strings(), ['Ephemeral']);
  });

  it('the node plugin: privileged, hostPID, Bidirectional on the kubelet dir, registrar on its socket', () => {
    const ds = one(docs, 'DaemonSet', 'mintfs-csi-node');
    assert.equal(ds.get('metadata', 'namespace').string(), 'mintfs-system');
    const pod = ds.get('spec', 'template', 'spec');
    assert.equal(pod.get('hostPID').value, true);
    const volumes = pod.get('volumes');
    const hostPath = (mount: Manifest) =>
      volumes.find('name', mount.get('name').string()).get('hostPath', 'path').string();
    const plugin = pod.get('containers').find('name', 'csi-plugin');
    const registrar = pod.get('containers').find('name', 'node-driver-registrar');
    assert.equal(plugin.get('securityContext', 'privileged').value, true);
    const args = plugin.get('args').strings();
    assert.equal(args[0], 'csi');
    const arg = (name: string) => {
      const found = args.find((a) => a.startsWith(`--${name}=`));
      assert.ok(found, `--${name}`);
      return found.slice(name.length + 3);
    };
    const mount = (container: Manifest, path: string) =>
      container.get('volumeMounts').find('mountPath', path);

    const kubelet = mount(plugin, arg('kubelet-dir'));
    assert.equal(kubelet.get('mountPropagation').string(), 'Bidirectional');
    assert.equal(hostPath(kubelet), '/var/lib/kubelet');

    // The registrar tells kubelet where the plugin's socket is on the host.
    const socket = arg('endpoint').replace('unix://', '');
    assert.ok(socket.startsWith('/csi/'));
    const hostSocketDir = hostPath(mount(plugin, '/csi'));
    const registrarArgs = registrar.get('args').strings();
    assert.ok(registrarArgs.includes(`--kubelet-registration-path=${hostSocketDir}/csi.sock`));
    assert.ok(registrarArgs.includes(`--csi-address=${socket}`));
    assert.equal(hostPath(mount(registrar, '/csi')), hostSocketDir);
    assert.equal(hostPath(mount(registrar, '/registration')), '/var/lib/kubelet/plugins_registry');

    // Volumes outlive the plugin: their records on the host, their daemons in a host cgroup.
    assert.equal(hostPath(mount(plugin, arg('state-dir'))), '/var/lib/mintfs-csi');
    const cgroup = arg('daemon-cgroup');
    const cgroupMount = plugin
      .get('volumeMounts')
      .list()
      .find((m) => cgroup.startsWith(`${m.get('mountPath').string()}/`));
    assert.ok(cgroupMount, cgroup);
    assert.equal(hostPath(cgroupMount), '/sys/fs/cgroup');
    assert.equal(hostPath(mount(plugin, '/dev/fuse')), '/dev/fuse');
    for (const path of [arg('keys'), '/etc/mintfs/policy', '/etc/mintfs/profiles'])
      assert.equal(mount(plugin, path).get('readOnly').value, true, path);
    assert.ok(plugin.has('livenessProbe'));
  });

  it('the policy and profiles in the ConfigMaps pass the schemas, and bind the example pod', () => {
    const policy = parsePolicy(
      one(docs, 'ConfigMap', 'mintfs-policy').get('data', 'policy.yaml').string(),
      'mintfs-policy',
    );
    const profiles = one(docs, 'ConfigMap', 'mintfs-profiles').get('data');
    const plugin = one(docs, 'DaemonSet', 'mintfs-csi-node')
      .get('spec', 'template', 'spec', 'containers')
      .find('name', 'csi-plugin');
    assert.equal(
      plugin.get('volumeMounts').find('mountPath', policy.profiles).get('name').string(),
      'profiles',
    );
    for (const name of Object.keys(profiles.value as object))
      parseProfile(profiles.get(name).string(), name);
    for (const binding of policy.bindings)
      assert.ok(profiles.has(`${binding.profile}.yaml`), binding.profile);

    const volume = agent
      .get('spec', 'volumes')
      .list()
      .find((v) => v.has('csi'));
    assert.ok(volume);
    const profile = volume.get('csi', 'volumeAttributes', 'profile').string();
    assert.equal(
      authorize(policy, profile, {
        namespace: agent.get('metadata', 'namespace').string(),
        serviceAccount: agent.get('spec', 'serviceAccountName').string(),
      }),
      `/etc/mintfs/profiles/${profile}.yaml`,
    );
  });

  it('the gateways: two or more, sharing the Redis Service, the CA from a Secret, probes and metrics', () => {
    const deployment = one(docs, 'Deployment', 'mintfs-gateway');
    assert.ok(deployment.get('spec', 'replicas').number() >= 2);
    const pod = deployment.get('spec', 'template', 'spec');
    const gateway = pod.get('containers', 0);
    const config = parseGatewayConfig(
      one(docs, 'ConfigMap', 'mintfs-gateway').get('data', 'gateway.yaml').string(),
      'mintfs-gateway',
    );
    const redis = one(docs, 'Service', 'mintfs-redis');
    assert.equal(
      config.redis?.url,
      `redis://${redis.get('metadata', 'name').string()}:${redis.get('spec', 'ports', 0, 'port').number()}`,
    );
    // A Service's selector is a plain map: the Redis pods must carry it.
    const serviceSelector = new Manifest(
      { matchLabels: redis.get('spec', 'selector').value },
      'Service/mintfs-redis.spec.selector',
    );
    assert.ok(
      selects(
        serviceSelector,
        one(docs, 'Deployment', 'mintfs-redis').get('spec', 'template', 'metadata', 'labels'),
      ),
    );
    const ca = gateway.get('volumeMounts').find('mountPath', config.intercept?.ca);
    assert.equal(
      pod.get('volumes').find('name', ca.get('name').string()).get('secret', 'secretName').string(),
      'mintfs-ca',
    );
    assert.ok(gateway.has('readinessProbe') && gateway.has('livenessProbe'));
    const port = (name: string) =>
      gateway.get('ports').find('name', name).get('containerPort').number();
    assert.equal(config.metrics, `0.0.0.0:${port('metrics')}`);
    assert.equal(gateway.get('livenessProbe', 'httpGet', 'port').string(), 'metrics');
    assert.deepEqual(
      config.listen.map((l) => l.text),
      [`0.0.0.0:${port('proxy')}`],
    );
  });

  it('NetworkPolicies: the gateway admits agent pods on the proxy port; agents reach only the gateway and DNS', () => {
    const gatewayPod = one(docs, 'Deployment', 'mintfs-gateway').get(
      'spec',
      'template',
      'metadata',
      'labels',
    );
    const policy = one(docs, 'NetworkPolicy', 'mintfs-gateway').get('spec');
    assert.ok(selects(policy.get('podSelector'), gatewayPod));
    assert.deepEqual(policy.get('policyTypes').strings(), ['Ingress']);
    const fromAgents = policy.get('ingress', 0);
    // The selector must match the example agent's labels as they are (no labels added by kustomize).
    assert.ok(selects(fromAgents.get('from', 0, 'podSelector'), agent.get('metadata', 'labels')));
    assert.deepEqual(fromAgents.get('ports').value, [{ port: 8080, protocol: 'TCP' }]);
    const redis = one(docs, 'NetworkPolicy', 'mintfs-redis').get('spec');
    assert.ok(selects(redis.get('ingress', 0, 'from', 0, 'podSelector'), gatewayPod));
    assert.ok(
      !selects(redis.get('ingress', 0, 'from', 0, 'podSelector'), agent.get('metadata', 'labels')),
    );

    const egress = one(example, 'NetworkPolicy', 'agents-egress-only-to-mintfs-gateway').get(
      'spec',
    );
    assert.ok(selects(egress.get('podSelector'), agent.get('metadata', 'labels')));
    assert.deepEqual(egress.get('policyTypes').strings(), ['Ingress', 'Egress']);
    assert.deepEqual(egress.get('ingress').value, []);
    const rules = egress.get('egress').list();
    assert.equal(rules.length, 2);
    assert.ok(selects(rules[0]!.get('to', 0, 'podSelector'), gatewayPod));
    assert.deepEqual(rules[0]!.get('ports').value, [{ port: 8080, protocol: 'TCP' }]);
    assert.deepEqual(
      rules[1]!
        .get('ports')
        .list()
        .map((p) => p.get('port').number()),
      [53, 53],
    );
  });

  it('the example agent: a read-only csi volume at /secrets, the proxy and every trust variable', () => {
    const volume = agent
      .get('spec', 'volumes')
      .list()
      .find((v) => v.has('csi'));
    assert.ok(volume);
    assert.equal(volume.get('csi', 'driver').string(), 'csi.mintfs.dev');
    assert.equal(volume.get('csi', 'readOnly').value, true);
    assert.deepEqual(Object.keys(volume.get('csi', 'volumeAttributes').value as object), [
      'profile',
    ]);
    const container = agent.get('spec', 'containers', 0);
    const secrets = container.get('volumeMounts').find('name', volume.get('name').string());
    assert.equal(secrets.get('mountPath').string(), '/secrets');
    assert.equal(secrets.get('readOnly').value, true);
    const env = container.get('env');
    const value = (name: string) => env.find('name', name).get('value').string();
    assert.equal(value('HTTPS_PROXY'), 'http://mintfs-gateway.mintfs-system.svc:8080');
    const ca = container.get('volumeMounts').find('name', 'mintfs-ca').get('mountPath').string();
    for (const name of EXPECTED_TRUST_VARIABLES) assert.equal(value(name), `${ca}/ca.pem`, name);
  });
});
