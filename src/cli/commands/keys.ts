import type { Argv, CommandModule } from 'yargs';
import { z } from 'zod';
import { initKeyring } from '../../keys/keyring.js';
import { defineCommand } from '../define-command.js';
import { printJson } from '../io.js';
import { KeysArg, keysDirFrom, keysOption } from '../options.js';

const init = defineCommand({
  command: 'init',
  describe: 'Create a keyring holding one new root key; refuses to overwrite one',
  builder: (yargs) =>
    yargs.options(keysOption).example('$0 keys init --keys /var/lib/mintfs/keys', ''),
  args: z.object({ keys: KeysArg }),
  run: (args) => {
    const keyring = initKeyring(keysDirFrom(args), new Date());
    // The key id names the key; the key itself never leaves its file.
    printJson({ keys: keyring.dir, keyId: keyring.current.id });
  },
});

export const keysCommand: CommandModule = {
  command: 'keys <command>',
  describe: 'Manage the keyring of root keys',
  builder: (yargs: Argv) => yargs.command(init).demandCommand(1),
  handler: () => undefined,
};
