/**
 * `credential: { aws: { ..., assumeRole: { roleArn, ... } } }`: temporary
 * keys from STS AssumeRole, one role session per agent (its name names the
 * agent, so CloudTrail says which agent did what), minted on first use and
 * refreshed before they expire by the gateway's minted-credential cache.
 *
 * A token's `aws-policy NAME` caveat picks one of the session policies the
 * config names; the session is then narrowed by it, so IAM enforces what the
 * gateway cannot see (actions in JSON bodies, list prefixes). The static keys
 * beside assumeRole are the gateway's own, used only to call STS.
 */
import * as z from 'zod';
import { textOf } from '../config/yaml-config.js';
import { durationMs, HttpsUrl } from '../credentials/schema-parts.js';
import { tokenService } from '../credentials/token-service.js';
import type { AwsKeys } from '../credentials/credential.js';
import type { CredentialScope, Minted, Minter, TokenScope } from '../credentials/source.js';
import { refusalFor } from '../credentials/value.js';
import { AWS_POLICY_NAME } from '../token/caveats.js';
import { parseInstant } from '../util/instant.js';
import { signingScopeOf } from './endpoint.js';
import { signRequest } from './sign.js';

/** AWS's bound on an inline session policy, packed. */
const MAX_POLICY_CHARS = 2048;

const PolicyDocument = z
  .record(z.string(), z.unknown())
  .refine((doc) => Array.isArray(doc.Statement) || typeof doc.Statement === 'object', {
    message: 'must be an IAM policy document with a Statement',
  })
  .refine((doc) => JSON.stringify(doc).length <= MAX_POLICY_CHARS, {
    message: `must be at most ${MAX_POLICY_CHARS} characters as JSON (AWS's bound on a session policy)`,
  })
  .describe('An IAM policy document ({ Version, Statement })');

export const AssumeRoleSchema = z
  .strictObject({
    roleArn: z
      .string(textOf('a role ARN such as arn:aws:iam::123456789012:role/agents'))
      .regex(
        /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/,
        'must be a role ARN such as arn:aws:iam::123456789012:role/agents',
      )
      .describe('The role to assume for each agent'),
    externalId: z
      .string()
      .regex(/^[\w+=,.@:/-]{2,1224}$/, 'must be 2 to 1224 characters of [A-Za-z0-9+=,.@:/_-]')
      .optional()
      .describe("The role trust policy's sts:ExternalId"),
    duration: durationMs(15 * 60_000, 12 * 3_600_000, '15m..12h')
      .prefault('1h')
      .describe("Each session's lifetime (at most the role's maximum)"),
    stsUrl: HttpsUrl.prefault('https://sts.amazonaws.com').describe(
      "STS's endpoint (a regional one such as https://sts.eu-west-1.amazonaws.com is AWS's advice)",
    ),
    region: z
      .string()
      .regex(/^[a-z0-9-]{1,64}$/, 'must be a region such as us-east-1')
      .optional()
      .describe(
        "The region STS requests are signed for (default: from stsUrl's host, else us-east-1)",
      ),
    ca: z.string().min(1).optional().describe('Extra CA certificates (PEM) to trust for stsUrl'),
    timeout: durationMs(100, 60_000, '100ms..1m')
      .prefault('10s')
      .describe('Time STS has to answer'),
    policies: z
      .record(
        z.string().regex(AWS_POLICY_NAME, 'policy names are like read-reports'),
        PolicyDocument,
      )
      .optional()
      .describe(
        'Session policies by name, which tokens pick with their aws-policy caveat (profile `aws.policy`)',
      ),
    policy: z
      .string()
      .regex(AWS_POLICY_NAME, 'must be a policy name')
      .optional()
      .describe(
        'The session policy of tokens that name none (one of `policies`); without it they get the role',
      ),
  })
  .superRefine((config, ctx) => {
    if (config.policy !== undefined && config.policies?.[config.policy] === undefined)
      ctx.addIssue({ code: 'custom', path: ['policy'], message: `is not one of policies` });
  })
  .describe('STS AssumeRole: a role session per agent, with temporary keys (docs/aws.md)');
export type AssumeRoleConfig = z.output<typeof AssumeRoleSchema>;

/** RoleSessionName: [\w+=,.@-]{2,64}, naming the agent. */
export function sessionNameFor(agent: string): string {
  const name = `mintfs-${agent === '' ? 'token' : agent}`.replace(/[^\w+=,.@-]/g, '-');
  return name.slice(0, 64);
}

const ANSWER = z.object({
  AccessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/),
  SecretAccessKey: z.string().min(1).max(1024),
  SessionToken: z.string().min(1).max(8192),
  Expiration: z.string(),
});

function element(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
}

/** The minter: `baseKeys` are the gateway's own keys, read for each call. */
export function assumeRoleMinter(
  config: AssumeRoleConfig,
  baseKeys: () => AwsKeys,
  service: string,
  clock: () => number,
): Minter {
  const where = `aws assumeRole ${config.roleArn}`;
  const fail = refusalFor(service, where);
  const client = tokenService(config.timeout, config.ca, fail);
  const url = new URL(config.stsUrl);
  const region = config.region ?? signingScopeOf(url.hostname)?.region ?? 'us-east-1';
  const policies = config.policies ?? {};
  return {
    scope(token: TokenScope): CredentialScope | string {
      const named = token.awsPolicies;
      const name = named === undefined ? config.policy : named[0];
      if (named !== undefined && named.length > 1)
        return `the token's aws-policy caveats name different session policies (${named.join(', ')}): none is used`;
      if (name === undefined) return { key: '' };
      if (!Object.hasOwn(policies, name))
        return `the token's session policy ${name} is not one upstreams.${service}.credential.aws.assumeRole.policies names`;
      return { key: `policy:${name}`, awsPolicy: name };
    },
    async mint({ agent, scope }): Promise<Minted> {
      const form = new URLSearchParams({
        Action: 'AssumeRole',
        Version: '2011-06-15',
        RoleArn: config.roleArn,
        RoleSessionName: sessionNameFor(agent),
        DurationSeconds: String(Math.floor(config.duration / 1000)),
      });
      if (config.externalId !== undefined) form.set('ExternalId', config.externalId);
      if (scope.awsPolicy !== undefined)
        form.set('Policy', JSON.stringify(policies[scope.awsPolicy]));
      const body = Buffer.from(form.toString());
      const signed = await signRequest({
        method: 'POST',
        host: url.host,
        path: url.pathname,
        query: '',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body,
        scope: { service: 'sts', region },
        keys: baseKeys(),
        now: new Date(clock()),
      });
      const answer = await client.request(
        url.href,
        { method: 'POST', headers: signed.headers, body: body.toString() },
        fail,
      );
      if (answer.status !== 200) {
        // STS's error code names the problem (AccessDenied, ...); its message is not passed on.
        const code = element(answer.body, 'Code')
          ?.replace(/[^\w.-]/g, '')
          .slice(0, 64);
        throw fail(`answered ${answer.status}${code ? ` ${code}` : ''}`);
      }
      const parsed = ANSWER.safeParse({
        AccessKeyId: element(answer.body, 'AccessKeyId'),
        SecretAccessKey: element(answer.body, 'SecretAccessKey'),
        SessionToken: element(answer.body, 'SessionToken'),
        Expiration: element(answer.body, 'Expiration'),
      });
      const expires = parsed.success ? parseInstant(parsed.data.Expiration) : undefined;
      if (!parsed.success || expires === undefined)
        throw fail('answered without temporary keys and their expiry');
      const keys: AwsKeys = {
        accessKeyId: parsed.data.AccessKeyId,
        secretAccessKey: parsed.data.SecretAccessKey,
        sessionToken: parsed.data.SessionToken,
      };
      return { value: keys.secretAccessKey, expiresAt: expires.getTime(), aws: keys };
    },
    close: () => client.close(),
  };
}
