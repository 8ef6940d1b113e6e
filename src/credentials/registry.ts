/**
 * The one list of credential source kinds, and the entry point the gateway
 * uses: the config schema of `credential:` (one strict object per kind, named
 * by its one key), path resolution, and opening a source. Adding a kind is
 * one file and one line here.
 */
import * as z from 'zod';
import { formatPath } from '../config/yaml-config.js';
import { commandSource } from './command.js';
import { envSource } from './env.js';
import { fileSource } from './file.js';
import { githubAppSource } from './github-app.js';
import { oauth2Source } from './oauth2.js';
import type { OpenedSource, SourceContext, SourceKind } from './source.js';

export const SOURCE_KINDS = [
  fileSource,
  envSource,
  commandSource,
  oauth2Source,
  githubAppSource,
] as const;

type KindConfig<K> = K extends SourceKind<infer C> ? C : never;
export type CredentialSourceConfig = KindConfig<(typeof SOURCE_KINDS)[number]>;

const KEYS = SOURCE_KINDS.map((kind) => kind.key);
const SHAPES = KEYS.map((key) => `{ ${key}: ... }`).join(', ');

export const CredentialSourceSchema = z
  .union(
    SOURCE_KINDS.map((kind) => kind.schema) as unknown as [
      z.ZodType<CredentialSourceConfig>,
      ...Array<z.ZodType<CredentialSourceConfig>>,
    ],
    {
      // The problem inside the kind the object names (`command.ttl: required`), not "no branch matched".
      error: (issue) => {
        const kind = kindOf(issue.input);
        const branch = kind === undefined ? undefined : KEYS.indexOf(kind.key);
        const inner = (issue as { errors?: z.core.$ZodIssue[][] }).errors?.[branch ?? -1]?.[0];
        if (inner === undefined) return `must be one of ${SHAPES}`;
        const message =
          inner.code === 'invalid_type' && inner.input === undefined ? 'required' : inner.message;
        const path =
          inner.code === 'unrecognized_keys'
            ? formatPath([...inner.path, inner.keys[0] ?? ''])
            : formatPath(inner.path);
        return `${path}: ${inner.code === 'unrecognized_keys' ? 'unknown field' : message}`;
      },
    },
  )
  .describe(
    'Where the real upstream credential comes from (docs/credentials.md); it never reaches the agent',
  );

function kindOf(config: unknown): SourceKind<unknown> | undefined {
  if (typeof config !== 'object' || config === null) return undefined;
  const found = SOURCE_KINDS.filter((kind) => kind.key in config);
  // Two kinds' keys in one object is ambiguous: no branch is picked.
  return found.length === 1 ? found[0] : undefined;
}

function kindFor(config: CredentialSourceConfig): SourceKind<CredentialSourceConfig> {
  const kind = kindOf(config);
  if (kind === undefined) throw new Error('credential source of no known kind');
  return kind as SourceKind<CredentialSourceConfig>;
}

/** The source kind's name: `file`, `env`, `command`, ... */
export function sourceKindName(config: CredentialSourceConfig): string {
  return kindFor(config).key;
}

export function resolveSourcePaths(
  config: CredentialSourceConfig,
  base: string,
): CredentialSourceConfig {
  return kindFor(config).resolvePaths(config, base);
}

export function openSource(config: CredentialSourceConfig, context: SourceContext): OpenedSource {
  return kindFor(config).open(config, context);
}
