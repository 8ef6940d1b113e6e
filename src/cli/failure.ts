/**
 * How a failed command reaches the user: one line on stderr (the stack too
 * with --debug) and the exit code its error code maps to. Shared by the
 * full command line (main.ts) and the one-shot fast path (fast-path.ts), so
 * both say the same thing for the same failure; kept free of yargs.
 */
import { describeError, isMintfsError } from '../errors.js';
import { exitCodeFor } from './exit-codes.js';
import { printDiagnostic } from './io.js';

export function reportFailure(err: unknown, debug: boolean): void {
  printDiagnostic(isMintfsError(err) ? err.message : `unexpected error: ${describeError(err)}`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exitCode = exitCodeFor(err);
}
