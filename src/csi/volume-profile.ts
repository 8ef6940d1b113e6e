/**
 * The profile one pod's volume serves: the operator's profile, with the
 * pod's workload as the agent and the pod as the only reader. Pure: it
 * takes the profile's YAML text and returns the text the volume's mount
 * daemon loads (the daemon checks it against the profile schema again).
 */
import { parse } from 'yaml';
import { MintfsError } from '../errors.js';
import { parseProfile } from '../profile/load-profile.js';
import type { Pod } from './requests.js';

/** `namespace/serviceAccount`: what `mintfs revoke --agent` names to stop a workload's tokens. */
export function agentOf(pod: Pod): string {
  return `${pod.namespace}/${pod.serviceAccount}`;
}

/**
 * Segments of a cgroup path that only this pod's processes have, however
 * kubelet names pod cgroups: the cgroupfs driver (`…/pod<uid>/…`) and the
 * systemd driver, per QoS class (`kubepods-burstable-pod<uid with _>.slice`).
 * Any one of them in a reader's cgroup path makes it this pod's.
 */
export function podCgroupSegments(podUid: string): string[] {
  const systemd = podUid.replaceAll('-', '_');
  return [
    `pod${podUid}`,
    `kubepods-pod${systemd}.slice`,
    `kubepods-burstable-pod${systemd}.slice`,
    `kubepods-besteffort-pod${systemd}.slice`,
  ];
}

type Raw = Record<string, unknown>;

function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The volume's profile, as JSON (which is YAML). Every file's readers are
 * narrowed to the pod's cgroup (the operator's uids and exe rules stay; a
 * `containers` rule of the profile is replaced, since no container but the
 * pod's may read), and every token names its reader.
 */
export function volumeProfileText(profileText: string, source: string, pod: Pod): string {
  // The operator's profile must be valid as written, so its errors name its own fields.
  parseProfile(profileText, source);
  const raw: unknown = parse(profileText);
  if (!isRecord(raw) || !isRecord(raw['files']))
    throw new MintfsError('ERR_PROFILE_INVALID', `profile ${source}: not a mapping with files`);
  const containers = podCgroupSegments(pod.uid);
  const pinned = (readers: unknown): Raw => ({
    ...(isRecord(readers) ? readers : {}),
    containers,
  });
  const files = Object.fromEntries(
    Object.entries(raw['files']).map(([path, spec]) => [
      path,
      isRecord(spec)
        ? { ...spec, readers: pinned(spec['readers'] ?? raw['readers']), readerCaveat: true }
        : spec,
    ]),
  );
  const volume = {
    ...raw,
    agent: agentOf(pod),
    readers: pinned(raw['readers']),
    readerCaveat: true,
    files,
  };
  const text = `${JSON.stringify(volume, null, 2)}\n`;
  parseProfile(text, `${source} (for pod ${pod.namespace}/${pod.name})`);
  return text;
}
