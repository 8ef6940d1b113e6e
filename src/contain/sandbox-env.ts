/**
 * The environment every containment path gives an agent, from one place:
 * the gateway as HTTP(S) proxy for the clients that read the variables, and,
 * with HTTPS interception, the deployment CA's certificate as the trust
 * bundle under every name common clients read (the file is bound at
 * SANDBOX_CA_FILE, where OpenSSL-based tools look by default too). The CA
 * key is never among what a sandbox gets.
 */
export const SANDBOX_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';

/** The variables clients read their trust bundle from: curl, Python requests, Node, git, pip, AWS SDKs, OpenSSL. */
export const TRUST_VARIABLES = [
  'SSL_CERT_FILE',
  'CURL_CA_BUNDLE',
  'REQUESTS_CA_BUNDLE',
  'NODE_EXTRA_CA_CERTS',
  'GIT_SSL_CAINFO',
  'PIP_CERT',
  'AWS_CA_BUNDLE',
] as const;

export function sandboxProxyEnv(gateway: string, intercepting: boolean): Record<string, string> {
  return {
    // curl reads only the lower-case names; Node reads them with NODE_USE_ENV_PROXY.
    HTTP_PROXY: gateway,
    http_proxy: gateway,
    HTTPS_PROXY: gateway,
    https_proxy: gateway,
    // The sandbox's own loopback, where the gateway's bridge listens: its routes
    // ($MINTFS_GATEWAY/NAME, AWS_ENDPOINT_URL_*) are asked directly, not through the
    // gateway as a proxy (which knows no upstream named 127.0.0.1). Go never proxies loopback.
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
    NODE_USE_ENV_PROXY: '1',
    MINTFS_GATEWAY: gateway,
    ...(intercepting
      ? Object.fromEntries(TRUST_VARIABLES.map((name) => [name, SANDBOX_CA_FILE]))
      : {}),
  };
}
