/**
 * The operator's CSI policy: which profiles pods of which namespaces and
 * service accounts may mount. Pod authors write `volumeAttributes` (the
 * profile they ask for); they do not write this file, so it, not the
 * attributes, decides. A profile named by no binding is refused.
 *
 *   profiles: /etc/mintfs/profiles     # NAME.yaml profile files
 *   bindings:
 *     - profile: github-readonly
 *       namespaces: [agents]
 *       serviceAccounts: [coder]       # omitted: any service account of those namespaces
 */
import { join } from 'node:path';
import * as z from 'zod';
import { parseYamlConfig, readConfigFile, textOf, type ConfigKind } from '../config/yaml-config.js';
import { MintfsError } from '../errors.js';

/** A profile's name: its file is NAME.yaml in the profiles directory (no path, no dots). */
export const PROFILE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A Kubernetes namespace: a DNS-1123 label. */
export const NAMESPACE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A Kubernetes service account: a DNS-1123 subdomain. */
export const SERVICE_ACCOUNT_NAME =
  /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

export const BindingSchema = z
  .strictObject({
    profile: z
      .string(textOf('a profile name such as github-readonly'))
      .regex(PROFILE_NAME, 'must be a profile name such as github-readonly (its file is NAME.yaml)')
      .describe('The profile pods may ask for in volumeAttributes.profile'),
    namespaces: z
      .array(z.string().regex(NAMESPACE_NAME, 'must be a Kubernetes namespace name'))
      .min(1, 'must list at least one namespace')
      .describe('Namespaces whose pods may mount it'),
    serviceAccounts: z
      .array(z.string().regex(SERVICE_ACCOUNT_NAME, 'must be a Kubernetes service account name'))
      .min(1, 'must list at least one service account (omit the field for any)')
      .optional()
      .describe('Service accounts (of those namespaces) whose pods may mount it; any when absent'),
  })
  .describe('One binding: a profile, and the workloads that may mount it');

export const PolicySchema = z
  .strictObject({
    profiles: z
      .string(textOf('an absolute directory such as /etc/mintfs/profiles'))
      .regex(/^\/[^\0]*$/, 'must be an absolute directory such as /etc/mintfs/profiles')
      .describe('Directory of NAME.yaml mount profiles'),
    bindings: z.array(BindingSchema).describe('Who may mount which profile; nothing else may'),
  })
  .describe('The CSI node plugin policy (mintfs csi --policy)');
export type Policy = z.infer<typeof PolicySchema>;

const POLICY: ConfigKind = {
  noun: 'policy',
  invalidCode: 'ERR_POLICY_INVALID',
  unreadableCode: 'ERR_POLICY_UNREADABLE',
};

export function loadPolicy(file: string): Policy {
  return parsePolicy(readConfigFile(file, POLICY), file);
}

export function parsePolicy(text: string, source: string): Policy {
  return parseYamlConfig(text, source, PolicySchema, POLICY);
}

export interface Workload {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/**
 * The profile file a workload may mount under `name`, or ERR_VOLUME_DENIED.
 * The file path is built only from a name a binding holds (checked by the
 * schema), never from the request's text.
 */
export function authorize(policy: Policy, name: string, workload: Workload): string {
  const binding = policy.bindings.find(
    (b) =>
      b.profile === name &&
      b.namespaces.includes(workload.namespace) &&
      (b.serviceAccounts === undefined || b.serviceAccounts.includes(workload.serviceAccount)),
  );
  if (binding === undefined)
    throw new MintfsError(
      'ERR_VOLUME_DENIED',
      `profile ${PROFILE_NAME.test(name) ? name : '(not a profile name)'} is not bound to ${workload.namespace}/${workload.serviceAccount}`,
    );
  return join(policy.profiles, `${binding.profile}.yaml`);
}
