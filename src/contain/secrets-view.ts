/**
 * How a sandbox sees the token mount at /secrets, on every runtime.
 *
 * A private mount (`--profile`) lives and dies with the run: it is bound at
 * /secrets directly. A running mount (`--mount DIR`) outlives the sandbox,
 * and its daemon may restart (`mintfs mount --takeover`) while the agent
 * runs. A bind of the mount itself would keep the old, dead mount after
 * that; a bind of its *parent*, as a slave of a shared parent (what
 * `mintfs mount --shared-parent` makes), sees every later mount. So such a
 * mount is followed: the parent is bound read-only and `rslave` at
 * SANDBOX_MOUNT_PARENT, and /secrets leads into it, without changing the
 * image: a symlink where the sandbox's root is ours (bubblewrap), and where
 * it is an image (runc, Docker) a read-only bind of a host directory of
 * symlinks, one per top-level entry of the mount (LinkFarm), kept in step
 * with the mount while the run lasts.
 */
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { MintfsError } from '../errors.js';
import { topMountAt } from '../mounts/mount-table.js';
import type { Logger } from '../log/logger.js';

/** Where a followed mount's parent appears inside the sandbox. */
export const SANDBOX_MOUNT_PARENT = '/run/mintfs/mount';

export type SecretsView =
  /** The mount bound at /secrets. */
  | { readonly kind: 'bind'; readonly dir: string }
  /**
   * `parent` bound rslave at SANDBOX_MOUNT_PARENT; /secrets leads to
   * SANDBOX_MOUNT_PARENT/`entry`, through `links` where a symlink cannot be made.
   */
  | {
      readonly kind: 'follow';
      readonly parent: string;
      readonly entry: string;
      readonly links: string;
    };

/** The path /secrets leads to inside the sandbox, for a followed mount. */
export function followedPath(view: { readonly entry: string }): string {
  return `${SANDBOX_MOUNT_PARENT}/${view.entry}`;
}

/**
 * The view of a running mount: followed when its parent is a shared mount,
 * else bound directly (a restart of its daemon then does not reach the
 * sandbox: said once in the log, with the fix). `links` is the run's own
 * directory for the symlinks.
 */
export function runningMountView(mountDir: string, links: string, logger: Logger): SecretsView {
  const dir = realpathSync(mountDir);
  const parent = dirname(dir);
  if (parent === dir || topMountAt(parent)?.shared !== true) {
    logger.warn(
      { event: 'run-mount-not-followed', mountpoint: dir },
      `--mount ${mountDir}: its parent is not a shared mount, so a restart of its daemon will not reach this sandbox; start the mount with --shared-parent`,
    );
    return { kind: 'bind', dir };
  }
  // The sandbox sees the whole parent: it must hold the mount and nothing else.
  const others = readdirSync(parent).filter((name) => name !== basename(dir));
  if (others.length > 0)
    throw new MintfsError(
      'ERR_INPUT_INVALID',
      `--mount ${mountDir}: its parent ${parent} also holds ${others.length === 1 ? `"${others[0]}"` : `${others.length} other entries`}, which the sandbox would see; give each mount a directory of its own (such as /run/mintfs/agent1/secrets)`,
    );
  return { kind: 'follow', parent, entry: basename(dir), links };
}

/**
 * A directory of symlinks, `name -> SANDBOX_MOUNT_PARENT/entry/name`, one
 * for each top-level entry of the mount: bound at /secrets, it makes
 * /secrets/github/token resolve into the followed parent. Listing the
 * mount's root mints nothing. A profile reload can add or drop entries:
 * sync() (every second while the run lasts) brings the links in step; a
 * round while the mount is being replaced is skipped.
 */
export class LinkFarm {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly mountDir: string,
    private readonly view: { readonly links: string; readonly entry: string },
  ) {}

  /** Creates the directory and the first links; throws if the mount cannot be listed. */
  create(): void {
    mkdirSync(this.view.links, { mode: 0o755 });
    chmodSync(this.view.links, 0o755);
    this.#apply(readdirSync(this.mountDir));
  }

  /** Keeps the links in step until stop(). */
  follow(intervalMs = 1_000): void {
    this.#timer = setInterval(() => this.sync(), intervalMs);
    this.#timer.unref();
  }

  sync(): void {
    let names: string[];
    try {
      names = readdirSync(this.mountDir);
    } catch {
      return; // Between two daemons: the next round sees the new one.
    }
    this.#apply(names);
  }

  /** Stops following and removes the directory (symlinks only: never into the mount). */
  remove(): void {
    clearInterval(this.#timer);
    let names: string[] = [];
    try {
      names = readdirSync(this.view.links);
    } catch {
      return;
    }
    for (const name of names) rmSync(join(this.view.links, name), { force: true });
    rmdirSync(this.view.links);
  }

  #apply(names: readonly string[]): void {
    const wanted = new Set(names.filter(isPlainName));
    for (const name of readdirSync(this.view.links)) {
      if (name.startsWith(TEMP)) continue;
      if (!wanted.has(name)) rmSync(join(this.view.links, name), { force: true });
    }
    for (const name of wanted) {
      const target = `${followedPath(this.view)}/${name}`;
      const link = join(this.view.links, name);
      if (readlinkOr(link) === target) continue;
      // Made aside and renamed in: a reader never finds the name missing.
      const temp = join(this.view.links, `${TEMP}${name}`);
      rmSync(temp, { force: true });
      symlinkSync(target, temp);
      renameSync(temp, link);
    }
  }
}

const TEMP = '.new-';

function isPlainName(name: string): boolean {
  return (
    name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.startsWith(TEMP)
  );
}

function readlinkOr(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
