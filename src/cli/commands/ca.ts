/**
 * `mintfs ca init|show`: the per-deployment CA for HTTPS interception
 * (src/intercept/ca.ts). Prints the certificate's fingerprint, never the key.
 */
import type { Argv, CommandModule } from 'yargs';
import * as z from 'zod';
import { initCa, loadCa, type LoadedCa } from '../../intercept/ca.js';
import { HOST_NAME } from '../../token/vocabulary.js';
import { defineCommand } from '../define-command.js';
import { printJson } from '../io.js';

const Dir = z.string().min(1, 'must name a directory');

function describeCa(ca: LoadedCa): Record<string, unknown> {
  return {
    certificate: ca.certPath,
    key: ca.keyPath,
    fingerprintSha256: ca.fingerprint,
    notAfter: ca.certificate.notAfter.toISOString(),
    permittedHosts: ca.permittedHosts ?? 'any (unconstrained)',
  };
}

const init = defineCommand({
  command: 'init',
  describe:
    'Make an interception CA: DIR/ca.crt (0644, give it to sandboxes) and DIR/ca.key (0600, the gateway only). Never overwrites',
  builder: (yargs) =>
    yargs
      .option('dir', { type: 'string', demandOption: true, describe: 'Directory to write into' })
      .option('host', {
        type: 'string',
        array: true,
        describe:
          'A host the CA may issue for, subdomains included (repeat); the CA is name-constrained to these',
      })
      .option('any-host', {
        type: 'boolean',
        describe: 'Make an unconstrained CA instead (a leaked key could then impersonate any site)',
      })
      .option('days', { type: 'number', default: 365, describe: 'Validity in days' })
      .example('$0 ca init --dir /etc/mintfs/ca --host api.github.com --host github.com', ''),
  args: z
    .object({
      dir: Dir,
      host: z
        .array(z.string().regex(HOST_NAME, 'must be a lower-case hostname such as api.github.com'))
        .optional(),
      anyHost: z.boolean().optional(),
      days: z.number().int().min(1).max(3650),
    })
    .superRefine((args, ctx) => {
      const hosts = args.host?.length ?? 0;
      if (hosts === 0 && args.anyHost !== true)
        ctx.addIssue({
          code: 'custom',
          path: ['host'],
          message: 'name the hosts the CA is for (or --any-host for an unconstrained CA)',
        });
      if (hosts > 0 && args.anyHost === true)
        ctx.addIssue({ code: 'custom', path: ['any-host'], message: 'conflicts with --host' });
    }),
  run: async (args) => {
    const ca = await initCa(args.dir, {
      hosts: args.anyHost === true ? undefined : args.host,
      now: new Date(),
      validDays: args.days,
    });
    printJson({ created: true, ...describeCa(ca) });
  },
});

const show = defineCommand({
  command: 'show',
  describe: 'Check an interception CA and print its fingerprint, hosts and expiry',
  builder: (yargs) =>
    yargs.option('dir', { type: 'string', demandOption: true, describe: 'The CA directory' }),
  args: z.object({ dir: Dir }),
  run: async (args) => {
    printJson(describeCa(await loadCa(args.dir)));
  },
});

export const caCommand: CommandModule = {
  command: 'ca <command>',
  describe: 'Manage the CA the gateway intercepts HTTPS with',
  builder: (yargs: Argv) => yargs.command(init).command(show).demandCommand(1),
  handler: () => undefined,
};
