/**
 * The gateway's metrics: requests by outcome and error code, their latency
 * and the upstream's, the verification cache, use budgets, Redis health and
 * the shared revocation list (registry.ts says what labels may hold).
 */
import type { MintfsErrorCode } from '../errors.js';
import { AggregatorRegistry, Counter } from 'prom-client';
import { createMetricsRegistry, type MetricsRegistry } from './registry.js';

export interface GatewayMetricSources {
  readonly cacheStats: () => { readonly hits: number; readonly misses: number };
  readonly redisUp: () => boolean | undefined;
  readonly revocationsStale: () => boolean | undefined;
  readonly revocationsInForce: () => number;
}

export interface GatewayMetrics {
  readonly metrics: MetricsRegistry;
  /** One request ended: `code` undefined when it was served. */
  request(
    code: MintfsErrorCode | undefined,
    /** Whether it was sent upstream (a failure after that is not a refusal). */
    forwarded: boolean,
    seconds: number,
  ): void;
  /** Time from sending a request upstream to its response head. */
  upstream(service: string, seconds: number): void;
  budget(result: 'ok' | 'spent' | 'unavailable'): void;
  /** A minting credential source's cache: a mint, a hit, a refresh ahead of expiry, a failure. */
  credential(service: string, source: string, event: 'mint' | 'hit' | 'refresh' | 'failure'): void;
}

export function createGatewayMetrics(sources: GatewayMetricSources): GatewayMetrics {
  const metrics = createMetricsRegistry();
  const requests = metrics.counter(
    'mintfs_gateway_requests_total',
    'Requests by outcome (served, refused before the upstream, failed on the way) and error code',
    ['outcome', 'code'],
  );
  const denials = metrics.counter(
    'mintfs_gateway_denials_total',
    'Requests refused before reaching the upstream, by error code',
    ['code'],
  );
  const duration = metrics.histogram(
    'mintfs_gateway_request_duration_seconds',
    'Time from a request head to the end of its response, by outcome',
    ['outcome'],
  );
  const upstream = metrics.histogram(
    'mintfs_gateway_upstream_duration_seconds',
    'Time from forwarding a request to the upstream response head, by service',
    ['service'],
  );
  const budgets = metrics.counter(
    'mintfs_gateway_use_budget_total',
    'Uses of budgeted tokens: spent, refused as used up, or refused as uncountable (Redis away)',
    ['result'],
  );
  const credentials = metrics.counter(
    'mintfs_gateway_credential_events_total',
    'Minted upstream credentials by service, source kind (command, oauth2, githubApp) and event: mint, hit (served from the cache), refresh (ahead of expiry), failure',
    ['service', 'source', 'event'],
  );
  // The cache counts itself (no call per lookup on the hot path); read at each scrape.
  new Counter({
    name: 'mintfs_gateway_verify_cache_lookups_total',
    help: 'Signature checks answered from the verification cache (hit) or computed (miss)',
    labelNames: ['result'],
    registers: [metrics.registry],
    collect() {
      const { hits, misses } = sources.cacheStats();
      this.reset();
      this.inc({ result: 'hit' }, hits);
      this.inc({ result: 'miss' }, misses);
    },
  });
  metrics.gauge(
    'mintfs_redis_up',
    'Whether Redis is reachable (absent without redis; with workers, 1 only if every worker reaches it)',
    () => {
      const up = sources.redisUp();
      return up === undefined ? undefined : Number(up);
    },
    'min',
  );
  metrics.gauge(
    'mintfs_revocations_stale',
    'Whether the shared revocation list is too old to judge tokens by (every token refused)',
    () => {
      const stale = sources.revocationsStale();
      return stale === undefined ? undefined : Number(stale);
    },
    'max',
  );
  metrics.gauge(
    'mintfs_revocations_in_force',
    'Revocation records in force',
    () => sources.revocationsInForce(),
    'max',
  );
  return {
    metrics,
    request(code, forwarded, seconds) {
      const outcome = code === undefined ? 'served' : forwarded ? 'failed' : 'refused';
      requests.inc({ outcome, code: code ?? 'none' });
      if (outcome === 'refused') denials.inc({ code: code ?? 'none' });
      duration.observe({ outcome }, seconds);
    },
    upstream: (service, seconds) => upstream.observe({ service }, seconds),
    budget: (result) => budgets.inc({ result }),
    credential: (service, source, event) => credentials.inc({ service, source, event }),
  };
}

/**
 * A worker of a multi-process gateway: its registry answers the primary,
 * which serves the sum (cluster-metrics.ts).
 */
export function shareWithPrimary(metrics: GatewayMetrics): void {
  AggregatorRegistry.setRegistries([metrics.metrics.registry]);
  // prom-client answers the primary only once an AggregatorRegistry exists
  // in the worker too (its constructor adds the message listener).
  new AggregatorRegistry();
}
