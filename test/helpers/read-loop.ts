/**
 * A reader that never stops: a bash loop running `cat` on a token file as
 * fast as it can, optionally in its own mount namespace (a slave of ours,
 * like a container's rslave bind), recording every read with its time.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from './poll.js';
import { tempDir, type Teardown } from './temp.js';

export interface ReadSample {
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly ok: boolean;
  /** The token, or the error cat printed. */
  readonly text: string;
}

export interface ReadLoop {
  samples(): readonly ReadSample[];
  /** Stops the loop and returns every sample. */
  stop(): Promise<readonly ReadSample[]>;
}

// A read counts only if cat succeeded and printed something: an empty token is a failure.
const LOOP = `
while [ ! -e "$2" ]; do
  if t=$(cat -- "$1" 2>&1) && [ -n "$t" ]; then r=ok; else r=fail; fi
  printf '%s %s %s\\n' "$r" "\${EPOCHREALTIME/./}" "\${t//$'\\n'/ }"
done
`;

export async function startReadLoop(
  file: string,
  teardown: Teardown,
  options: { namespace?: boolean } = {},
): Promise<ReadLoop> {
  const stopFile = join(tempDir(teardown, 'mintfs-loop-'), 'stop');
  const command = options.namespace
    ? ['unshare', '--mount', '--propagation', 'slave', 'bash', '-c', LOOP, 'loop', file, stopFile]
    : ['bash', '-c', LOOP, 'loop', file, stopFile];
  const child = spawn(command[0] as string, command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const samples: ReadSample[] = [];
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const [result, micros, ...rest] = line.split(' ');
      samples.push({ at: Number(micros) / 1000, ok: result === 'ok', text: rest.join(' ') });
    }
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  teardown.add(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  await pollUntil('the read loop to start', () => samples.length > 0 || child.exitCode !== null);
  return {
    samples: () => samples,
    stop: async () => {
      if (!existsSync(stopFile)) writeFileSync(stopFile, '');
      // Bounded: a loop stuck in a read is killed, and the test says so.
      await pollUntil(
        'the read loop to stop',
        () => child.exitCode !== null || child.signalCode !== null,
        30_000,
        () => `(last sample: ${samples.at(-1)?.text ?? 'none'})`,
      );
      await exited;
      return samples;
    },
  };
}

/** The longest time without a successful read between `from` and `to` (ms). */
export function longestGap(samples: readonly ReadSample[], from: number, to: number): number {
  let last = from;
  let longest = 0;
  for (const sample of samples) {
    if (!sample.ok || sample.at < from || sample.at > to) continue;
    longest = Math.max(longest, sample.at - last);
    last = sample.at;
  }
  return Math.max(longest, to - last);
}
