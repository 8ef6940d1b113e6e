/**
 * Mount profiles: the single source of truth for what a mount serves.
 * Strict objects throughout, so a typo such as `methdos` is an error rather
 * than a caveat silently left out of every token.
 */
import { ApprovalConditionSchema } from '../token/approval-ticket.js';
import * as z from 'zod';
import { textOf } from '../config/yaml-config.js';
import {
  AWS_POLICY_NAME,
  GITHUB_LEVELS,
  GITHUB_PERMISSION,
  GITHUB_REPOSITORY,
  MAX_USES,
} from '../token/caveats.js';
import { MAX_TTL_MS, TOKEN_LIMITS } from '../token/limits.js';
import { pathGlobProblem } from '../token/path-glob.js';
import {
  AGENT_NAME,
  HOST_NAME,
  HTTP_METHODS,
  SERVICE_NAME,
  TOKEN_PREFIX,
  TOKEN_PREFIX_RULE,
} from '../token/vocabulary.js';
import { parseDuration } from '../util/duration.js';

export const MIN_TTL_MS = 10_000;
export const DEFAULT_TTL = '5m';

const FILE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$/;

const Ttl = z
  .string(textOf('a duration such as 90s, 5m or 1h'))
  .describe('Token lifetime such as 90s, 5m or 1h; between 10s and 1h')
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${text}" is not a duration such as 90s, 5m or 1h`,
      });
      return z.NEVER;
    }
    if (ms > MAX_TTL_MS || ms < MIN_TTL_MS) {
      ctx.addIssue({ code: 'custom', message: `${text} is outside 10s..1h` });
      return z.NEVER;
    }
    return ms;
  });

const FileMode = z
  .string({ error: 'write the mode as a quoted octal string such as "0440"' })
  .regex(/^0?[0-7]{3}$/, 'must be an octal mode such as "0440"')
  .transform((text) => parseInt(text, 8))
  .refine(
    (mode) => (mode & ~0o444) === 0,
    'must grant read permission only (no write or execute bits)',
  )
  .describe('Permission bits of the virtual files, as a quoted octal string; read bits only');

const Id = z.number().int().min(0).max(0xfffffffe);

const Ownership = {
  uid: Id.optional().describe('Owner uid of the virtual files (the agent container user)'),
  gid: Id.optional().describe('Owner gid of the virtual files'),
  mode: FileMode.optional(),
};

const CGROUP_SEGMENT = /^[A-Za-z0-9_.:@-]{1,255}$/;

export const ReadersSchema = z
  .strictObject({
    uids: z
      .array(Id)
      .min(1, 'must list at least one uid')
      .optional()
      .describe('Reader uids allowed (as the kernel reports them to the host)'),
    exe: z
      .array(
        z
          .string()
          .regex(/^\/[^\0]*$/, 'must be an absolute executable path such as /usr/bin/cat')
          .max(511),
      )
      .min(1, 'must list at least one executable')
      .optional()
      .describe('Reader executables allowed: the exact path of /proc/PID/exe'),
    containers: z
      .array(
        z.string().refine(
          (entry) =>
            CGROUP_SEGMENT.test(entry) ||
            (entry.length <= 511 &&
              entry.startsWith('/') &&
              entry
                .slice(1)
                .split('/')
                .every((part) => CGROUP_SEGMENT.test(part) && part !== '.' && part !== '..')),
          'must be one cgroup path segment (a container id), or a cgroup path from the root such as /system.slice/docker-ID.scope',
        ),
      )
      .min(1, 'must list at least one container')
      .optional()
      .describe(
        "Containers allowed. A cgroup path from the root (/system.slice/docker-ID.scope): the reader's cgroup is that one or below it; safe where a container may create cgroups. Or one whole segment of the reader's cgroup path, matched exactly anywhere in it (Docker: docker-ID.scope with the systemd driver, ID with cgroupfs, ID being the full 64-character id; never a short id)",
      ),
  })
  .refine(
    (readers) => readers.uids ?? readers.exe ?? readers.containers,
    'must restrict by at least one of uids, exe, containers',
  )
  .describe('Who may read: every listed kind must match (native backend only); others get EACCES');

const ReaderControls = {
  readers: ReadersSchema.optional(),
  readerCaveat: z
    .boolean()
    .optional()
    .describe(
      "Stamp the reader (uid, gid, pid, start time, executable, cgroup) into each token as a `reader` caveat, for the gateway's audit (native backend only)",
    ),
};

export const TOKEN_FORMATS = ['raw', 'line', 'json', 'aws-credential-process'] as const;

export const FileSpecSchema = z
  .strictObject({
    service: z
      .string()
      .regex(SERVICE_NAME, 'must be a lower-case name such as github')
      .describe('Gateway upstream this token is for; stamped as the `service` caveat'),
    hosts: z
      .array(
        z
          .string(textOf('a hostname such as api.github.com'))
          .regex(HOST_NAME, 'must be a lower-case hostname without port'),
      )
      .min(1, 'must list at least one host')
      .describe('Hostnames the token may be used against (`host` caveat)'),
    methods: z
      .array(z.enum(HTTP_METHODS, { error: `must be one of ${HTTP_METHODS.join(' ')}` }))
      .min(1, 'must list at least one method')
      .describe('HTTP methods the token allows (`method` caveat)'),
    paths: z
      .array(
        z.string(textOf('a path glob such as "/repos/acme/**"')).superRefine((glob, ctx) => {
          const problem = pathGlobProblem(glob);
          if (problem) ctx.addIssue({ code: 'custom', message: `glob ${problem}` });
        }),
      )
      .min(1, 'must list at least one path glob')
      .describe('Request path globs (`path` caveat): `*` within a segment, `**` for any segments'),
    ttl: Ttl.optional().describe('Per-file token lifetime; overrides the profile ttl'),
    uses: z
      .number(textOf('a whole number of requests'))
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .max(MAX_USES, `must be at most ${MAX_USES}`)
      .optional()
      .describe(
        'Requests each token may make (`uses` caveat), counted by the gateway per token id: 1 makes single-use tokens; no limit when absent',
      ),
    github: z
      .strictObject({
        repositories: z
          .array(
            z
              .string(textOf('a repository name such as widgets'))
              .regex(
                GITHUB_REPOSITORY,
                'must be a repository name without its owner, such as widgets',
              ),
          )
          .min(1, 'must list at least one repository')
          .max(
            TOKEN_LIMITS.maxListValues,
            `lists at most ${TOKEN_LIMITS.maxListValues} repositories`,
          )
          .optional()
          .describe(
            "Repositories (without the owner) the token may ask a GitHub App installation token for (`github-repos` caveat); the gateway upstream's ceiling when absent",
          ),
        permissions: z
          .record(
            z
              .string()
              .regex(GITHUB_PERMISSION, 'must be a GitHub permission name such as contents'),
            z.enum(GITHUB_LEVELS),
          )
          .refine((p) => Object.keys(p).length > 0, 'must name at least one permission')
          .refine(
            (p) => Object.keys(p).length <= TOKEN_LIMITS.maxListValues,
            `names at most ${TOKEN_LIMITS.maxListValues} permissions`,
          )
          .optional()
          .describe(
            "Permissions (such as { contents: read }) the token may ask for (`github-perms` caveat); the upstream's ceiling when absent",
          ),
      })
      .optional()
      .describe(
        "What the token may ask of GitHub when the gateway upstream's credential is a githubApp: the installation token is narrowed to this (docs/credentials.md)",
      ),
    approval: z
      .optional(ApprovalConditionSchema)
      .describe(
        'Requests that wait for a person: the token carries an approval caveat (third-party), and the gateway holds such a request until an approver decides (docs/approval.md)',
      ),
    aws: z
      .strictObject({
        policy: z
          .string(textOf('a session policy name such as read-reports'))
          .regex(AWS_POLICY_NAME, 'must be a policy name such as read-reports')
          .describe(
            "The session policy (one the gateway upstream's assumeRole.policies names) the role session gets (`aws-policy` caveat)",
          ),
      })
      .optional()
      .describe(
        'What the token may ask of AWS when the gateway upstream assumes a role: the session is narrowed by this policy (docs/aws.md)',
      ),
    format: z
      .enum(TOKEN_FORMATS)
      .default('raw')
      .describe(
        'raw: the token alone; line: the token and a newline; json: {"token","expiresAt","tokenId"}; aws-credential-process: an AWS credential_process document whose SessionToken is the token and Expiration its expiry, for `credential_process = cat FILE` (docs/aws.md)',
      ),
    prefix: z
      .string(textOf('a prefix such as ghp_'))
      .regex(TOKEN_PREFIX, TOKEN_PREFIX_RULE)
      .optional()
      .describe(
        "Fixed text before the token, for clients that check a key's shape (gh wants ghp_); the gateway upstream's tokenPrefix strips it",
      ),
    ...Ownership,
    ...ReaderControls,
  })
  .superRefine((spec, ctx) => {
    // Every caveat minted from a profile stays inside what verifiers accept
    // (src/token/limits.ts); a profile past them would mint refused tokens.
    for (const field of ['hosts', 'paths'] as const) {
      const values = spec[field];
      if (values.length > TOKEN_LIMITS.maxListValues)
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: `lists at most ${TOKEN_LIMITS.maxListValues} values`,
        });
      else if (Buffer.byteLength(values.join(' ')) > TOKEN_LIMITS.maxCaveatBytes - 16)
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: `together are over ${TOKEN_LIMITS.maxCaveatBytes - 16} bytes`,
        });
    }
  })
  .describe('One virtual file: every read mints a token with these caveats');

export const ProfileSchema = z
  .strictObject({
    agent: z
      .string()
      .regex(AGENT_NAME, 'must be a name such as demo-agent')
      .describe('Whom the tokens are minted for; stamped into every token as `agent`'),
    ttl: Ttl.prefault(DEFAULT_TTL).describe('Default token lifetime, at most 1h'),
    ...Ownership,
    ...ReaderControls,
    files: z
      .record(z.string(), FileSpecSchema)
      .describe('Virtual files, by path relative to the mount root (such as github/token)'),
  })
  .superRefine((profile, ctx) => {
    const names = Object.keys(profile.files);
    if (names.length === 0)
      ctx.addIssue({ code: 'custom', path: ['files'], message: 'must declare at least one file' });
    for (const name of names) {
      const problem = filePathProblem(name);
      if (problem) ctx.addIssue({ code: 'custom', path: ['files', name], message: problem });
      const clash = names.find((other) => other.startsWith(`${name}/`));
      if (clash)
        ctx.addIssue({
          code: 'custom',
          path: ['files', name],
          message: `is also a directory of "${clash}"`,
        });
    }
  })
  .describe('A mintfs mount profile');

export type Profile = z.output<typeof ProfileSchema>;
export type FileSpec = z.output<typeof FileSpecSchema>;
export type TokenFormat = (typeof TOKEN_FORMATS)[number];
export type ReaderRules = z.output<typeof ReadersSchema>;

function filePathProblem(name: string): string | undefined {
  if (name.startsWith('/')) return 'must be relative to the mount root (no leading /)';
  const segments = name.split('/');
  for (const segment of segments) {
    if (segment === '') return 'must not contain empty segments';
    if (segment === '.' || segment === '..') return 'must not contain . or .. segments';
    if (!FILE_SEGMENT.test(segment))
      return `segment "${segment}" may only use letters, digits, . _ and -`;
  }
  return undefined;
}
