/**
 * Metrics of a multi-process gateway (`workers` above 1): the primary holds
 * the metrics listener and asks every worker for its registry at each
 * scrape (prom-client's AggregatorRegistry over the cluster channel);
 * counters and histograms are summed, gauges joined as each one says.
 */
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import { serveMetrics } from './registry.js';

export function serveClusterMetrics(
  address: string,
  logger: Logger,
): ReturnType<typeof serveMetrics> {
  const aggregator = new AggregatorRegistry();
  return serveMetrics(
    address,
    { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType },
    logger,
  );
}
