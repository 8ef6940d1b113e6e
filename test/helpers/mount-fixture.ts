/**
 * A real `mintfs mount` in a child process, on a fresh keyring and
 * mountpoint, torn down when the test ends whether it passed or not.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { BackendName } from '../../src/fuse/backend.js';
import type { FuseTransport } from '../../src/fuse/transport.js';
import { mountedPaths, topMountAt } from '../../src/mounts/mount-table.js';
import { initKeyring, loadKeyring, type Keyring } from '../../src/keys/keyring.js';
import { CLI } from './paths.js';
import { pollUntil } from './poll.js';
import { tempDir, teardownOf, type Teardown } from './temp.js';

/** Unmounts in cleanup: bounded (a wedged FUSE mount must not hang the test), output drained. */
const UNMOUNT_OPTIONS = { timeout: 10_000, stdio: 'pipe' } as const;

export const DEMO_PROFILE = `agent: test-agent
ttl: 5m
files:
  github/token:
    service: github
    hosts: [api.github.com]
    methods: [GET, HEAD]
    paths: ["/repos/acme/widgets/**"]
  github/token.line:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/repos/acme/**"]
    format: line
  github/token.json:
    service: github
    hosts: [api.github.com]
    methods: [GET]
    paths: ["/repos/acme/**"]
    format: json
`;

/**
 * What a read of a mount whose daemon died fails with: ENOTCONN once the
 * kernel has aborted the connection. Under FUSE over io_uring the kernel tears
 * a dead daemon's ring down asynchronously, after the process is gone, so a
 * read in that window ends ECONNABORTED (the connection is being aborted) or
 * ECANCELED (its request reached a ring entry whose task is dead). Each is an
 * error, never a token, which is what the tests care about.
 */
export const DEAD_DAEMON_READ_ERROR =
  /Transport endpoint is not connected|Software caused connection abort|Operation canceled/;

export interface MountFixture {
  readonly dir: string;
  readonly mountpoint: string;
  readonly keysDir: string;
  readonly profileFile: string;
  readonly keyring: () => Keyring;
  child: ChildProcess;
  /** Everything the daemon wrote to stderr so far. */
  stderr: () => string;
  /** Starts the daemon again on the same mountpoint, keyring and profile. */
  restart: (extraArgs?: readonly string[]) => Promise<void>;
}

export interface MountFixtureOptions {
  /** Use this keyring (a gateway's) instead of a new one. */
  readonly keysDir?: string;
  /** Mount at `<dir>/agent/secrets` with `--shared-parent`, as the propagation recipe says. */
  readonly sharedParent?: boolean;
  /** `--backend`; by default the CLI's own choice (native where built). */
  readonly backend?: BackendName;
  /**
   * `--fuse-transport`. With `uring`, a daemon that fell back to /dev/fuse
   * reads fails the start: a test on the io_uring transport must run on it.
   */
  readonly transport?: FuseTransport | undefined;
  /** Let a `uring` mount fall back (the tests of the fallback itself). */
  readonly allowFallback?: boolean;
}

export async function startMountFixture(
  owner: TestContext | Teardown,
  profile = DEMO_PROFILE,
  options: MountFixtureOptions = {},
): Promise<MountFixture> {
  const teardown = 'add' in owner ? owner : teardownOf(owner);
  const dir = tempDir(teardown);
  // Other uids (a container user) must be able to reach the mountpoint.
  chmodSync(dir, 0o755);
  const keysDir = options.keysDir ?? join(dir, 'keys');
  if (!options.keysDir) initKeyring(keysDir, new Date());
  const profileFile = join(dir, 'profile.yaml');
  writeFileSync(profileFile, profile);
  const parent = options.sharedParent ? join(dir, 'agent') : dir;
  const mountpoint = join(parent, options.sharedParent ? 'secrets' : 'mnt');
  mkdirSync(mountpoint, { recursive: true });
  // The shared parent is a bind mount of itself: undo it before the directory goes.
  if (options.sharedParent)
    teardown.add(() => {
      if (topMountAt(parent)) spawnSync('umount', ['-l', '--', parent], UNMOUNT_OPTIONS);
    });

  let stderr = '';
  const children: ChildProcess[] = [];
  // Registered before the first daemon starts, so one that never came up (a
  // timeout) is still killed and its mount undone before the directory goes.
  const started: { fixture?: MountFixture } = {};
  teardown.add(async () => {
    if (started.fixture) await stopMount(started.fixture);
    // A daemon that was taken over, or never served, may still run; none is left.
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await gone;
      }
    if (mountedPaths().includes(mountpoint))
      spawnSync('umount', ['-l', '--', mountpoint], UNMOUNT_OPTIONS);
  });
  const spawnDaemon = async (extraArgs: readonly string[] = []): Promise<ChildProcess> => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'mount',
        profileFile,
        mountpoint,
        '--keys',
        keysDir,
        ...(options.sharedParent ? ['--shared-parent'] : []),
        ...(options.backend ? ['--backend', options.backend] : []),
        ...(options.transport ? ['--fuse-transport', options.transport] : []),
        ...extraArgs,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    children.push(child);
    let own = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      own += chunk;
    });
    // This daemon's own "mounted" line: after a takeover the old one was serving all along.
    let state = '';
    await pollUntil(
      'the mount to serve',
      () => {
        if (child.exitCode !== null)
          throw new Error(`mintfs mount exited ${child.exitCode}: ${stderr}`);
        state = servingState(mountpoint);
        return own.includes('"event":"mounted"') && state === 'serving';
      },
      10_000,
      () => `(${state}); the daemon said: ${own}`,
    );
    if (
      options.transport === 'uring' &&
      options.allowFallback !== true &&
      !/"event":"mounted"[^\n]*"transport":"uring"/.test(own)
    )
      throw new Error(`the mount fell back from io_uring to /dev/fuse reads: ${own}`);
    return child;
  };

  const fixture: MountFixture = {
    dir,
    mountpoint,
    keysDir,
    profileFile,
    keyring: () => loadKeyring(keysDir),
    child: await spawnDaemon(),
    stderr: () => stderr,
    restart: async (extraArgs) => {
      fixture.child = await spawnDaemon(extraArgs);
    },
  };
  started.fixture = fixture;
  return fixture;
}

/** `serving`, or what stands in the way: for a readiness check and its error. */
function servingState(mountpoint: string): string {
  if (!mountedPaths().includes(mountpoint)) return 'not in the mount table';
  try {
    // readdir reaches the daemon; stat of the root can be answered from the kernel's cache.
    return readdirSync(mountpoint).length > 0 ? 'serving' : 'an empty directory listing';
  } catch (err) {
    return `readdir failed: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
}

export async function stopMount(fixture: MountFixture): Promise<void> {
  const child = fixture.child;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  if (mountedPaths().includes(fixture.mountpoint)) {
    spawnSync('fusermount3', ['-u', '-z', '--', fixture.mountpoint], UNMOUNT_OPTIONS);
  }
}
