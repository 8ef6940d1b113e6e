/**
 * Prometheus metrics (prom-client), one registry per process, every name
 * prefixed mintfs_. Labels are bounded sets only: error codes, outcomes,
 * service and profile file names, reload kinds; never a token, token id,
 * agent, credential or request path (a label per id would grow without
 * end, and would put ids on a page anyone who can scrape it reads).
 */
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import { onReloadOutcome } from '../util/reloadable.js';
import { MintfsError, describeError } from '../errors.js';

export interface MetricsRegistry {
  readonly registry: Registry;
  counter(name: string, help: string, labels: readonly string[]): Counter;
  histogram(name: string, help: string, labels: readonly string[], buckets?: number[]): Histogram;
  /** `aggregator`: how a multi-worker gateway's primary joins the workers' values. */
  gauge(
    name: string,
    help: string,
    collect: () => number | undefined,
    aggregator?: 'sum' | 'min' | 'max',
  ): Gauge;
}

export function createMetricsRegistry(): MetricsRegistry {
  const registry = new Registry();
  // Process and Node.js figures: open file descriptors, active handles, heap, event loop lag.
  collectDefaultMetrics({ register: registry, prefix: 'mintfs_' });
  const reloads = new Counter({
    name: 'mintfs_reloads_total',
    help: 'Reloads of watched state by kind (keyring, profile, revocations, gateway-config, ...) and outcome',
    labelNames: ['kind', 'outcome'],
    registers: [registry],
  });
  onReloadOutcome((kind, outcome) => reloads.inc({ kind, outcome }));
  return {
    registry,
    counter: (name, help, labels) =>
      new Counter({ name, help, labelNames: [...labels], registers: [registry] }),
    histogram: (name, help, labels, buckets) =>
      new Histogram({
        name,
        help,
        labelNames: [...labels],
        registers: [registry],
        buckets: buckets ?? [
          0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
        ],
      }),
    gauge: (name, help, collect, aggregator = 'sum') =>
      new Gauge({
        name,
        help,
        registers: [registry],
        aggregator,
        collect() {
          const value = collect();
          if (value !== undefined) this.set(value);
        },
      }),
  };
}

/**
 * Serves GET /metrics on its own listener (HOST:PORT), so it can be kept off
 * the agents' network; everything else is 404.
 */
/** Connections the metrics listener holds at once. */
export const METRICS_CONNECTIONS = 16;

export async function serveMetrics(
  address: string,
  registry: { metrics(): Promise<string>; readonly contentType: string },
  logger: Logger,
): Promise<{ readonly address: string; close(): Promise<void> }> {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(at + 1));
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => {
        logger.error(
          { event: 'metrics-failed', detail: describeError(err) },
          'collecting metrics failed',
        );
        res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
      },
    );
  });
  // Scrapers need a few connections; these come out of the descriptors the
  // gateway keeps for its state files (connection-limits.ts), so a busy or
  // hostile scraper is capped, and its slow heads cut.
  server.maxConnections = METRICS_CONNECTIONS;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new MintfsError('ERR_LISTEN_FAILED', `metrics ${address}: ${err.message}`)),
    );
    server.listen(port, host, resolve);
  });
  // After listen, an accept can still fail (EMFILE): never a crash.
  server.on('error', () => undefined);
  const bound = server.address() as { address: string; port: number };
  const where = `${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`;
  logger.info({ event: 'metrics-listening', address: where }, 'serving metrics');
  return {
    address: where,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
