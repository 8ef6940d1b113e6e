/**
 * The node plugin's requests, checked before anything touches the disk.
 * kubelet fills them, but from a pod spec: `volumeAttributes`, the volume's
 * name (in the target path) and `readOnly` are written by pod authors, who
 * are not trusted. Every field is held to the shape kubelet gives it, and
 * anything else (an unknown attribute, a path outside kubelet's pods
 * directory, a writable or block volume) is refused naming the field.
 */
import { lstatSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import * as z from 'zod';
import { MintfsError } from '../errors.js';
import { NAMESPACE_NAME, PROFILE_NAME, SERVICE_ACCOUNT_NAME } from './policy.js';

/** kubelet's volume context keys with podInfoOnMount and an inline (ephemeral) volume. */
export const POD_INFO = {
  name: 'csi.storage.k8s.io/pod.name',
  namespace: 'csi.storage.k8s.io/pod.namespace',
  uid: 'csi.storage.k8s.io/pod.uid',
  serviceAccount: 'csi.storage.k8s.io/serviceAccount.name',
  ephemeral: 'csi.storage.k8s.io/ephemeral',
} as const;
/** The one attribute pod authors set. */
export const PROFILE_ATTRIBUTE = 'profile';

/** A pod uid: a UUID, or a static pod's 32 hex digits. */
const POD_UID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/;
/** A pod's name: a DNS-1123 subdomain. */
const POD_NAME = SERVICE_ACCOUNT_NAME;
/** A volume name in a pod spec: a DNS-1123 label. */
const VOLUME_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** kubelet's ephemeral ids are csi-<sha256>; any short name of safe characters is taken. */
const VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** The access modes a read-only volume is published with (kubelet asks SINGLE_NODE_WRITER for inline volumes). */
const ACCESS_MODES = [
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'MULTI_NODE_READER_ONLY',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
] as const;

export interface Pod {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface PublishRequest {
  readonly volumeId: string;
  readonly targetPath: string;
  readonly profile: string;
  readonly pod: Pod;
}

export interface UnpublishRequest {
  readonly volumeId: string;
  readonly targetPath: string;
}

const VolumeId = z
  .string()
  .min(1, { message: 'required', abort: true })
  .regex(VOLUME_ID, 'must be 1-128 characters of A-Z a-z 0-9 _ . -');

const PublishSchema = z.object({
  volumeId: VolumeId,
  targetPath: z.string().min(1, 'required'),
  stagingTargetPath: z.literal('', 'must be empty: mintfs volumes are not staged'),
  readonly: z.literal(true, 'must be true: mintfs volumes are read-only (readOnly: true)'),
  volumeCapability: z.object(
    {
      block: z.null('block volumes are not supported: mintfs volumes are file systems').optional(),
      mount: z.object(
        {
          fsType: z.literal('', 'must be empty: a mintfs volume is its own file system'),
          mountFlags: z.array(z.string()).length(0, 'must be empty: mintfs takes no mount flags'),
          volumeMountGroup: z.literal('', 'must be empty: fsGroup does not apply'),
        },
        'required: a mintfs volume is a mount volume',
      ),
      accessMode: z.object(
        {
          mode: z.enum(ACCESS_MODES, {
            error: `must be one of ${ACCESS_MODES.join(' ')}: nothing is shared between nodes`,
          }),
        },
        'required',
      ),
    },
    'required',
  ),
  volumeContext: z.record(z.string(), z.string()),
});

const UnpublishSchema = z.object({ volumeId: VolumeId, targetPath: z.string().min(1, 'required') });

/** A field gRPC left unset (null message) or absent: "required", not zod's type text. */
function requiredWhenMissing(issue: { code?: string; input?: unknown }): string | undefined {
  return issue.code === 'invalid_type' && (issue.input === undefined || issue.input === null)
    ? 'required'
    : undefined;
}

/** The spec's snake_case name of a request field, for messages kubelet logs. */
function fieldName(path: readonly PropertyKey[]): string {
  return path.map((part) => String(part).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)).join('.');
}

function invalid(issues: readonly z.core.$ZodIssue[]): MintfsError {
  const lines = issues.map((issue) => `${fieldName(issue.path)}: ${issue.message}`);
  return new MintfsError('ERR_VOLUME_ARGUMENT', lines.join('; '));
}

function argument(field: string, message: string): MintfsError {
  return new MintfsError('ERR_VOLUME_ARGUMENT', `${field}: ${message}`);
}

export function parsePublishRequest(raw: unknown, kubeletDir: string): PublishRequest {
  const parsed = PublishSchema.safeParse(raw, { error: requiredWhenMissing });
  if (!parsed.success) throw invalid(parsed.error.issues);
  const { volumeId, targetPath, volumeContext } = parsed.data;
  const pod = podOf(volumeContext);
  const profile = volumeContext[PROFILE_ATTRIBUTE];
  if (profile === undefined)
    throw argument(
      `volume_context.${PROFILE_ATTRIBUTE}`,
      'required: the profile to mount (volumeAttributes)',
    );
  if (!PROFILE_NAME.test(profile))
    throw argument(`volume_context.${PROFILE_ATTRIBUTE}`, 'must be a profile name');
  checkTargetPath(targetPath, kubeletDir, pod.uid);
  return { volumeId, targetPath, profile, pod };
}

export function parseUnpublishRequest(raw: unknown, kubeletDir: string): UnpublishRequest {
  const parsed = UnpublishSchema.safeParse(raw, { error: requiredWhenMissing });
  if (!parsed.success) throw invalid(parsed.error.issues);
  checkTargetPath(parsed.data.targetPath, kubeletDir);
  return parsed.data;
}

/**
 * Who the pod is, from the keys kubelet sets (podInfoOnMount). kubelet
 * overwrites them after the pod's own attributes, so they are its; any key
 * besides them and `profile` is refused rather than ignored, so a typo or a
 * newer kubelet's key is noticed and not silently dropped.
 */
function podOf(context: Record<string, string>): Pod {
  const known = new Set<string>([...Object.values(POD_INFO), PROFILE_ATTRIBUTE]);
  for (const key of Object.keys(context))
    if (!known.has(key))
      throw argument(
        'volume_context',
        `unknown attribute ${JSON.stringify(key.slice(0, 64))} (mintfs takes only ${PROFILE_ATTRIBUTE})`,
      );
  if (context[POD_INFO.ephemeral] !== 'true')
    throw argument(
      `volume_context.${POD_INFO.ephemeral}`,
      'must be "true": mintfs serves inline (ephemeral) volumes only, not persistent volumes',
    );
  const field = (key: string, pattern: RegExp, what: string): string => {
    const value = context[key];
    if (value === undefined)
      throw argument(
        `volume_context.${key}`,
        'required (set podInfoOnMount: true on the CSIDriver)',
      );
    if (!pattern.test(value)) throw argument(`volume_context.${key}`, `must be ${what}`);
    return value;
  };
  return {
    uid: field(POD_INFO.uid, POD_UID, 'a pod uid'),
    name: field(POD_INFO.name, POD_NAME, 'a pod name'),
    namespace: field(POD_INFO.namespace, NAMESPACE_NAME, 'a namespace name'),
    serviceAccount: field(POD_INFO.serviceAccount, SERVICE_ACCOUNT_NAME, 'a service account name'),
  };
}

/**
 * Where kubelet publishes an inline CSI volume of a pod:
 * <kubelet dir>/pods/<pod uid>/volumes/kubernetes.io~csi/<volume name>/mount.
 * The path is matched as text (no `..`, no doubled slashes) and, at
 * publish, must be the pod's own: the uid in it is the pod's.
 */
export function checkTargetPath(targetPath: string, kubeletDir: string, podUid?: string): void {
  const prefix = `${kubeletDir}/pods/`;
  const rest = targetPath.startsWith(prefix) ? targetPath.slice(prefix.length) : undefined;
  const parts = rest?.split('/');
  const ok =
    parts !== undefined &&
    parts.length === 5 &&
    POD_UID.test(parts[0] as string) &&
    parts[1] === 'volumes' &&
    parts[2] === 'kubernetes.io~csi' &&
    VOLUME_NAME.test(parts[3] as string) &&
    parts[4] === 'mount';
  if (!ok)
    throw argument(
      'target_path',
      `must be ${prefix}<pod uid>/volumes/kubernetes.io~csi/<volume name>/mount`,
    );
  if (podUid !== undefined && parts[0] !== podUid)
    throw argument('target_path', `is not in the directory of pod ${podUid}`);
}

/**
 * The target's directory as kubelet made it, without symbolic links: its
 * parent resolves to itself, and the target, if present, is a directory
 * (a link there would move the mount where the link points). Returns
 * whether the target exists.
 */
export function checkTargetOnDisk(targetPath: string): boolean {
  const parent = dirname(targetPath);
  let real: string;
  try {
    real = realpathSync(parent);
  } catch {
    throw argument('target_path', 'its parent directory does not exist (kubelet makes it)');
  }
  if (real !== parent)
    throw argument('target_path', 'goes through a symbolic link; refusing to mount there');
  try {
    const info = lstatSync(targetPath);
    if (!info.isDirectory()) throw argument('target_path', 'exists and is not a directory');
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    // ENOTCONN: a mount whose daemon died; the caller recovers it.
    if ((err as NodeJS.ErrnoException).code === 'ENOTCONN') return true;
    throw err;
  }
}
