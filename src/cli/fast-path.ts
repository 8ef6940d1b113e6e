/**
 * The one-shot commands git credential helpers and agent scripts run often
 * (inspect, verify, attenuate), started without yargs: loading and setting
 * up yargs was the largest part of their start-up (npm run bench:cli).
 *
 * The fast path only reads the plain forms of these commands' words
 * (`verify TOKEN --service github --url=https://...`) and hands them to the
 * command's own runWith: the same zod schema checks them, the same code
 * runs, a failure is reported by the same reportFailure. Everything else it
 * declines, and the full command line (main.ts, yargs) takes the words as
 * it always has: --help, a misspelt or repeated option, a missing required
 * one, a value that starts with "-", `--`, global options, too many words, a
 * token that reads "help". So usage errors and help text have one source,
 * and where the fast path accepts words it must read them as yargs does:
 * test/unit/cli-fast-path.test.ts checks that over generated argument
 * vectors against the real yargs set-up, builders and schemas.
 */
import type { MintfsCommand } from './define-command.js';
import { reportFailure } from './failure.js';

/** An option as the command's yargs builder declares it. */
interface FastOption {
  /** One word, or every word up to the next option (yargs `array`). */
  readonly takes: 'string' | 'array';
  /** yargs `demandOption`: without it, yargs answers with its usage error, so the fast path declines. */
  readonly required: boolean;
}

interface FastCommand {
  /** The command's options as its yargs builder declares them (its positional is always `token`). */
  readonly options: Readonly<Record<string, FastOption>>;
  readonly load: () => Promise<MintfsCommand>;
}

export const FAST_COMMANDS: Readonly<Record<string, FastCommand>> = {
  inspect: {
    options: {},
    load: async () => (await import('./one-shot-commands.js')).inspectCommand,
  },
  verify: {
    options: {
      keys: { takes: 'string', required: false },
      service: { takes: 'string', required: true },
      method: { takes: 'string', required: true },
      url: { takes: 'string', required: true },
      at: { takes: 'string', required: false },
      redis: { takes: 'string', required: false },
    },
    load: async () => (await import('./one-shot-commands.js')).verifyCommand,
  },
  attenuate: {
    options: { caveat: { takes: 'array', required: true } },
    load: async () => (await import('./one-shot-commands.js')).attenuateCommand,
  },
};

export interface FastInvocation {
  readonly command: string;
  /** The words as the command's handler receives them from yargs (the keys its schema reads). */
  readonly argv: Readonly<Record<string, string | readonly string[]>>;
  readonly debug: boolean;
}

/** The invocation when `args` (process.argv without node and the script) is one the fast path reads as yargs would. */
export function parseFastPath(args: readonly string[]): FastInvocation | undefined {
  const name = args[0];
  if (name === undefined || !Object.hasOwn(FAST_COMMANDS, name)) return undefined;
  const { options } = FAST_COMMANDS[name] as FastCommand;
  const argv: Record<string, string | string[]> = {};
  let debug = false;
  for (let i = 1; i < args.length; i++) {
    const word = args[i] as string;
    if (word === '--debug') {
      // yargs reads a following "true" or "false" as the flag's value.
      if (debug || args[i + 1] === 'true' || args[i + 1] === 'false') return undefined;
      debug = true;
      continue;
    }
    if (!word.startsWith('-')) {
      // yargs shows help when the last positional word is "help" (`mintfs inspect help`).
      if (word === '' || word === 'help' || Object.hasOwn(argv, 'token')) return undefined;
      argv.token = word;
      continue;
    }
    if (!word.startsWith('--')) return undefined;
    const equals = word.indexOf('=');
    const option = equals === -1 ? word.slice(2) : word.slice(2, equals);
    if (!Object.hasOwn(options, option)) return undefined;
    if ((options[option] as FastOption).takes === 'array') {
      // --caveat a b c: every word up to the next option; repeated, they add up.
      if (equals !== -1) return undefined;
      const values = (argv[option] as string[] | undefined) ?? [];
      while (i + 1 < args.length && isPlainValue(args[i + 1] as string))
        values.push(args[++i] as string);
      if (values.length === 0) return undefined;
      argv[option] = values;
      continue;
    }
    if (Object.hasOwn(argv, option)) return undefined;
    if (equals !== -1) {
      argv[option] = word.slice(equals + 1);
      continue;
    }
    const value = args[i + 1];
    if (value === undefined || !isPlainValue(value)) return undefined;
    argv[option] = value;
    i++;
  }
  for (const [option, { required }] of Object.entries(options))
    if (required && !Object.hasOwn(argv, option)) return undefined;
  return { command: name, argv, debug };
}

/** A word yargs takes as a value whatever the option: not empty, no leading "-". */
function isPlainValue(word: string): boolean {
  return word !== '' && !word.startsWith('-');
}

/**
 * Runs `args` on the fast path if it reads them; false when it declines
 * (nothing has been printed or loaded then, and main.ts takes over).
 */
export async function runFastPath(args: readonly string[]): Promise<boolean> {
  const invocation = parseFastPath(args);
  if (invocation === undefined) return false;
  try {
    const command = await (FAST_COMMANDS[invocation.command] as FastCommand).load();
    await command.runWith(invocation.argv);
  } catch (err) {
    reportFailure(err, invocation.debug);
  }
  return true;
}
