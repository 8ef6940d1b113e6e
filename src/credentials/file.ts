/** `{ file: PATH }`: a static credential in a file of mode 0600 on a trusted path. */
import { lstatSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as z from 'zod';
import { untrustedPathProblem } from '../util/trusted-path.js';
import type { SourceKind } from './source.js';
import { checkCredentialValue, refusalFor, type Refusal } from './value.js';

const FileSourceSchema = z.strictObject({
  file: z
    .string()
    .min(1)
    .describe(
      'File holding the credential (mode 0600, on a path only root or this user can change); re-read when it changes',
    ),
});
type FileSource = z.output<typeof FileSourceSchema>;

export const fileSource: SourceKind<FileSource> = {
  key: 'file',
  schema: FileSourceSchema,
  resolvePaths: (config, base) => ({ file: resolve(base, config.file) }),
  open: (config, { service }) => {
    const read = () => readCredentialFile(config.file, refusalFor(service, config.file));
    read();
    return { kind: 'static', read, watch: config.file };
  },
};

/**
 * A secret file (credential, private key, client secret, refresh token): a
 * regular file on a trusted path, readable by its owner only.
 */
export function readSecretFile(file: string, fail: Refusal): string {
  let info;
  try {
    info = lstatSync(file);
  } catch {
    throw fail('does not exist');
  }
  if (!info.isFile()) throw fail('is not a regular file');
  const untrusted = untrustedPathProblem(file);
  if (untrusted !== undefined) throw fail(untrusted.replace(/^it /, ''));
  if ((info.mode & 0o077) !== 0)
    throw fail(
      `is accessible by group or others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw fail('cannot be read');
  }
}

export function readCredentialFile(file: string, fail: Refusal): string {
  return checkCredentialValue(readSecretFile(file, fail), fail);
}
