/**
 * `credential: { aws: { accessKeyId: SOURCE, secretAccessKey: SOURCE } }`:
 * the key pair an upstream with `sign: sigv4` signs with, each part from a
 * credential source (`{ file }`, `{ env }`), read at start and re-read when a
 * file changes, like any static credential.
 */
import { resolve } from 'node:path';
import * as z from 'zod';
import { MintfsError } from '../errors.js';
import type { AwsKeys } from '../credentials/credential.js';
import { envSource } from '../credentials/env.js';
import { fileSource } from '../credentials/file.js';
import { openSource, resolveSourcePaths } from '../credentials/registry.js';
import type { Minter, SourceContext } from '../credentials/source.js';
import { AssumeRoleSchema, assumeRoleMinter } from './assume-role.js';

const AWS_PARTS = ['accessKeyId', 'secretAccessKey', 'sessionToken'] as const;

// Static sources only: the parts of a key pair are read together, at once.
const KeyPartSchema = z.union([fileSource.schema, envSource.schema], {
  error: () => 'must be { file: PATH } or { env: NAME }',
});

const StaticKeysSchema = z
  .strictObject({
    accessKeyId: KeyPartSchema.describe('Where the access key id comes from: { file } or { env }'),
    secretAccessKey: KeyPartSchema.describe(
      'Where the secret access key comes from: { file } or { env }',
    ),
    sessionToken: KeyPartSchema.optional().describe(
      'Where a session token comes from, for temporary keys: { file } or { env }',
    ),
    assumeRole: AssumeRoleSchema.optional().describe(
      'Sign with temporary keys of this role, one session per agent; the keys above are then only used to call STS',
    ),
  })
  .describe('A key pair the gateway signs requests with (never seen by the agent)');

export const AwsCredentialSchema = z
  .strictObject({ aws: StaticKeysSchema })
  .describe(
    'AWS keys for an upstream with `sign: sigv4`: the gateway re-signs each request with them (docs/aws.md)',
  );
export type AwsCredentialConfig = z.output<typeof AwsCredentialSchema>;

export function isAwsCredential(config: unknown): config is AwsCredentialConfig {
  return typeof config === 'object' && config !== null && 'aws' in config;
}

export function resolveAwsPaths(config: AwsCredentialConfig, base: string): AwsCredentialConfig {
  const aws = { ...config.aws };
  const ca = aws.assumeRole?.ca;
  if (aws.assumeRole !== undefined && ca !== undefined)
    aws.assumeRole = { ...aws.assumeRole, ca: resolve(base, ca) };
  for (const part of AWS_PARTS) {
    const source = aws[part];
    // A file or env source stays one under path resolution.
    if (source !== undefined) aws[part] = resolveSourcePaths(source, base) as typeof source;
  }
  return { aws };
}

export interface OpenedAwsKeys {
  /** The keys now (throws ERR_CREDENTIAL_UNAVAILABLE naming the part and its source). */
  readonly read: () => AwsKeys;
  /** Files to watch: a change re-reads the keys. */
  readonly watch: readonly string[];
}

/** Opens each part's source; only static ones (the keys are read whole, at once). */
export function openAwsKeys(config: AwsCredentialConfig, context: SourceContext): OpenedAwsKeys {
  const readers: Partial<Record<(typeof AWS_PARTS)[number], () => string>> = {};
  const watch: string[] = [];
  for (const part of AWS_PARTS) {
    const source = config.aws[part];
    if (source === undefined) continue;
    const opened = openSource(source, context);
    if (opened.kind !== 'static')
      throw new MintfsError(
        'ERR_CONFIG_INVALID',
        `upstreams.${context.service}.credential.aws.${part}: must be a static source such as { file } or { env }`,
      );
    readers[part] = opened.read;
    if (opened.watch !== undefined) watch.push(opened.watch);
  }
  const read = (): AwsKeys => ({
    accessKeyId: (readers.accessKeyId as () => string)(),
    secretAccessKey: (readers.secretAccessKey as () => string)(),
    sessionToken: readers.sessionToken?.(),
  });
  read();
  return { read, watch };
}

/**
 * What signs requests: the static keys, or (with assumeRole) a minter of
 * temporary keys per agent that uses the static keys to call STS.
 */
export function openAwsCredential(
  config: AwsCredentialConfig,
  context: SourceContext,
): ({ kind: 'static' } & OpenedAwsKeys) | { kind: 'minted'; minter: Minter } {
  const keys = openAwsKeys(config, context);
  const role = config.aws.assumeRole;
  if (role === undefined) return { kind: 'static', ...keys };
  return {
    kind: 'minted',
    minter: assumeRoleMinter(role, keys.read, context.service, context.clock),
  };
}
