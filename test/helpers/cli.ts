import { spawnSync } from 'node:child_process';
import { CLI } from './paths.js';
import { tail } from './spawn.js';

const CLI_TIMEOUT_MS = 30_000;

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
    timeout: CLI_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  // A hung command fails the test saying so, not as an exit status of null.
  if (result.error !== undefined)
    throw new Error(
      `mintfs ${args.join(' ')}: ${(result.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `did not finish within ${CLI_TIMEOUT_MS / 1000} s` : result.error.message}: ${tail(result.stderr ?? '')}`,
      { cause: result.error },
    );
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Diagnostic lines on stderr (the ones the CLI prints, not JSON log lines). */
export function diagnostics(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('mintfs: '));
}
