/**
 * The trust variables issue 14 names, written out here rather than imported
 * from src/contain/sandbox-env.ts: a variable dropped from the source must
 * fail the containment tests that check every runtime sets it.
 */
export const EXPECTED_TRUST_VARIABLES = [
  'SSL_CERT_FILE',
  'CURL_CA_BUNDLE',
  'REQUESTS_CA_BUNDLE',
  'NODE_EXTRA_CA_CERTS',
  'GIT_SSL_CAINFO',
  'PIP_CERT',
  'AWS_CA_BUNDLE',
] as const;
