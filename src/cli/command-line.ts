/**
 * The yargs set-up of the full command line: global options, the commands,
 * strictness and how a usage error surfaces. main.ts runs it; the fast path's
 * property test (test/unit/cli-fast-path.test.ts) parses with this very set-up,
 * so the two cannot drift apart unnoticed.
 */
import type { Argv, CommandModule } from 'yargs';

/** A usage error yargs found (unknown option, missing argument); main.ts words it for a person. */
export class UsageError extends Error {}

/** yargs' message when no command is named (demandCommand). */
export const NO_COMMAND = 'no command';

export function configureCommandLine(cli: Argv, commands: readonly CommandModule[]): Argv {
  return (
    cli
      .scriptName('mintfs')
      // usageMessage rewrites yargs' English texts, and the bundle carries no
      // locale files (scripts/bundle-cli.mjs): the same words whatever LANG says.
      .locale('en')
      .usage('$0 <command>\n\nMint fresh, caveated macaroons on every read of a FUSE file.')
      .option('debug', { type: 'boolean', default: false, describe: 'Show stack traces on errors' })
      .option('log-level', {
        type: 'string',
        choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
        describe: 'Log level ($MINTFS_LOG_LEVEL; default info, and warn for mint at a terminal)',
      })
      .option('log-format', {
        type: 'string',
        choices: ['json', 'pretty'],
        describe:
          'Log lines as JSON or for a person ($MINTFS_LOG_FORMAT; default: pretty at a terminal, else json)',
      })
      .command(commands as CommandModule[])
      .demandCommand(1, NO_COMMAND)
      .strict()
      .fail((message, err) => {
        throw err ?? new UsageError(message);
      })
      .help()
      .version(false)
  );
}
