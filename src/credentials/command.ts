/**
 * `{ command: [ARGV...], ttl, timeout, passEnv }`: a host command prints the
 * credential (`gh auth token`, `vault read -field=token ...`, `op read ...`).
 *
 * Run without a shell, in a cleared environment (only the variables listed in
 * `passEnv` are passed), from /, with no stdin. Its output is trimmed and used for
 * `ttl`; neither its output nor its stderr is ever logged or shown to an agent
 * (a failing secret manager may print the secret it meant to hand over).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import * as z from 'zod';
import { untrustedPathProblem } from '../util/trusted-path.js';
import { ENV_NAME } from './env.js';
import { durationMs } from './schema-parts.js';
import type { Minted, SourceKind } from './source.js';
import { MAX_CREDENTIAL_BYTES, checkCredentialValue, refusalFor } from './value.js';

const CommandSourceSchema = z.strictObject({
  command: z
    .array(z.string().min(1, 'an argument may not be empty'))
    .min(1, 'must name a program')
    .refine(
      (argv) => isAbsolute(argv[0] as string),
      'the program must be an absolute path (no shell, no PATH search), such as /usr/bin/gh',
    )
    .describe(
      'The program and its arguments, run without a shell; it prints the credential on stdout (trimmed)',
    ),
  ttl: durationMs(1000, 24 * 3600_000, '1s..24h').describe(
    'How long a printed credential is used before the command runs again',
  ),
  timeout: durationMs(100, 120_000, '100ms..2m')
    .prefault('10s')
    .describe('A run that has not finished by then is killed (with its children) and refused'),
  passEnv: z
    .array(z.string().regex(ENV_NAME, 'must be an environment variable name'))
    .default([])
    .describe(
      "The gateway's environment variables the command gets (such as HOME or GH_CONFIG_DIR); it gets no others",
    ),
});
type CommandSource = z.output<typeof CommandSourceSchema>;

export const commandSource: SourceKind<CommandSource> = {
  key: 'command',
  schema: CommandSourceSchema,
  resolvePaths: (config) => config,
  open: (config, { service, env, clock }) => {
    const program = config.command[0] as string;
    const fail = refusalFor(service, `command ${program}`);
    checkProgram(program, fail);
    // Taken at start: the gateway's environment does not change under it.
    const passed: NodeJS.ProcessEnv = {};
    for (const name of config.passEnv) if (env[name] !== undefined) passed[name] = env[name];
    return {
      kind: 'minted',
      minter: {
        mint: async () => {
          const output = await run(config.command, passed, config.timeout, fail);
          const value = checkCredentialValue(output.trim(), (reason) =>
            fail(reason === 'is empty' ? 'printed nothing' : `printed a value that ${reason}`),
          );
          return { value, expiresAt: clock() + config.ttl } satisfies Minted;
        },
      },
    };
  },
};

function checkProgram(program: string, fail: (reason: string) => Error): void {
  let info;
  try {
    info = statSync(program);
  } catch {
    throw fail('does not exist');
  }
  if (!info.isFile()) throw fail('is not a regular file');
  try {
    accessSync(program, constants.X_OK);
  } catch {
    throw fail('is not executable');
  }
  // It runs as the gateway and its output becomes a credential: nobody else may replace it.
  const untrusted = untrustedPathProblem(program);
  if (untrusted !== undefined) throw fail(untrusted.replace(/^it /, ''));
}

/** Output cap: a command printing without end is cut, not buffered. */
const MAX_OUTPUT_BYTES = MAX_CREDENTIAL_BYTES + 1024;

function run(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  fail: (reason: string) => Error,
): Promise<string> {
  return new Promise((resolve, reject) => {
    // detached: its own process group, so a timeout kills what it started too.
    const child = spawn(argv[0] as string, argv.slice(1), {
      shell: false,
      env,
      cwd: '/',
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let refusal: Error | undefined;
    const stop = (reason: Error) => {
      refusal ??= reason;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(
      () => stop(fail(`did not finish within ${timeoutMs} ms (timeout)`)),
      timeoutMs,
    );
    child.stdout.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_OUTPUT_BYTES) stop(fail(`printed more than ${MAX_OUTPUT_BYTES} bytes`));
      else chunks.push(chunk);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(fail(`could not be started (${err.code ?? 'error'})`));
    });
    let ended = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const settle = () => {
      if (exited === undefined || !ended) return;
      clearTimeout(timer);
      const { code, signal } = exited;
      if (refusal !== undefined) return reject(refusal);
      if (signal !== null) return reject(fail(`was killed by ${signal}`));
      if (code !== 0) return reject(fail(`exited with status ${code}`));
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    child.stdout.once('end', () => {
      ended = true;
      settle();
    });
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      if (ended) return settle();
      // Something it started still holds stdout: what was printed is all there is.
      setTimeout(() => {
        if (ended) return;
        stop(fail('left a process holding its output open'));
        child.stdout.destroy();
        ended = true;
        settle();
      }, 200).unref();
    });
  });
}
