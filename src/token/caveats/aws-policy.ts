/**
 * `aws-policy NAME`: the session policy (one the gateway config names) the
 * gateway attaches when it assumes an AWS role for the token, so IAM enforces
 * actions and resources the gateway's method and path caveats cannot see
 * (the action inside a JSON-protocol body, an S3 prefix in a list query).
 * Like `uses`, it allows every request itself. A holder may append another;
 * two naming different policies leave no policy the token may use, and the
 * gateway refuses it (it never picks one of them).
 */
import type { Caveat, CaveatKind } from './kind.js';

export const AWS_POLICY_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export interface AwsPolicyCaveat extends Caveat {
  readonly kind: 'aws-policy';
  readonly policy: string;
}

export const awsPolicy: CaveatKind = {
  name: 'aws-policy',
  parse(values, text, malformed) {
    const [policy] = values;
    if (values.length !== 1 || policy === undefined || !AWS_POLICY_NAME.test(policy))
      return malformed('expects one session policy name, such as read-reports');
    const caveat: AwsPolicyCaveat = { kind: 'aws-policy', text, policy, check: () => undefined };
    return { ok: true, caveat };
  },
  fromGrant: (grant) =>
    grant.awsPolicy === undefined ? undefined : `aws-policy ${grant.awsPolicy}`,
};

/** The distinct policies a token's aws-policy caveats name (undefined: none). */
export function awsPoliciesOf(caveats: readonly Caveat[]): readonly string[] | undefined {
  const named = caveats.filter((c): c is AwsPolicyCaveat => c.kind === 'aws-policy');
  return named.length === 0 ? undefined : [...new Set(named.map((c) => c.policy))];
}
