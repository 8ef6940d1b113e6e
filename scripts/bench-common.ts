/** Helpers the benchmark scripts share. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/**
 * Builds a Go baseline against Debian's go-macaroon (golang-gopkg-macaroon.v2-dev)
 * in GOPATH mode: no module download, nothing but the distribution's packages.
 */
export function buildGoBaseline(
  source: string,
  output: string,
  work: string,
): SpawnSyncReturns<string> {
  return spawnSync('go', ['build', '-o', output, source], {
    env: {
      ...process.env,
      GO111MODULE: 'off',
      GOPATH: '/usr/share/gocode',
      GOCACHE: join(work, 'go-cache'),
    },
    encoding: 'utf8',
  });
}

/** Polls until something accepts TCP connections on 127.0.0.1:port (30 s at most). */
export async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** BENCH_PROFILE_DIR=DIR: node flags that make the gateway write a V8 CPU profile there when it stops. */
export function gatewayProfileFlags(): string[] {
  const dir = process.env.BENCH_PROFILE_DIR;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}
