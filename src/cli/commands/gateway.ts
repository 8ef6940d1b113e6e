import { rmSync } from 'node:fs';
import * as z from 'zod';
import { loadGatewayConfig } from '../../gateway/config.js';
import { removeStaleSocket, startGateway } from '../../gateway/server.js';
import {
  disconnectWorker,
  gatewayWorkerIndex,
  isGatewayWorker,
  superviseWorkers,
  workerCount,
} from '../../gateway/workers.js';
import { defineCommand } from '../define-command.js';
import { commandLogger } from '../logging.js';
import { untilSignalled } from '../until-signalled.js';
import { KeysArg, LogFormatArg, LogLevelArg, keysDirFrom, keysOption } from '../options.js';

export const gatewayCommand = defineCommand({
  command: 'gateway <config>',
  describe:
    'Run the credential-injecting proxy in the foreground; SIGTERM/SIGINT let in-flight requests finish (twice: exit at once); SIGHUP reloads the config, keys, revocations and credentials (they also reload when their files change; listen addresses need a restart)',
  builder: (yargs) =>
    yargs
      .positional('config', { type: 'string', describe: 'Gateway config (YAML)' })
      .options(keysOption)
      .example('$0 gateway gateway.yaml --keys /var/lib/mintfs/keys', ''),
  args: z.object({
    config: z.string().min(1),
    keys: KeysArg,
    'log-level': LogLevelArg,
    'log-format': LogFormatArg,
  }),
  run: async (args) => {
    // The primary of a multi-worker gateway only supervises; each worker is a whole gateway.
    if (!isGatewayWorker()) {
      const config = loadGatewayConfig(args.config);
      const workers = workerCount(config);
      if (workers > 1) {
        const logger = commandLogger(args);
        // Unix sockets are the primary's: it holds the listeners the workers share.
        const sockets = config.listen.flatMap((a) => (a.kind === 'unix' ? [a.path] : []));
        for (const path of sockets) await removeStaleSocket(path);
        // Metrics of all workers, from the primary (prom-client loaded only when asked for).
        const metrics =
          config.metrics === undefined
            ? undefined
            : await (
                await import('../../metrics/cluster-metrics.js')
              ).serveClusterMetrics(config.metrics, logger);
        process.exitCode = await superviseWorkers(workers, logger);
        await metrics?.close();
        for (const path of sockets) rmSync(path, { force: true });
        logger.flush();
        return;
      }
    }
    // Several processes on one stderr: lines written one by one never interleave.
    const logger = commandLogger(args, { sync: isGatewayWorker() });
    const started = startGateway({
      configFile: args.config,
      keysDir: keysDirFrom(args),
      logger,
      sharedListeners: isGatewayWorker(),
      // One worker serves the approvers; the others' held requests reach it through Redis.
      approvalListeners: gatewayWorkerIndex() === 0,
    });
    // In the same tick: a signal during start-up closes the gateway once it is up.
    // A second signal exits at once; a later start recovers what is left.
    const signalled = untilSignalled(
      logger,
      'finishing in-flight requests',
      started,
      (gateway) => gateway.close(),
      (gateway) => gateway.reload('SIGHUP'),
    );
    await started;
    await signalled;
    // A worker's channel to the primary would keep it alive: let go of it.
    if (isGatewayWorker()) disconnectWorker();
  },
});
