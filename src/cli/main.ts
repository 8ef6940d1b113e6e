#!/usr/bin/env node
/**
 * The mintfs command line: wires the command modules into yargs and maps
 * every failure to one line on stderr and an exit code (exit-codes.ts).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { describeError, isMintfsError } from '../errors.js';
import { attenuateCommand } from './commands/attenuate.js';
import { gatewayCommand } from './commands/gateway.js';
import { inspectCommand } from './commands/inspect.js';
import { keysCommand } from './commands/keys.js';
import { mintCommand } from './commands/mint.js';
import { mountCommand } from './commands/mount.js';
import { profileCommand } from './commands/profile.js';
import { revokeCommand } from './commands/revoke.js';
import { runCommand } from './commands/run.js';
import { verifyCommand } from './commands/verify.js';
import { EXIT_INVALID, exitCodeFor } from './exit-codes.js';
import { printDiagnostic } from './io.js';

async function main(args: string[]): Promise<void> {
  const debug = args.includes('--debug');
  try {
    await yargs(args)
      .scriptName('mintfs')
      .usage('$0 <command>\n\nMint fresh, caveated macaroons on every read of a FUSE file.')
      .option('debug', { type: 'boolean', default: false, describe: 'Show stack traces on errors' })
      .option('log-level', {
        type: 'string',
        default: process.env.MINTFS_LOG_LEVEL ?? 'info',
        choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
        describe: 'Log level for the JSON logs on stderr ($MINTFS_LOG_LEVEL)',
      })
      .command(keysCommand)
      .command(mountCommand)
      .command(mintCommand)
      .command(inspectCommand)
      .command(verifyCommand)
      .command(revokeCommand)
      .command(runCommand)
      .command(gatewayCommand)
      .command(attenuateCommand)
      .command(profileCommand)
      .demandCommand(1, 'name a command (see --help)')
      .strict()
      .fail((message, err) => {
        throw err ?? new UsageError(message);
      })
      .help()
      .version(false)
      .parseAsync();
  } catch (err) {
    if (err instanceof UsageError) {
      printDiagnostic(`${err.message}${dashValueHint(err.message, args)} (see mintfs --help)`);
      process.exitCode = EXIT_INVALID;
      return;
    }
    printDiagnostic(isMintfsError(err) ? err.message : `unexpected error: ${describeError(err)}`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = exitCodeFor(err);
  }
}

class UsageError extends Error {}

/**
 * Token ids are base64url and one in 64 starts with "-": yargs reads
 * `--token -NQB...` as the flags -N -Q -B. Say how to write such a value
 * (without repeating it: it may be a token).
 */
function dashValueHint(message: string, args: readonly string[]): string {
  if (!message.startsWith('Unknown argument')) return '';
  for (let i = 0; i + 1 < args.length; i++) {
    const name = args[i] as string;
    if (/^--[a-z][a-z-]*$/.test(name) && /^-[^-]/.test(args[i + 1] as string))
      return `; a value that starts with "-" must be written ${name}=<value>`;
  }
  return '';
}

await main(hideBin(process.argv));
