/**
 * The directory tree a profile describes: its files, and the directories that
 * their paths imply. Paths are relative to the mount root, without a leading
 * slash; the root directory is ''.
 */
import type { FileSpec, Profile, ReaderRules, TokenFormat } from '../profile/schema.js';
import type { TokenGrant } from '../token/mint.js';

export const DEFAULT_FILE_MODE = 0o440;
export const DIRECTORY_MODE = 0o555;

export interface VirtualFile {
  readonly path: string;
  readonly grant: TokenGrant;
  readonly format: TokenFormat;
  /** Text before the token in the file (profile `prefix`), '' for none. */
  readonly prefix: string;
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
  /** Who may read it (the native backend enforces this); undefined: anyone the mode allows. */
  readonly readers: ReaderRules | undefined;
  /** Whether each token names its reader in a `reader` caveat. */
  readonly readerCaveat: boolean;
}

export interface VirtualTree {
  readonly agent: string;
  readonly files: ReadonlyMap<string, VirtualFile>;
  /** Each directory's entries, sorted. */
  readonly directories: ReadonlyMap<string, readonly string[]>;
}

export function buildTree(profile: Profile): VirtualTree {
  const files = new Map<string, VirtualFile>();
  const entries = new Map<string, Set<string>>([['', new Set()]]);
  for (const [path, spec] of Object.entries(profile.files)) {
    files.set(path, virtualFile(profile, path, spec));
    const segments = path.split('/');
    for (let depth = 0; depth < segments.length; depth++) {
      const dir = segments.slice(0, depth).join('/');
      let children = entries.get(dir);
      if (!children) entries.set(dir, (children = new Set()));
      children.add(segments[depth] as string);
    }
  }
  const directories = new Map([...entries].map(([dir, names]) => [dir, [...names].sort()]));
  return { agent: profile.agent, files, directories };
}

/** The same tree with every file owned by `owner` (mintfs run: the sandbox's user reads them). */
export function withOwner(tree: VirtualTree, owner: { uid: number; gid: number }): VirtualTree {
  const files = new Map(
    [...tree.files].map(([path, file]) => [path, { ...file, uid: owner.uid, gid: owner.gid }]),
  );
  return { ...tree, files };
}

function virtualFile(profile: Profile, path: string, spec: FileSpec): VirtualFile {
  return {
    path,
    grant: {
      agent: profile.agent,
      service: spec.service,
      hosts: spec.hosts,
      methods: spec.methods,
      paths: spec.paths,
      ttlMs: spec.ttl ?? profile.ttl,
      ...(spec.uses === undefined ? {} : { uses: spec.uses }),
      ...(spec.github === undefined ? {} : { github: spec.github }),
      ...(spec.approval === undefined ? {} : { approval: spec.approval }),
      ...(spec.aws === undefined ? {} : { awsPolicy: spec.aws.policy }),
    },
    format: spec.format,
    prefix: spec.prefix ?? '',
    uid: spec.uid ?? profile.uid ?? 0,
    gid: spec.gid ?? profile.gid ?? 0,
    mode: spec.mode ?? profile.mode ?? DEFAULT_FILE_MODE,
    readers: spec.readers ?? profile.readers,
    readerCaveat: spec.readerCaveat ?? profile.readerCaveat ?? false,
  };
}

/** The first file that needs to know its reader (readers rules or a reader caveat), if any. */
export function fileNeedingReaderIdentity(tree: VirtualTree): VirtualFile | undefined {
  return [...tree.files.values()].find((file) => file.readers !== undefined || file.readerCaveat);
}

/** '/github/token' or 'github/token' to 'github/token'; '/' to ''. */
export function treePath(fsPath: string): string {
  return fsPath.replace(/^\/+/, '').replace(/\/+$/, '');
}
