/**
 * A child process run to completion without blocking the test process
 * (the HTTPS test upstream and gateways answer from it while the child runs).
 */
import { spawn } from 'node:child_process';

export interface Completed {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runAsync(
  command: string,
  args: readonly string[],
  onSpawn?: (pid: number) => void,
  env?: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<Completed> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(env === undefined ? {} : { env }),
      ...(cwd === undefined ? {} : { cwd }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('spawn', () => onSpawn?.(child.pid as number));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
