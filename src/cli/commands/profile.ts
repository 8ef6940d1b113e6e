import type { Argv, CommandModule } from 'yargs';
import * as z from 'zod';
import { buildTree } from '../../fs/virtual-tree.js';
import { loadProfile } from '../../profile/load-profile.js';
import { grantCaveats } from '../../token/caveats.js';
import { formatDuration } from '../../util/duration.js';
import { defineCommand } from '../define-command.js';
import { printResult } from '../io.js';

const check = defineCommand({
  command: 'check <profile>',
  describe: 'Validate a profile and explain what each file will mint',
  builder: (yargs) =>
    yargs.positional('profile', { type: 'string', describe: 'Mount profile (YAML)' }),
  args: z.object({ profile: z.string().min(1) }),
  run: (args) => {
    const tree = buildTree(loadProfile(args.profile));
    const lines = [`${args.profile}: valid; agent ${tree.agent}; ${tree.files.size} file(s)`];
    for (const file of tree.files.values()) {
      const mode = file.mode.toString(8).padStart(4, '0');
      lines.push(
        `  ${file.path}  (${file.format}, mode ${mode}, uid ${file.uid}, gid ${file.gid}, ttl ${formatDuration(file.grant.ttlMs)})`,
      );
      const caveats = grantCaveats(file.grant, new Date(0)).slice(1);
      lines.push(`    time-before <now + ${formatDuration(file.grant.ttlMs)}>`);
      for (const caveat of caveats) lines.push(`    ${caveat}`);
    }
    printResult(lines.join('\n'));
  },
});

export const profileCommand: CommandModule = {
  command: 'profile <command>',
  describe: 'Work with mount profiles',
  builder: (yargs: Argv) => yargs.command(check).demandCommand(1),
  handler: () => undefined,
};
