/**
 * The one-shot commands' fast path (src/cli/fast-path.ts) reads argument
 * vectors without yargs. It may decline any of them; whatever it accepts it
 * must read exactly as the full command line does (the yargs set-up main.ts
 * runs, command-line.ts), so that the command's schema, its output, its
 * errors and its exit code are the same whichever path ran. Checked over
 * generated argument vectors against the real yargs, the real command
 * builders and the real schemas.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import yargs, { type CommandModule } from 'yargs';
import { safeParse, type ZodMiniObject } from 'zod/mini';
import { attenuateCommand } from '../../src/cli/commands/attenuate.js';
import { inspectCommand } from '../../src/cli/commands/inspect.js';
import { verifyCommand } from '../../src/cli/commands/verify.js';
import { UsageError, configureCommandLine } from '../../src/cli/command-line.js';
import type { MintfsCommand } from '../../src/cli/define-command.js';
import { FAST_COMMANDS, parseFastPath } from '../../src/cli/fast-path.js';

const COMMANDS: Readonly<Record<string, MintfsCommand>> = {
  inspect: inspectCommand,
  verify: verifyCommand,
  attenuate: attenuateCommand,
};

type Outcome =
  | { readonly kind: 'run'; readonly argv: Readonly<Record<string, unknown>> }
  | { readonly kind: 'usage'; readonly message: string }
  | { readonly kind: 'nothing' };

/** What the full command line makes of `args`: the words the handler gets, or its usage error. */
async function fullParse(command: MintfsCommand, args: readonly string[]): Promise<Outcome> {
  let ran: Record<string, unknown> | undefined;
  const probe: CommandModule = {
    command: command.command,
    describe: command.describe,
    builder: command.builder,
    handler: (argv) => {
      ran = argv;
    },
  };
  const cli = configureCommandLine(yargs([...args]), [probe]).exitProcess(false);
  try {
    await cli.parseAsync();
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'usage', message: err.message };
    throw err;
  }
  return ran === undefined ? { kind: 'nothing' } : { kind: 'run', argv: ran };
}

function schemaKeys(command: MintfsCommand): string[] {
  return Object.keys((command.schema as ZodMiniObject).shape);
}

/** A schema's verdict on words, comparable with deepEqual (issues, not the error object). */
function verdict(command: MintfsCommand, argv: Readonly<Record<string, unknown>>): unknown {
  const parsed = safeParse(command.schema, argv);
  return parsed.success ? { data: parsed.data } : { issues: parsed.error.issues };
}

// Words yargs reads in surprising ways: numbers, booleans, dashes, "=", empty.
const ODD_VALUES = [
  '',
  ' ',
  '-',
  '-5',
  '-x',
  '--',
  '---',
  '0',
  '123',
  '0x10',
  '1e3',
  '-1.5',
  'true',
  'false',
  'null',
  'undefined',
  'NaN',
  'a=b',
  '=',
  'help',
  'inspect',
  'verify',
  '__proto__',
  'constructor',
  'GET',
  'get',
  'github',
  'https://api.github.com/repos/acme/x',
  'https://api.github.com/a?b=c=d',
  'ftp://x',
  'redis://127.0.0.1:6379',
  '2026-11-22T01:20:00Z',
  'method GET',
  'path /repos/acme/**',
  '-NQBtoken',
  'Ag3tokenAAAA',
];
const value = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ODD_VALUES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,24}$/) },
);

/** Option-like words: the command's own, other commands', globals, and near misses. */
function flagWords(command: string): string[] {
  const own = Object.keys(FAST_COMMANDS[command]?.options ?? {});
  return [
    ...own.flatMap((o) => [`--${o}`, `--no-${o}`, `--${o.toUpperCase()}`, `--${o}.x`, `-${o[0]}`]),
    '--keys',
    '--caveat',
    '--service',
    '--debug',
    '--debug=true',
    '--debug=false',
    '--no-debug',
    '--help',
    '-h',
    '--version',
    '-V',
    '--log-level',
    '--log-level=info',
    '--log-format=json',
    '--logLevel',
    '--',
    '--token',
    '--_',
    '--$0',
  ];
}

/** Argument vectors for `command`: mostly well-formed pieces, with odd words mixed in. */
function argVectors(command: string): fc.Arbitrary<string[]> {
  const own = Object.keys(FAST_COMMANDS[command]?.options ?? {});
  // Options to write: the command's own, and keys and debug (another command's, and a global).
  const named = [...own, 'keys', 'debug'];
  const piece = fc.oneof(
    // --option value, --option=value, --option v1 v2 (arrays)
    fc
      .tuple(fc.constantFrom(...named), value, fc.constantFrom('space', 'equals'))
      .map(([o, v, how]) => (how === 'equals' ? [`--${o}=${v}`] : [`--${o}`, v])),
    fc
      .tuple(fc.constantFrom(...named), fc.array(value, { maxLength: 3 }))
      .map(([o, vs]) => [`--${o}`, ...vs]),
    value.map((v) => [v]),
    fc.constantFrom(...flagWords(command)).map((w) => [w]),
    // yargs reads a boolean's "true" or "false" after it as its value.
    fc.constantFrom('true', 'false').map((v) => ['--debug', v]),
  );
  const required = own
    .filter((o) => FAST_COMMANDS[command]?.options[o]?.required)
    .map((o) =>
      fc.tuple(
        fc.constant(`--${o}`),
        value.filter((v) => v !== '' && !v.startsWith('-')),
      ),
    );
  return fc
    .tuple(
      fc.array(piece, { maxLength: 6 }),
      fc.tuple(...required),
      // Mostly with the required options, or few vectors would get past them.
      fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
    )
    .chain(([pieces, needed, withNeeded]) =>
      fc.shuffledSubarray([...pieces, ...(withNeeded ? needed : [])], {
        minLength: pieces.length + (withNeeded ? needed.length : 0),
      }),
    )
    .map((pieces) => [command, ...pieces.flat()]);
}

/** Runs the property for one command; returns how many vectors the fast path accepted. */
async function agreesWithYargs(name: string, numRuns: number): Promise<number> {
  const command = COMMANDS[name] as MintfsCommand;
  const keys = schemaKeys(command);
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(argVectors(name), async (args) => {
      const fast = parseFastPath(args);
      if (fast === undefined) return;
      accepted++;
      const full = await fullParse(command, args.slice());
      assert.equal(
        full.kind,
        'run',
        `yargs did not run ${JSON.stringify(args)}: ${JSON.stringify(full)}`,
      );
      if (full.kind !== 'run') return;
      assert.equal(fast.command, name);
      for (const key of Object.keys(fast.argv)) assert.ok(keys.includes(key), key);
      for (const key of keys) assert.deepEqual(fast.argv[key], full.argv[key], key);
      assert.deepEqual(verdict(command, fast.argv), verdict(command, full.argv));
      // main.ts reads --debug from the words, yargs from its flag: both agree with the fast path.
      assert.equal(fast.debug, args.includes('--debug'));
      assert.equal(fast.debug, full.argv.debug);
    }),
    { numRuns },
  );
  return accepted;
}

describe('the one-shot fast path', () => {
  for (const name of Object.keys(FAST_COMMANDS))
    it(`reads ${name}'s words as yargs does, or declines them`, async () => {
      const accepted = await agreesWithYargs(name, 400);
      // Not vacuous: many generated vectors take the fast path (typically 45-80).
      assert.ok(accepted >= 20, `only ${accepted} of 400 vectors took the fast path`);
    });

  it('has a fast command for each command that defines one, and only those', () => {
    assert.deepEqual(Object.keys(FAST_COMMANDS).sort(), Object.keys(COMMANDS).sort());
    for (const [name, command] of Object.entries(COMMANDS)) {
      assert.equal(String(command.command).split(' ')[0], name);
      // Every option the fast path reads is one the schema checks.
      for (const option of Object.keys(FAST_COMMANDS[name]?.options ?? {}))
        assert.ok(schemaKeys(command).includes(option), `${name} --${option}`);
    }
  });

  it('takes the plain forms scripts use', () => {
    assert.deepEqual(parseFastPath(['inspect', 'T']), {
      command: 'inspect',
      argv: { token: 'T' },
      debug: false,
    });
    assert.deepEqual(parseFastPath(['inspect']), { command: 'inspect', argv: {}, debug: false });
    assert.deepEqual(
      parseFastPath([
        'verify',
        'T',
        '--keys',
        '/k',
        '--service',
        'github',
        '--method=GET',
        '--url',
        'https://api.github.com/x',
        '--debug',
      ]),
      {
        command: 'verify',
        argv: {
          token: 'T',
          keys: '/k',
          service: 'github',
          method: 'GET',
          url: 'https://api.github.com/x',
        },
        debug: true,
      },
    );
    assert.deepEqual(
      parseFastPath(['attenuate', 'T', '--caveat', 'method GET', 'path /a', '--caveat', 'x']),
      {
        command: 'attenuate',
        argv: { token: 'T', caveat: ['method GET', 'path /a', 'x'] },
        debug: false,
      },
    );
  });

  it('leaves help, usage errors and every other command to yargs', () => {
    for (const args of [
      [],
      ['--help'],
      ['inspect', '--help'],
      ['inspect', '-h'],
      ['inspect', 'help'], // yargs prints help for a last positional "help"
      ['attenuate', 'help', '--caveat', 'x'],
      ['verify', 'T', '--service', 'github', '--method', 'GET'], // --url is required
      ['attenuate', 'T'], // --caveat is required
      ['attenuate', 'T', '--caveat'],
      ['inspect', 'T', 'U'],
      ['inspect', '--keys', '/k'],
      ['inspect', '--log-level', 'debug', 'T'],
      ['inspect', '--', '-T'],
      ['verify', 'T', '--service', 'a', '--service', 'b', '--method', 'GET', '--url', 'u'],
      ['verify', 'T', '--service', '-x', '--method', 'GET', '--url', 'u'],
      ['inspect', '--debug', 'true', 'T'],
      ['mint', 'x'],
      ['Inspect', 'T'],
      ['--debug', 'inspect', 'T'],
    ])
      assert.equal(parseFastPath(args), undefined, JSON.stringify(args));
  });
});
