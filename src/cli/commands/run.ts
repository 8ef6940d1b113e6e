import * as z from 'zod';
import { GVISOR_PLATFORMS } from '../../contain/gvisor.js';
import { RUN_RUNTIMES, runInSandbox } from '../../contain/run-sandbox.js';
import { RUN_UID_COUNT, RUN_UID_FIRST } from '../../contain/run-uid.js';
import { RUNSC_START_DEADLINE_MS } from '../../contain/runc.js';
import { parseByteSize } from '../../util/byte-size.js';
import { formatDuration, parseDuration } from '../../util/duration.js';
import { defineCommand } from '../define-command.js';
import { commandLogger } from '../logging.js';
import {
  BackendArg,
  KeysArg,
  LogFormatArg,
  LogLevelArg,
  backendOption,
  keysDirFrom,
  keysOption,
} from '../options.js';

const Id = z.coerce
  .number()
  .int()
  .min(1, 'must not be root (0)')
  .max(2 ** 31 - 1);

export const runCommand = defineCommand({
  command: 'run',
  describe:
    'Run a command in a bubblewrap sandbox (or a container: --runtime docker|runc|runsc): /secrets from a token mount, no network but the gateway at 127.0.0.1:8787, no capabilities, seccomp, a fresh non-root uid, memory/pids/cpu limits',
  builder: (yargs) =>
    yargs
      .options(keysOption)
      .options(backendOption)
      .option('profile', { type: 'string', describe: 'Serve this profile on a private mount' })
      .option('mount', {
        type: 'string',
        describe:
          'Or this running mount at /secrets (followed across daemon restarts when mounted with --shared-parent)',
      })
      .option('gateway', { type: 'string', describe: 'Run a private gateway with this config' })
      .option('gateway-socket', {
        type: 'string',
        describe: "Or reach this running gateway's unix socket",
      })
      .option('runtime', {
        type: 'string',
        choices: RUN_RUNTIMES,
        default: 'bwrap',
        describe:
          'bubblewrap on this host, a Docker container of --image (the docker CLI, DOCKER_HOST honoured), or an OCI container of --rootfs (runc, or runsc for gVisor)',
      })
      .option('image', { type: 'string', describe: 'With --runtime docker: the image to run' })
      .option('rootfs', {
        type: 'string',
        describe: 'With --runtime runc|runsc: the root file system directory to run',
      })
      .option('gvisor-platform', {
        type: 'string',
        choices: GVISOR_PLATFORMS,
        describe:
          "With --runtime runsc: how gVisor traps the agent's system calls (default: systrap where this runsc has it, else ptrace; kvm needs /dev/kvm)",
      })
      .option('gvisor-start-timeout', {
        type: 'string',
        describe: `With --runtime runsc: how long gVisor gets to start the sandbox before the run fails naming the platform (default ${formatDuration(RUNSC_START_DEADLINE_MS)}; 1s to 10m)`,
      })
      .option('ca-cert', {
        type: 'string',
        describe:
          "With --gateway-socket: that gateway's interception CA certificate, the sandbox's only trust (a private gateway's comes from its intercept.ca)",
      })
      .option('uid', {
        type: 'number',
        describe: `User the command runs as (default: a fresh uid from ${RUN_UID_FIRST}..${RUN_UID_FIRST + RUN_UID_COUNT - 1} that no host process has)`,
      })
      .option('gid', { type: 'number', describe: 'Group (default: the uid)' })
      .option('memory', {
        type: 'string',
        default: '2G',
        describe: 'Memory for the whole sandbox (512M, 2G)',
      })
      .option('pids', { type: 'number', default: 1024, describe: 'Processes and threads at once' })
      .option('cpus', { type: 'number', describe: 'CPU time, in CPUs (1.5); default: no limit' })
      .option('workdir', { type: 'string', describe: 'Host directory bound read-write at /work' })
      .option('log', { type: 'string', describe: 'Write mintfs logs to this file, not stderr' })
      .parserConfiguration({ 'populate--': true })
      .example(
        '$0 run --profile agent.yaml --gateway gateway.yaml -- sh -c \'curl -H "Authorization: Bearer $(cat /secrets/github/token)" http://api.github.com/user\'',
        '',
      ),
  args: z
    .object({
      keys: KeysArg,
      backend: BackendArg,
      profile: z.string().min(1).optional(),
      mount: z.string().min(1).optional(),
      gateway: z.string().min(1).optional(),
      'gateway-socket': z.string().min(1).optional(),
      'ca-cert': z.string().min(1).optional(),
      runtime: z.enum(RUN_RUNTIMES),
      image: z.string().min(1).optional(),
      rootfs: z.string().min(1).optional(),
      'gvisor-platform': z.enum(GVISOR_PLATFORMS).optional(),
      'gvisor-start-timeout': z
        .string()
        .transform((text, ctx) => {
          const ms = parseDuration(text);
          if (ms === undefined || ms < 1_000 || ms > 600_000) {
            ctx.addIssue({
              code: 'custom',
              message: `"${text}" is not a duration from 1s to 10m, such as 30s or 2m`,
            });
            return z.NEVER;
          }
          return ms;
        })
        .optional(),
      uid: Id.optional(),
      gid: Id.optional(),
      memory: z.string().transform((text, ctx) => {
        const bytes = parseByteSize(text);
        if (bytes === undefined || bytes < 16 * 1024 * 1024) {
          ctx.addIssue({
            code: 'custom',
            message: `"${text}" is not a size of at least 16M, such as 512M or 2G`,
          });
          return z.NEVER;
        }
        return bytes;
      }),
      pids: z.number().int().min(8, 'must be at least 8').max(4_194_304),
      cpus: z.number().positive().max(4096).optional(),
      workdir: z.string().min(1).optional(),
      log: z.string().min(1).optional(),
      'log-level': LogLevelArg,
      'log-format': LogFormatArg,
      '--': z.array(z.coerce.string()).optional(),
    })
    .superRefine((args, ctx) => {
      if (!args['--'] || args['--'].length === 0)
        ctx.addIssue({
          code: 'custom',
          message: 'name the command after --: mintfs run [options] -- CMD [ARGS...]',
        });
      if ((args.profile === undefined) === (args.mount === undefined))
        ctx.addIssue({ code: 'custom', path: ['profile'], message: 'give --profile or --mount' });
      if ((args.gateway === undefined) === (args['gateway-socket'] === undefined))
        ctx.addIssue({
          code: 'custom',
          path: ['gateway'],
          message: 'give --gateway or --gateway-socket',
        });
      if (args.runtime === 'docker' && args.image === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['image'],
          message: 'name the image to run with --runtime docker',
        });
      if (args.runtime !== 'docker' && args.image !== undefined)
        ctx.addIssue({ code: 'custom', path: ['image'], message: 'only with --runtime docker' });
      const oci = args.runtime === 'runc' || args.runtime === 'runsc';
      if (oci && args.rootfs === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['rootfs'],
          message: `name the root file system to run with --runtime ${args.runtime}`,
        });
      if (!oci && args.rootfs !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['rootfs'],
          message: 'only with --runtime runc or runsc',
        });
      if (args.runtime !== 'runsc' && args['gvisor-platform'] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['gvisor-platform'],
          message: 'only with --runtime runsc',
        });
      if (args.runtime !== 'runsc' && args['gvisor-start-timeout'] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['gvisor-start-timeout'],
          message: 'only with --runtime runsc',
        });
      if (args['ca-cert'] !== undefined && args.gateway !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['ca-cert'],
          message: "only with --gateway-socket (a private gateway's CA comes from its config)",
        });
    }),
  run: async (args) => {
    const logger = commandLogger(args, { destination: args.log });
    process.exitCode = await runInSandbox({
      profileFile: args.profile,
      mountDir: args.mount,
      gatewayConfig: args.gateway,
      gatewaySocket: args['gateway-socket'],
      caCert: args['ca-cert'],
      runtime: args.runtime,
      image: args.image,
      rootfs: args.rootfs,
      gvisorPlatform: args['gvisor-platform'],
      gvisorStartTimeoutMs: args['gvisor-start-timeout'],
      keysDir: keysDirFrom(args),
      backend: args.backend,
      uid: args.uid,
      gid: args.gid ?? args.uid,
      limits: { memoryBytes: args.memory, pids: args.pids, cpus: args.cpus },
      workdir: args.workdir,
      command: args['--'] ?? [],
      logger,
    });
    logger.flush();
  },
});
