/** Real curl, returning status, headers and body. */
import { spawnSync } from 'node:child_process';

export interface CurlResult {
  readonly exitCode: number | null;
  readonly status: number;
  readonly headers: string;
  readonly body: string;
  readonly stderr: string;
}

export function curl(args: readonly string[], input?: string | Buffer): CurlResult {
  const marker = '\n__mintfs_status__:';
  const result = spawnSync(
    'curl',
    ['-sS', '-D', '/dev/stderr', '-w', `${marker}%{http_code}`, ...args],
    {
      encoding: 'utf8',
      input,
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const cut = result.stdout.lastIndexOf(marker);
  const body = cut < 0 ? result.stdout : result.stdout.slice(0, cut);
  const status = cut < 0 ? 0 : Number(result.stdout.slice(cut + marker.length));
  return { exitCode: result.status, status, headers: result.stderr, body, stderr: result.stderr };
}
