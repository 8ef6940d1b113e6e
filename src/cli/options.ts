/** Options several commands share, with their environment defaults and schemas. */
import { z } from 'zod';
import { defaultKeysDir } from '../keys/keyring.js';

export const keysOption = {
  keys: {
    type: 'string',
    describe:
      'Keyring directory (default: $MINTFS_KEYS, else /var/lib/mintfs/keys as root, else ~/.local/state/mintfs/keys)',
  },
} as const;

export const KeysArg = z.string().min(1, 'must name a directory').optional();
export const LogLevelArg = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);
export const TokenArg = z.string().optional();

export function keysDirFrom(args: { keys?: string | undefined }): string {
  return args.keys ?? defaultKeysDir();
}
