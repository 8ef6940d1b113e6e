/**
 * The stdin, stdout and stderr a bubblewrap sandbox gets (runc relays a
 * foreground container's through pipes itself; Docker's come through its
 * daemon). A terminal is handed over as it is: an agent may
 * be interactive, and `--new-session` keeps it from typing into it. Anything
 * else the caller has there (a file, a pipe, a socket) is relayed through a
 * pipe of ours: handed over, `mintfs run ... > out.log` would show the
 * path of out.log inside (/proc/self/fd/1), and the agent could reopen that
 * file through the link, for reading too.
 */
import type { ChildProcess } from 'node:child_process';
import { isatty } from 'node:tty';

export type StdioKind = 'inherit' | 'pipe';

export interface SandboxStdio {
  /** For spawn's stdio[0..2]. */
  readonly stdio: readonly [StdioKind, StdioKind, StdioKind];
  /** Connects the relays to the spawned child; they end with it. */
  relay(child: ChildProcess): void;
}

export function sandboxStdio(): SandboxStdio {
  const kind = (fd: number): StdioKind => (isatty(fd) ? 'inherit' : 'pipe');
  const stdio = [kind(0), kind(1), kind(2)] as const;
  return {
    stdio,
    relay: (child) => {
      if (stdio[1] === 'pipe') child.stdout?.pipe(process.stdout, { end: false });
      if (stdio[2] === 'pipe') child.stderr?.pipe(process.stderr, { end: false });
      if (stdio[0] !== 'pipe' || child.stdin === null) return;
      // The command may exit, or close its stdin, before reading it all.
      child.stdin.on('error', () => undefined);
      process.stdin.pipe(child.stdin);
      // Once the sandbox is gone, nothing of ours keeps reading (and keeps
      // the process alive) on the caller's stdin.
      child.once('close', () => {
        process.stdin.unpipe(child.stdin ?? undefined);
        process.stdin.destroy();
      });
    },
  };
}
