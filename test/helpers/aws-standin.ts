/**
 * The S3 and STS stand-in (test/fixtures/aws-standin.py) in a child process:
 * it checks every signature with botocore's signer and the real secret, and
 * keeps objects in memory. Killed at teardown.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './paths.js';
import { pollUntil } from './poll.js';
import type { Teardown } from './temp.js';
import type { TestPki } from './tls.js';

export const AWS_ACCESS_KEY_ID = 'AKIAREALKEYFORTESTS0';
export const AWS_SECRET_ACCESS_KEY = 'realSecretKeyOfTheStandIn/0123456789abcdef';

export interface StandinEntry {
  readonly method: string;
  readonly target: string;
  readonly service?: string;
  readonly accessKeyId?: string;
  readonly payload?: string | null;
  readonly chunks?: number;
  readonly trailers?: readonly string[];
  readonly refused?: string;
  readonly reason?: string;
  readonly action?: string;
  readonly roleArn?: string;
  readonly sessionName?: string;
  readonly policy?: string | null;
  readonly externalId?: string | null;
  readonly issued?: string;
  readonly copySource?: string | null;
}

export interface AwsStandin {
  /** https://127.0.0.1:PORT (http:// with `plain`) */
  readonly url: string;
  readonly port: number;
  /** Every request it received, oldest first. */
  entries(): StandinEntry[];
}

export async function startAwsStandin(
  pki: TestPki,
  dir: string,
  teardown: Teardown,
  /** plain: HTTP without TLS (the bench's route arm, so both arms send the same bytes). */
  options: { plain?: boolean } = {},
): Promise<AwsStandin> {
  const cert = join(dir, 'standin.pem');
  const key = join(dir, 'standin.key');
  writeFileSync(cert, pki.cert);
  writeFileSync(key, pki.key, { mode: 0o600 });
  const logFile = join(dir, 'standin.log');
  // The pyenv python3 on PATH: the one with a current botocore (aws-cli's).
  const child = spawn(
    'python3',
    [
      join(FIXTURES, 'aws-standin.py'),
      cert,
      key,
      AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY,
      logFile,
      ...(options.plain === true ? ['plain'] : []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  teardown.add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  const port = await pollUntil('the AWS stand-in to listen', () => {
    if (child.exitCode !== null) throw new Error(`aws-standin.py exited: ${stderr}`);
    const line = stdout.split('\n')[0];
    return line && stdout.includes('\n') ? (JSON.parse(line) as { port: number }).port : undefined;
  });
  return {
    url: `${options.plain === true ? 'http' : 'https'}://127.0.0.1:${port}`,
    port,
    entries: () =>
      existsSync(logFile)
        ? readFileSync(logFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line) as StandinEntry)
        : [],
  };
}
