/**
 * A command module whose arguments are validated by a zod schema at the edge:
 * yargs parses the words, the schema decides what they mean, and a bad value
 * becomes one line naming the option (`--at: not an RFC 3339 time`).
 */
import type { Argv, CommandModule } from 'yargs';
import { safeParse, type core } from 'zod/mini';
import { MintfsError } from '../errors.js';

export interface CommandSpec<S extends core.$ZodType> {
  readonly command: string;
  readonly describe: string;
  readonly builder?: (yargs: Argv) => Argv;
  readonly args: S;
  readonly run: (args: core.output<S>) => void | Promise<void>;
}

/**
 * A yargs command module that can also be run from words parsed elsewhere
 * (fast-path.ts): `runWith` is its handler, the schema's check then the
 * command, whoever parsed the words.
 */
export interface MintfsCommand extends CommandModule {
  /** The schema runWith checks the words against (the fast path's property test reads it). */
  readonly schema: core.$ZodType;
  readonly runWith: (argv: Readonly<Record<string, unknown>>) => Promise<void>;
}

export function defineCommand<S extends core.$ZodType>(spec: CommandSpec<S>): MintfsCommand {
  const runWith = async (argv: Readonly<Record<string, unknown>>): Promise<void> => {
    // zod's function form: command schemas are classic or mini (util/zod-mini.ts), one core.
    const parsed = safeParse(spec.args, argv);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => {
        const name = issue.path.map(String).join('.');
        return name === '' ? issue.message : `--${name}: ${issue.message}`;
      });
      throw new MintfsError('ERR_INPUT_INVALID', problems.join('; '));
    }
    await spec.run(parsed.data);
  };
  return {
    command: spec.command,
    describe: spec.describe,
    builder: (yargs: Argv) => (spec.builder ? spec.builder(yargs) : yargs),
    handler: runWith,
    schema: spec.args,
    runWith,
  };
}
