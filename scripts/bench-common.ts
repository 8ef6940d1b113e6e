/** Helpers the benchmark scripts share. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
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
