import * as z from 'zod';
import { mintOnce } from '../../fs/mint-fs.js';
import { buildTree } from '../../fs/virtual-tree.js';
import { loadKeyring } from '../../keys/keyring.js';
import { loadProfile } from '../../profile/load-profile.js';
import { newTokenId } from '../../token/identifier.js';
import { defineCommand } from '../define-command.js';
import { commandLogger } from '../logging.js';
import { KeysArg, LogFormatArg, LogLevelArg, keysDirFrom, keysOption } from '../options.js';

export const mintCommand = defineCommand({
  command: 'mint <profile> <file>',
  describe: 'Print one token for a virtual file, exactly as reading it on the mount would',
  builder: (yargs) =>
    yargs
      .positional('profile', { type: 'string', describe: 'Mount profile (YAML)' })
      .positional('file', { type: 'string', describe: 'Virtual file, such as github/token' })
      .options(keysOption)
      .example('$0 mint mount-profiles/github-readonly.yaml github/token', ''),
  args: z.object({
    profile: z.string().min(1),
    file: z.string().min(1),
    keys: KeysArg,
    'log-level': LogLevelArg,
    'log-format': LogFormatArg,
  }),
  run: (args) => {
    const tree = buildTree(loadProfile(args.profile));
    const keyring = loadKeyring(keysDirFrom(args));
    const logger = commandLogger(args, { oneShot: true });
    process.stdout.write(mintOnce(tree, keyring, args.file, logger, newTokenId));
  },
});
