/**
 * The daemons' shutdown: the first SIGINT/SIGTERM runs a graceful `stop`,
 * the second exits at once (status 130); SIGHUP reloads. The CLI edge owns
 * process exit.
 */
import type { Logger } from '../log/logger.js';
import { EXIT_FAILURE } from './exit-codes.js';
import { printDiagnostic } from './io.js';

export function untilSignalled(
  logger: Logger,
  what: string,
  stop: () => Promise<void>,
  /** SIGHUP: re-read state from disk now rather than at the next poll. */
  reload?: () => void,
): Promise<void> {
  if (reload) process.on('SIGHUP', () => reload());
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
      stop().then(
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
