/**
 * The mintfs command line: wires the command modules into yargs and maps
 * every failure to one line on stderr and an exit code (exit-codes.ts).
 */
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { NO_COMMAND, UsageError, configureCommandLine } from './command-line.js';
import { EXIT_INVALID } from './exit-codes.js';
import { reportFailure } from './failure.js';
import { printDiagnostic } from './io.js';
import { skipHelpCacheAfterCommands } from './yargs-help-cache.js';

/**
 * Each command's module, loaded only when that command runs: a one-shot
 * command (inspect, verify, attenuate; git credential helpers call them
 * often) then loads its own module graph, not the gateway's and the mount's.
 * `mintfs`, `--help` and unknown words load them all (help lists them).
 */
const COMMAND_MODULES: Readonly<Record<string, () => Promise<CommandModule>>> = {
  keys: async () => (await import('./commands/keys.js')).keysCommand,
  mount: async () => (await import('./commands/mount.js')).mountCommand,
  mint: async () => (await import('./commands/mint.js')).mintCommand,
  inspect: async () => (await import('./commands/inspect.js')).inspectCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
  revoke: async () => (await import('./commands/revoke.js')).revokeCommand,
  run: async () => (await import('./commands/run.js')).runCommand,
  gateway: async () => (await import('./commands/gateway.js')).gatewayCommand,
  attenuate: async () => (await import('./commands/attenuate.js')).attenuateCommand,
  profile: async () => (await import('./commands/profile.js')).profileCommand,
  ca: async () => (await import('./commands/ca.js')).caCommand,
  approvals: async () => (await import('./commands/approvals.js')).approvalsCommand,
  approvers: async () => (await import('./commands/approvals.js')).approversCommand,
  csi: async () => (await import('./commands/csi.js')).csiCommand,
};
const COMMAND_NAMES = Object.keys(COMMAND_MODULES);

/** The modules this invocation needs: the named command's, or all of them. */
function commandsFor(args: readonly string[]): Promise<CommandModule[]> {
  const named = args.find((arg) => !arg.startsWith('-'));
  const load = named === undefined ? undefined : COMMAND_MODULES[named];
  if (load !== undefined && Object.hasOwn(COMMAND_MODULES, named as string))
    return Promise.all([load()]);
  return Promise.all(Object.values(COMMAND_MODULES).map((loader) => loader()));
}

async function main(args: string[]): Promise<void> {
  const debug = args.includes('--debug');
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    process.stdout.write(`mintfs ${packageVersion()}\n`);
    return;
  }
  const cli = yargs(args);
  skipHelpCacheAfterCommands(cli);
  const commands = await commandsFor(args);
  try {
    await configureCommandLine(cli, commands).parseAsync();
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message === NO_COMMAND) {
        // `mintfs` alone: the usage, as --help prints it, on stderr.
        process.stderr.write(`${await cli.getHelp()}\n`);
      } else printDiagnostic(`${usageMessage(err.message, args, commands)} (see mintfs --help)`);
      process.exitCode = EXIT_INVALID;
      return;
    }
    reportFailure(err, debug);
  }
}

/** yargs' generic texts, said for a person: the command's usage line, the command meant. */
function usageMessage(
  message: string,
  args: readonly string[],
  commands: readonly CommandModule[],
): string {
  const named = args.find((arg) => !arg.startsWith('-'));
  const command = commands.find((c) => String(c.command).split(' ')[0] === named);
  if (message.startsWith('Not enough non-option arguments') && command)
    return `usage: mintfs ${String(command.command)}`;
  if (
    message.startsWith('Unknown argument') &&
    named !== undefined &&
    !command &&
    args[0] === named
  ) {
    const near = closest(named, COMMAND_NAMES);
    return `unknown command ${printable(named)}${near === undefined ? '' : ` (did you mean ${near}?)`}`;
  }
  return `${message}${dashValueHint(message, args)}`;
}

/** The known word within two edits of `word`, if any. */
function closest(word: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(word.toLowerCase(), name);
    if (distance <= 2 && (best === undefined || distance < best.distance))
      best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(
        (row[j] as number) + 1,
        (next[j - 1] as number) + 1,
        (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    row = next;
  }
  return row[b.length] as number;
}

/** What the user typed, short and printable (it could be a pasted token). */
function printable(word: string): string {
  const clean = word.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 37)}...` : clean;
}

function packageVersion(): string {
  const pkg = JSON.parse(
    readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
  ) as {
    version: string;
  };
  return pkg.version;
}

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
