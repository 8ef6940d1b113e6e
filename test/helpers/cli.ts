import { spawnSync } from 'node:child_process';
import { CLI } from './paths.js';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real CLI in a child process. */
export function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string } = {},
): CliResult {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, MINTFS_LOG_LEVEL: 'info', ...options.env },
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Diagnostic lines on stderr (the ones the CLI prints, not JSON log lines). */
export function diagnostics(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('mintfs: '));
}
