/**
 * A real `mintfs mount` in a child process, on a fresh keyring and
 * mountpoint, torn down when the test ends whether it passed or not.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { mountedPaths } from '../../src/fuse/mount-table.js';
import { initKeyring, loadKeyring, type Keyring } from '../../src/keys/keyring.js';
import { CLI } from './paths.js';
import { pollUntil } from './poll.js';
import { tempDir, teardownOf, type Teardown } from './temp.js';

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
  restart: () => Promise<void>;
}

export async function startMountFixture(
  owner: TestContext | Teardown,
  profile = DEMO_PROFILE,
): Promise<MountFixture> {
  const teardown = 'add' in owner ? owner : teardownOf(owner);
  const dir = tempDir(teardown);
  // Other uids (a container user) must be able to reach the mountpoint.
  chmodSync(dir, 0o755);
  const keysDir = join(dir, 'keys');
  initKeyring(keysDir, new Date());
  const profileFile = join(dir, 'profile.yaml');
  writeFileSync(profileFile, profile);
  const mountpoint = join(dir, 'mnt');
  mkdirSync(mountpoint);

  let stderr = '';
  const spawnDaemon = async (): Promise<ChildProcess> => {
    const child = spawn(
      process.execPath,
      [CLI, 'mount', profileFile, mountpoint, '--keys', keysDir],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    await pollUntil('the mount to serve', () => {
      if (child.exitCode !== null)
        throw new Error(`mintfs mount exited ${child.exitCode}: ${stderr}`);
      return isServing(mountpoint);
    });
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
    restart: async () => {
      fixture.child = await spawnDaemon();
    },
  };
  // Runs before the temp dir is removed: teardown is last-in, first-out.
  teardown.add(() => stopMount(fixture));
  return fixture;
}

function isServing(mountpoint: string): boolean {
  if (!mountedPaths().includes(mountpoint)) return false;
  try {
    // readdir reaches the daemon; stat of the root can be answered from the kernel's cache.
    return readdirSync(mountpoint).length > 0;
  } catch {
    return false;
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
    spawnSync('fusermount3', ['-u', '-z', '--', fixture.mountpoint]);
  }
}
