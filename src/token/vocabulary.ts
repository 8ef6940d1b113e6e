/**
 * The words tokens are made of: names of services, agents, hosts and methods.
 * Profiles and caveat parsing share these, so a value a profile accepts is
 * always one a caveat can carry (caveat lists are space-separated).
 */
export const SERVICE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/**
 * An agent: a name, or two joined by one slash (the CSI plugin names a pod's
 * workload namespace/service-account, so `mintfs revoke --agent agents/coder`
 * reaches every pod of that service account).
 */
export const AGENT_NAME =
  /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}(\/[A-Za-z0-9][A-Za-z0-9._@-]{0,252})?$/;
export const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** A fixed prefix before a token's text (profile `prefix`, gateway `tokenPrefix`), such as ghp_. */
export const TOKEN_PREFIX = /^[A-Za-z0-9_-]{1,16}$/;
export const TOKEN_PREFIX_RULE = 'must be 1-16 characters of A-Z a-z 0-9 _ -';
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export function isHttpMethod(value: string): value is HttpMethod {
  return (HTTP_METHODS as readonly string[]).includes(value);
}

/** The location every mintfs macaroon carries. */
export const TOKEN_LOCATION = 'mintfs';
/** The location of the third-party caveat a token needing approval carries (src/approval/). */
export const APPROVAL_LOCATION = 'mintfs-approval';
