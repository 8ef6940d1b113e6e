/**
 * YAML config files checked by a zod schema: profiles and the gateway config.
 * Every problem becomes one line naming the file and the field
 * (`files."x/token".service: required`); nothing falls back to a default.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type * as z from 'zod';
import { MintfsError, type MintfsErrorCode } from '../errors.js';
import { assertTrustedPath } from '../util/trusted-path.js';

export interface ConfigKind {
  /** How the file is named in messages: "profile", "gateway config". */
  readonly noun: string;
  readonly invalidCode: MintfsErrorCode;
  readonly unreadableCode: MintfsErrorCode;
}

export function readConfigFile(file: string, kind: ConfigKind): string {
  // Before reading: a config someone else can rewrite must not configure us.
  assertTrustedPath(file, kind.noun);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : 'cannot be read';
    throw new MintfsError(kind.unreadableCode, `${kind.noun} ${file}: ${reason}`, { cause: err });
  }
}

export function parseYamlConfig<S extends z.ZodType>(
  text: string,
  source: string,
  schema: S,
  kind: ConfigKind,
): z.output<S> {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const where = yamlError.linePos?.[0] ? ` (line ${yamlError.linePos[0].line})` : '';
    const message = (yamlError.message.split('\n')[0] ?? '').replace(
      / at line \d+, column \d+:?$/,
      '',
    );
    throw new MintfsError(
      kind.invalidCode,
      `${kind.noun} ${source}: invalid YAML${where}: ${message}`,
    );
  }
  let value: unknown;
  try {
    // Aliases are expanded with a budget: a billion-laughs document is an error, not a hang.
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new MintfsError(
      kind.invalidCode,
      `${kind.noun} ${source}: invalid YAML: ${err instanceof Error ? err.message.split('\n')[0] : 'cannot be read'}`,
    );
  }
  const result = schema.safeParse(value, {
    error: (issue) =>
      issue.code === 'invalid_type' && issue.input === undefined ? 'required' : undefined,
  });
  if (!result.success)
    throw new MintfsError(
      kind.invalidCode,
      `${kind.noun} ${source}: ${describeIssues(result.error.issues)}`,
    );
  return result.data;
}

/** `files."x/token".service: required; ttl: 2h is outside 10s..1h` */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.flatMap(describeIssue).join('; ');
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys')
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown field`);
  const path = formatPath(issue.path);
  return [path === '' ? issue.message : `${path}: ${issue.message}`];
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const name = String(part);
      const bare = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name);
      out += `${out === '' ? '' : '.'}${bare ? name : JSON.stringify(name)}`;
    }
  }
  return out;
}

/**
 * A zod string option whose type error says what was expected, for a person:
 * `ttl: a duration such as 5m, not the number 300` rather than zod's
 * "expected string, received number".
 */
export function textOf(what: string): {
  error: (issue: { input?: unknown }) => string | undefined;
} {
  return {
    error: (issue) =>
      issue.input === undefined ? undefined : `${what}, not ${describeValue(issue.input)}`,
  };
}

function describeValue(value: unknown): string {
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `${value}`;
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return 'a list';
  return `a ${typeof value === 'object' ? 'mapping' : typeof value}`;
}
