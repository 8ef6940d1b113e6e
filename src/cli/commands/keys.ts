import type { Argv, CommandModule } from 'yargs';
import * as z from 'zod';
import {
  addKey,
  initKeyring,
  listKeys,
  loadKeyring,
  pruneRetiredKeys,
  retireKey,
} from '../../keys/keyring.js';
import { KEY_ID } from '../../token/identifier.js';
import { parseDuration } from '../../util/duration.js';
import { formatInstant } from '../../util/instant.js';
import { defineCommand } from '../define-command.js';
import { formatTable, printJson, printResult } from '../io.js';
import { KeysArg, keysDirFrom, keysOption } from '../options.js';

// Key ids name keys; the keys themselves never leave their files.

const init = defineCommand({
  command: 'init',
  describe: 'Create a keyring holding one new root key; refuses to overwrite one',
  builder: (yargs) =>
    yargs.options(keysOption).example('$0 keys init --keys /var/lib/mintfs/keys', ''),
  args: z.object({ keys: KeysArg }),
  run: (args) => {
    const keyring = initKeyring(keysDirFrom(args), new Date());
    printJson({ keys: keyring.dir, keyId: keyring.current.id });
  },
});

const rotate = defineCommand({
  command: 'rotate',
  describe:
    'Add a new root key: new tokens are signed with it, older keys keep verifying until retired. Running mounts and gateways pick it up within 2 s',
  builder: (yargs) =>
    yargs.options(keysOption).example('$0 keys rotate --keys /var/lib/mintfs/keys', ''),
  args: z.object({ keys: KeysArg }),
  run: (args) => {
    const dir = keysDirFrom(args);
    const previous = loadKeyring(dir).current.id;
    const keyId = addKey(dir, new Date());
    printJson({ keys: dir, keyId, previousKeyId: previous });
  },
});

const list = defineCommand({
  command: 'list',
  describe:
    'List the keys: id, creation time, and state (signing, verifying or retired); a table at a terminal, JSON with --json or into a pipe',
  builder: (yargs) =>
    yargs.options(keysOption).option('json', { type: 'boolean', describe: 'Print JSON' }),
  args: z.object({ keys: KeysArg, json: z.boolean().optional() }),
  run: (args) => {
    const keyring = loadKeyring(keysDirFrom(args));
    const entries = listKeys(keyring);
    if (args.json === true || process.stdout.isTTY !== true) {
      printJson({ keys: keyring.dir, entries });
      return;
    }
    printResult(
      formatTable(
        ['KEY ID', 'CREATED', 'STATE', 'RETIRED'],
        entries.map((e) => [e.id, e.created ?? '-', e.state, e.retiredAt ?? '']),
      ),
    );
  },
});

const retire = defineCommand({
  command: 'retire <id>',
  describe:
    'Stop a key from verifying: tokens it signed are refused once verifiers reload (within 2 s). The signing key cannot be retired',
  builder: (yargs) =>
    yargs
      .positional('id', { type: 'string', describe: 'Key id, as `mintfs keys list` shows it' })
      .options(keysOption)
      .example('$0 keys retire 20261122T021314Z-3f9a0c1e', ''),
  args: z.object({
    id: z.string().regex(KEY_ID, 'not a key id'),
    keys: KeysArg,
  }),
  run: (args) => {
    const dir = keysDirFrom(args);
    const retired = retireKey(dir, args.id, new Date());
    printJson({ keys: dir, keyId: retired.id, retiredAt: formatInstant(retired.retiredAt) });
  },
});

const prune = defineCommand({
  command: 'prune',
  describe: 'Delete the records of keys retired longer ago than --older-than',
  builder: (yargs) =>
    yargs
      .options(keysOption)
      .option('older-than', {
        type: 'string',
        demandOption: true,
        describe: 'How long ago a key must have been retired: 90s, 30m, 24h, 7d',
      })
      .example('$0 keys prune --older-than 7d', ''),
  args: z.object({
    keys: KeysArg,
    'older-than': z.string().transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: 'not a duration such as 90s, 30m, 24h or 7d' });
        return z.NEVER;
      }
      return ms;
    }),
  }),
  run: (args) => {
    const dir = keysDirFrom(args);
    printJson({ keys: dir, pruned: pruneRetiredKeys(dir, args['older-than'], new Date()) });
  },
});

export const keysCommand: CommandModule = {
  command: 'keys <command>',
  describe: 'Manage the keyring of root keys',
  builder: (yargs: Argv) =>
    yargs
      .command(init)
      .command(rotate)
      .command(list)
      .command(retire)
      .command(prune)
      .demandCommand(1),
  handler: () => undefined,
};
