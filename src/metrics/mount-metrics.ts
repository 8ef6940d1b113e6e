/**
 * The mount daemon's metrics: opens of each token file by outcome (a token
 * minted, a reader refused by the file's `readers` rules, a mint that
 * failed), token files open now, and reloads (registry.ts).
 */
import { createMetricsRegistry, type MetricsRegistry } from './registry.js';

export interface MountMetrics {
  readonly metrics: MetricsRegistry;
  mint(file: string, outcome: 'minted' | 'denied' | 'failed'): void;
}

export function createMountMetrics(openHandles: () => number | undefined): MountMetrics {
  const metrics = createMetricsRegistry();
  const mints = metrics.counter(
    'mintfs_mints_total',
    'Opens of token files by profile file and outcome (minted, denied, failed)',
    ['file', 'outcome'],
  );
  metrics.gauge('mintfs_mount_open_handles', 'Token files open right now', openHandles);
  return { metrics, mint: (file, outcome) => mints.inc({ file, outcome }) };
}
