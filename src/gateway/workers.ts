/**
 * `workers: N`: the gateway on several cores. The primary process forks N
 * workers (node:cluster), each a whole gateway (its own watchers, so every
 * reload of keys, revocations, credentials and config reaches every worker
 * from the files themselves); they share the listen addresses, which the
 * primary holds. The primary relays SIGHUP, turns the first SIGTERM/SIGINT
 * into a graceful stop of every worker and the second into an immediate
 * exit, and restarts a worker that dies on its own (with a back-off), so
 * one crashed worker never takes the gateway down.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from '../log/logger.js';
import type { GatewayConfig } from './config.js';

/** How many processes a config asks for. */
export function workerCount(config: GatewayConfig): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** Runs the primary until every worker has stopped; resolves to the exit status. */
export function superviseWorkers(count: number, logger: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    let signals = 0;
    const live = new Set<Worker>();
    const restarts: number[] = [];
    // A worker that dies is replaced under its index: worker 0 serves the approvers' socket and page.
    const fork = (index: number) => {
      const worker = cluster.fork({
        MINTFS_GATEWAY_WORKER: '1',
        MINTFS_GATEWAY_WORKER_INDEX: String(index),
      });
      live.add(worker);
      worker.once('exit', (code, signal) => {
        live.delete(worker);
        if (stopping) {
          if (live.size === 0) resolve(signals > 1 ? 130 : 0);
          return;
        }
        logger.error(
          { event: 'gateway-worker-died', pid: worker.process.pid, code, signal },
          'a gateway worker died; starting another',
        );
        // At most five restarts a minute, then stop rather than crash-loop.
        const now = Date.now();
        restarts.push(now);
        while ((restarts[0] ?? now) < now - 60_000) restarts.shift();
        if (restarts.length > 5) {
          logger.fatal(
            { event: 'gateway-workers-failing' },
            'gateway workers keep dying; stopping',
          );
          stop('SIGTERM');
          return;
        }
        setTimeout(() => fork(index), 250 * restarts.length);
      });
    };
    const stop = (signal: NodeJS.Signals) => {
      signals += 1;
      stopping = true;
      if (live.size === 0) resolve(0);
      for (const worker of live) worker.process.kill(signals > 1 ? 'SIGKILL' : signal);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      for (const worker of live) worker.process.kill('SIGHUP');
    });
    logger.info({ event: 'gateway-workers', workers: count }, `starting ${count} gateway workers`);
    for (let i = 0; i < count; i++) fork(i);
  });
}

/** Whether this process is a worker forked by superviseWorkers. */
export function isGatewayWorker(): boolean {
  return cluster.isWorker && process.env.MINTFS_GATEWAY_WORKER === '1';
}

/** This worker's index (0 to N-1), or 0 for a gateway without workers. */
export function gatewayWorkerIndex(): number {
  const index = Number(process.env.MINTFS_GATEWAY_WORKER_INDEX ?? '0');
  return isGatewayWorker() && Number.isInteger(index) ? index : 0;
}

/** Ends a stopped worker's channel to the primary, so the process can exit. */
export function disconnectWorker(): void {
  cluster.worker?.disconnect();
}
