/**
 * What `mintfs run` puts in a sandbox's environment for HTTPS interception,
 * for tests that run agent tools (git, gh, Python, Node) on the host against
 * a gateway fixture: its address as the proxy and its interception CA as the
 * only trust.
 */
import type { GatewayFixture } from './gateway-fixture.js';

export function interceptEnv(gw: GatewayFixture, home: string): NodeJS.ProcessEnv {
  const ca = gw.interceptCa;
  if (ca === undefined) throw new Error('interceptEnv: the gateway fixture has no interception CA');
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    HTTPS_PROXY: gw.base,
    https_proxy: gw.base,
    SSL_CERT_FILE: ca,
    CURL_CA_BUNDLE: ca,
    REQUESTS_CA_BUNDLE: ca,
    NODE_EXTRA_CA_CERTS: ca,
    GIT_SSL_CAINFO: ca,
    NODE_USE_ENV_PROXY: '1',
  };
}
