/**
 * The daemons' shutdown: the first SIGINT/SIGTERM runs a graceful `stop`,
 * the second exits at once (status 130); SIGHUP reloads. The CLI edge owns
 * process exit.
 *
 * Call it in the same tick as the start-up whose promise it gets: a signal
 * that arrives while the service is still starting (a mount may already serve
 * readers) then stops it once it is up, rather than killing the process with
 * a mount in place. A start-up that fails has nothing to stop.
 */
import type { Logger } from '../log/logger.js';
import { EXIT_FAILURE } from './exit-codes.js';
import { printDiagnostic } from './io.js';

export function untilSignalled<T>(
  logger: Logger,
  what: string,
  started: Promise<T>,
  stop: (service: T) => Promise<void>,
  /** SIGHUP: re-read state from disk now rather than at the next poll. */
  reload?: (service: T) => void,
): Promise<void> {
  const running = started.then(
    (service) => ({ service }),
    () => undefined,
  );
  if (reload) process.on('SIGHUP', () => void running.then((up) => up && reload(up.service)));
  return new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        logger.warn(
          { event: 'forced-exit', signal },
          `second signal: exiting without finishing ${what}`,
        );
        logger.flush();
        process.exit(130);
      }
      logger.info({ event: 'shutdown', signal }, `${what}`);
      running
        .then((up) => up && stop(up.service))
        .then(
          () => logger.flush(() => resolve()),
          (err: unknown) => {
            printDiagnostic(`${what} failed: ${err instanceof Error ? err.message : String(err)}`);
            process.exitCode = EXIT_FAILURE;
            logger.flush(() => resolve());
          },
        );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
