/**
 * A real redis-server for tests of shared state: its own port, data
 * directory and password, every write on disk before it is acknowledged,
 * killed at test end. `kill` and `start` stand in for a crash and a restart.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './free-port.js';
import { pollUntil } from './poll.js';
import { tempDir, type Teardown } from './temp.js';

/** The password every test Redis requires (and no log or output may show). */
export const REDIS_PASSWORD = 'redis-password-not-for-logs';
const PASSWORD = REDIS_PASSWORD;

export interface RedisServer {
  readonly url: string;
  /** SIGKILL: no shutdown save, as a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
}

export async function startRedis(teardown: Teardown): Promise<RedisServer> {
  const dir = tempDir(teardown);
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const server = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        // Every write on disk before it is acknowledged: a crash loses nothing.
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--requirepass',
        PASSWORD,
      ],
      { stdio: 'ignore' },
    );
    child = server;
    await pollUntil(
      'redis-server to answer',
      () => {
        if (server.exitCode !== null) throw new Error(`redis-server exited ${server.exitCode}`);
        try {
          return execFileSync(
            'redis-cli',
            ['-p', String(port), '--no-auth-warning', '-a', PASSWORD, 'ping'],
            // Its "Could not connect" while the server starts is expected: not on the run's stderr.
            { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
          ).includes('PONG');
        } catch {
          return false;
        }
      },
      15_000,
    );
  };
  const kill = async () => {
    const server = child;
    if (server === undefined || server.exitCode !== null || server.signalCode !== null) return;
    const gone = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGKILL');
    await gone;
  };
  teardown.add(kill);
  await start();
  // Auth in the URL, as a deployment would have it.
  return { url: `redis://:${PASSWORD}@127.0.0.1:${port}`, kill, start };
}
