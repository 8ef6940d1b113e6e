/**
 * Real curl, returning status, headers and body. Asynchronous on purpose:
 * the test upstream runs in the test process, so a blocking spawn would
 * stall it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CurlResult {
  readonly exitCode: number | null;
  readonly status: number;
  readonly headers: string;
  readonly body: string;
  readonly stderr: string;
}

const MARKER = '\n__mintfs_status__:';
const CURL_TIMEOUT_MS = 60_000;

export function curl(args: readonly string[], input?: string | Buffer): Promise<CurlResult> {
  // Headers go to a file: curl 7.88 crashes writing them to /dev/stderr when that is a pipe.
  const dir = mkdtempSync(join(tmpdir(), 'mintfs-curl-'));
  const headerFile = join(dir, 'headers');
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-D', headerFile, '-w', `${MARKER}%{http_code}`, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    // Bounded: a test that waits on curl fails saying what it waited for.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, CURL_TIMEOUT_MS);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      if (timedOut) {
        rmSync(dir, { recursive: true, force: true });
        reject(
          new Error(
            `curl ${args.join(' ')} did not finish within ${CURL_TIMEOUT_MS / 1000} s: ${Buffer.concat(err).toString('utf8').trim()}`,
          ),
        );
        return;
      }
      const stdout = Buffer.concat(out).toString('utf8');
      const cut = stdout.lastIndexOf(MARKER);
      let headers = '';
      try {
        headers = readFileSync(headerFile, 'utf8');
      } catch {
        // no response
      }
      rmSync(dir, { recursive: true, force: true });
      resolve({
        exitCode,
        status: cut < 0 ? 0 : Number(stdout.slice(cut + MARKER.length)),
        headers,
        stderr: Buffer.concat(err).toString('utf8'),
        body: cut < 0 ? stdout : stdout.slice(0, cut),
      });
    });
    // curl may exit (a refusal, no body to send) before reading its stdin: that EPIPE is not an error.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin.end(input ?? '');
  });
}
