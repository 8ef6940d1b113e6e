/**
 * git's smart HTTP protocol: a push starts with a discovery request,
 * `GET <repo>/info/refs?service=git-receive-pack`, then POSTs the pack to
 * `<repo>/git-receive-pack` (a clone or fetch: git-upload-pack, likewise).
 * git shows its user the text of a refused discovery (as `remote:` lines),
 * but of a refused POST only "HTTP 403" and then "Everything up-to-date".
 * So a discovery is judged as the POST it announces too: a push the token
 * cannot make is refused where git tells its user why.
 */

const SERVICES = ['git-receive-pack', 'git-upload-pack'] as const;
const DISCOVERY_SUFFIX = '/info/refs';

export interface AnnouncedGitRequest {
  readonly service: (typeof SERVICES)[number];
  readonly method: 'POST';
  readonly rawPath: string;
  readonly pathSegments: readonly string[];
}

/** The POST a git discovery request announces, or undefined for any other request. */
export function announcedGitRequest(
  method: string,
  rawPath: string,
  pathSegments: readonly string[],
  query: string,
): AnnouncedGitRequest | undefined {
  if (method !== 'GET' || !rawPath.endsWith(DISCOVERY_SUFFIX)) return undefined;
  if (pathSegments.length < 2 || pathSegments.at(-1) !== 'refs' || pathSegments.at(-2) !== 'info')
    return undefined;
  const service = new URLSearchParams(query).getAll('service');
  const named = SERVICES.find((known) => service.includes(known));
  if (named === undefined) return undefined;
  return {
    service: named,
    method: 'POST',
    rawPath: `${rawPath.slice(0, -DISCOVERY_SUFFIX.length)}/${named}`,
    pathSegments: [...pathSegments.slice(0, -2), named],
  };
}
