/**
 * External commands for test helpers. Every one has a timeout and its output
 * drained (captured, never a pipe left unread), and one that hangs or fails
 * throws an error that names the command and what it waited for, with the
 * end of what it said: a test never waits without bound on a helper.
 */
import { execFileSync, spawn } from 'node:child_process';

/** How long a helper's command may take unless its caller says otherwise. */
export const HELPER_TIMEOUT_MS = 60_000;

export interface Completed {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The last lines of a command's output, for an error message. */
export function tail(text: string, lines = 5): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}

function describeCommand(command: string, args: readonly string[]): string {
  const text = [command, ...args].join(' ');
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * Runs a short command to completion (blocking: only for commands that do
 * not need the test process to answer them); returns its stdout, throws
 * naming `what` when it fails or outlives `timeoutMs`.
 */
export function runSync(
  command: string,
  args: readonly string[],
  what: string,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): string {
  const timeoutMs = options.timeoutMs ?? HELPER_TIMEOUT_MS;
  try {
    return execFileSync(command, args, {
      encoding: 'utf8',
      stdio: 'pipe',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.input === undefined ? {} : { input: options.input }),
    });
  } catch (err) {
    const failed = err as { code?: string; status?: number | null; stderr?: string | Buffer };
    const said = tail(String(failed.stderr ?? ''));
    const how =
      failed.code === 'ETIMEDOUT'
        ? `did not finish within ${timeoutMs / 1000} s`
        : `failed (${failed.status ?? failed.code ?? 'no status'})`;
    throw new Error(
      `waiting for ${what}: \`${describeCommand(command, args)}\` ${how}${said ? `: ${said}` : ''}`,
      { cause: err },
    );
  }
}

/**
 * A child process run to completion without blocking the test process
 * (the HTTPS test upstream and gateways answer from it while the child
 * runs). Killed after `timeoutMs` (default 180 s: a whole `mintfs run`),
 * and then the promise rejects naming the command and the end of its output.
 */
export function runAsync(
  command: string,
  args: readonly string[],
  onSpawn?: (pid: number) => void,
  env?: NodeJS.ProcessEnv,
  cwd?: string,
  timeoutMs = 180_000,
): Promise<Completed> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(env === undefined ? {} : { env }),
      ...(cwd === undefined ? {} : { cwd }),
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('spawn', () => onSpawn?.(child.pid as number));
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut)
        reject(
          new Error(
            `\`${describeCommand(command, args)}\` did not finish within ${timeoutMs / 1000} s (killed): ${tail(stderr || stdout)}`,
          ),
        );
      else resolve({ code, stdout, stderr });
    });
  });
}
