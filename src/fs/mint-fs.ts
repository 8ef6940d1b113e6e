/**
 * The file system's operations, independent of any FUSE binding.
 *
 * A token is minted when a file is opened and served from that handle until
 * release, when its bytes are wiped: every open gets its own token, and
 * partial reads of one handle are consistent. With `mintPerRead` (a mount
 * that serves a gVisor sandbox, whose processes share one host handle per
 * file), every read from offset 0 gets a fresh token (token-reads.ts).
 * Failures are MintfsErrors; the backend adapters map their codes to errno.
 */
import { MintfsError, type MintfsErrorCode } from '../errors.js';
import type { Keyring } from '../keys/keyring.js';
import type { RootKey } from '../token/root-key.js';
import type { Logger } from '../log/logger.js';
import { mintToken } from '../token/mint.js';
import { formatInstant } from '../util/instant.js';
import { contentLength, renderContent } from './token-content.js';
import { TokenReads } from './token-reads.js';
import { DIRECTORY_MODE, treePath, type VirtualFile, type VirtualTree } from './virtual-tree.js';

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
const O_ACCMODE = 0o3;
const O_TRUNC = 0o1000;

export interface FileAttributes {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly nlink: number;
  readonly mtime: Date;
}

/** Where the file system gets its state: read on every operation, so it can change. */
export interface MintFsSources {
  readonly tree: () => VirtualTree;
  readonly keyring: () => Keyring;
  readonly clock: () => Date;
  readonly newTokenId: () => string;
  readonly logger: Logger;
  /** Calls the listener after the tree or keyring changed; returns how to stop. */
  readonly subscribe?: (listener: () => void) => () => void;
  /** Hears the outcome of every open of a token file (metrics count them by file). */
  readonly observeMint?:
    ((file: string, outcome: 'minted' | 'denied' | 'failed') => void) | undefined;
  /**
   * Every read from offset 0 gets a fresh token (token-reads.ts): gVisor's
   * sentry reads one host handle per file for every process of the sandbox
   * that opened it at about the same time (docs/containment.md), so a token
   * per open would be one token for all of them. The native backend does
   * this by itself for handles gVisor's gofer opened; fuse-native, which
   * cannot see who opens, is told by the mount (mintfs run --runtime runsc).
   */
  readonly mintPerRead?: boolean;
}

/** Who read a token, as the native backend learns it from the FUSE request and /proc. */
export interface ReaderIdentity {
  readonly uid: number;
  readonly gid: number;
  /** The reading thread's id, as the kernel gives it to FUSE (the process id when single-threaded). */
  readonly pid: number;
  /** Process start time in clock ticks since boot (/proc/PID/stat field 22): pid + start names one process. */
  readonly startTicks: number;
  /** /proc/PID/exe; '' when unknown. */
  readonly exe: string;
  /** The cgroup path that names the container (unified, else v1 pids, else systemd); '' when unknown. */
  readonly cgroup: string;
}

export interface MintRecord {
  readonly tokenId: string;
  readonly keyId: string;
  readonly expiresAt: Date;
}

/** The operations a FUSE backend calls. Paths are absolute within the mount ('/a/b'). */
export interface FsOperations {
  getattr(path: string): FileAttributes;
  /** Attributes of an open file: the size of the token this handle serves. */
  fgetattr(path: string, handle: number): FileAttributes;
  readdir(path: string): readonly string[];
  open(path: string, flags: number): number;
  read(handle: number, length: number, offset: number): Buffer;
  release(handle: number): void;
}

export class MintFs implements FsOperations {
  readonly #sources: MintFsSources;
  readonly #handles = new Map<number, OpenToken>();
  readonly #sizes = new WeakMap<VirtualFile, Map<string, number>>();
  readonly #started: Date;
  #nextHandle = 1;
  #lastActivity = 0;

  constructor(sources: MintFsSources) {
    this.#sources = sources;
    this.#started = sources.clock();
  }

  /** The tree and signing key opens use now (backends that mint elsewhere read these). */
  get tree(): VirtualTree {
    return this.#sources.tree();
  }

  get signingKey(): RootKey {
    return this.#sources.keyring().current;
  }

  /** Whether every read from offset 0 gets a fresh token (MintFsSources.mintPerRead). */
  get mintsPerRead(): boolean {
    return this.#sources.mintPerRead === true;
  }

  /** Calls `listener` whenever the tree or keyring may have changed. */
  subscribe(listener: () => void): () => void {
    return this.#sources.subscribe?.(listener) ?? (() => undefined);
  }

  /** The audit line of one mint. Every backend writes exactly this, whoever mints. */
  logMinted(
    file: VirtualFile,
    minted: MintRecord,
    details: { reader?: ReaderIdentity; durationMs?: number },
  ): void {
    this.#sources.observeMint?.(file.path, 'minted');
    this.#sources.logger.info(
      {
        event: 'mint',
        file: file.path,
        agent: file.grant.agent,
        service: file.grant.service,
        tokenId: minted.tokenId,
        keyId: minted.keyId,
        expiresAt: formatInstant(minted.expiresAt),
        ...(details.reader === undefined ? {} : { reader: details.reader }),
        ...(file.readerCaveat ? { readerCaveat: true } : {}),
        ...(details.durationMs === undefined ? {} : { durationMs: details.durationMs }),
      },
      'minted token',
    );
  }

  /** The audit line of a reader the file's `readers` rules refused. */
  logDenied(file: VirtualFile, reader: ReaderIdentity, reason: string): void {
    this.#sources.observeMint?.(file.path, 'denied');
    this.#logUnserved('warn', 'mint-denied', 'ERR_READER_DENIED', file, reader, reason);
  }

  /** The audit line of a mint that failed (the reader got EIO). */
  logFailed(file: VirtualFile, reader: ReaderIdentity, reason: string): void {
    this.#sources.observeMint?.(file.path, 'failed');
    this.#logUnserved('error', 'mint-failed', 'ERR_MINT_FAILED', file, reader, reason);
  }

  #logUnserved(
    level: 'warn' | 'error',
    event: string,
    error: MintfsErrorCode,
    file: VirtualFile,
    reader: ReaderIdentity,
    reason: string,
  ): void {
    this.#sources.logger[level](
      {
        event,
        file: file.path,
        agent: file.grant.agent,
        service: file.grant.service,
        reader,
        reason,
        error,
      },
      level === 'warn' ? 'reader refused' : 'mint failed',
    );
  }

  get openHandles(): number {
    return this.#handles.size;
  }

  /** When an open, read or release last happened (monotonic ms), for draining on shutdown. */
  get lastActivity(): number {
    return this.#lastActivity;
  }

  getattr(path: string): FileAttributes {
    const tree = this.#sources.tree();
    const name = treePath(path);
    const file = tree.files.get(name);
    if (file)
      return this.#fileAttributes(file, this.#sizeOf(file, this.#sources.keyring().current.id));
    const entries = tree.directories.get(name);
    if (entries) {
      return {
        mode: S_IFDIR | DIRECTORY_MODE,
        uid: 0,
        gid: 0,
        size: 0,
        nlink: 2,
        mtime: this.#started,
      };
    }
    throw notFound(path);
  }

  fgetattr(path: string, handle: number): FileAttributes {
    // The open file's own token, even if the profile changed or dropped the file since.
    const open = this.#handles.get(handle);
    if (!open) return this.getattr(path);
    return this.#fileAttributes(open.file, open.reads.newest.length);
  }

  readdir(path: string): readonly string[] {
    const tree = this.#sources.tree();
    const name = treePath(path);
    const entries = tree.directories.get(name);
    if (entries) return entries;
    if (tree.files.has(name)) throw new MintfsError('ERR_NOT_A_DIRECTORY', `${path} is a file`);
    throw notFound(path);
  }

  open(path: string, flags: number): number {
    // Read-only: refuse write access and truncation before minting anything.
    if ((flags & O_ACCMODE) !== 0 || (flags & O_TRUNC) !== 0)
      throw new MintfsError('ERR_READ_ONLY', `${path}: mintfs is read-only`);
    const tree = this.#sources.tree();
    const name = treePath(path);
    const file = tree.files.get(name);
    if (!file) {
      if (tree.directories.has(name))
        throw new MintfsError('ERR_IS_A_DIRECTORY', `${path} is a directory`);
      throw notFound(path);
    }
    const content = this.#mint(file);
    this.#lastActivity = performance.now();
    const handle = this.#allocateHandle();
    this.#handles.set(handle, { reads: new TokenReads(content), file });
    return handle;
  }

  read(handle: number, length: number, offset: number): Buffer {
    const open = this.#handles.get(handle);
    if (!open) throw new MintfsError('ERR_BAD_HANDLE', `no open file with handle ${handle}`);
    this.#lastActivity = performance.now();
    return open.reads.read(
      length,
      offset,
      this.#sources.mintPerRead === true ? () => this.#remint(open) : undefined,
    );
  }

  release(handle: number): void {
    const open = this.#handles.get(handle);
    if (!open) return;
    open.reads.wipe();
    this.#handles.delete(handle);
  }

  /**
   * A fresh token for a read of an open handle (mintPerRead), from the
   * profile as it is now: a file the profile dropped since is gone for this
   * read, as it would be for a new open.
   */
  #remint(open: OpenToken): Buffer {
    const file = this.#sources.tree().files.get(open.file.path);
    if (!file) throw notFound(open.file.path);
    const content = this.#mint(file);
    open.file = file;
    return content;
  }

  #mint(file: VirtualFile): Buffer {
    const started = process.hrtime.bigint();
    const key = this.#sources.keyring().current;
    const minted = mintToken(file.grant, {
      key,
      now: this.#sources.clock(),
      tokenId: this.#sources.newTokenId(),
    });
    const content = renderContent(minted, file.format, file.prefix);
    const expected = this.#sizeOf(file, key.id);
    if (content.length !== expected) {
      // stat already promised `expected` bytes; a reader trusting it would get a
      // truncated or padded token. Refuse instead (the reader sees EIO).
      content.fill(0);
      throw new MintfsError(
        'ERR_MINT_FAILED',
        `${file.path}: token is ${content.length} bytes, stat promised ${expected}`,
      );
    }
    this.logMinted(file, minted, {
      durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    });
    return content;
  }

  #fileAttributes(file: VirtualFile, size: number): FileAttributes {
    return {
      mode: S_IFREG | file.mode,
      uid: file.uid,
      gid: file.gid,
      size,
      nlink: 1,
      mtime: this.#started,
    };
  }

  #sizeOf(file: VirtualFile, keyId: string): number {
    let byKey = this.#sizes.get(file);
    if (!byKey) this.#sizes.set(file, (byKey = new Map<string, number>()));
    let size = byKey.get(keyId);
    if (size === undefined) {
      size = contentLength(file.grant, file.format, keyId, file.prefix);
      byKey.set(keyId, size);
    }
    return size;
  }

  #allocateHandle(): number {
    // FUSE file handles are 64-bit, fuse-native passes them as uint32; skip live ones on wrap.
    do {
      this.#nextHandle = this.#nextHandle >= 0x7fffffff ? 1 : this.#nextHandle + 1;
    } while (this.#handles.has(this.#nextHandle));
    return this.#nextHandle;
  }
}

/** An open token file: the tokens its handle serves and the file it was minted for. */
interface OpenToken {
  readonly reads: TokenReads;
  file: VirtualFile;
}

function notFound(path: string): MintfsError {
  return new MintfsError('ERR_NOT_FOUND', `${path}: no such file or directory`);
}

/**
 * One token for `path`, through the operations a reader of the mount goes
 * through (open, read, release), with the real clock and fresh token ids:
 * what `mintfs mint` prints.
 */
export function mintOnce(
  tree: VirtualTree,
  keyring: Keyring,
  path: string,
  logger: Logger,
  newTokenId: () => string,
): Buffer {
  const fs = new MintFs({
    tree: () => tree,
    keyring: () => keyring,
    clock: () => new Date(),
    newTokenId,
    logger,
  });
  const handle = fs.open(path, 0);
  try {
    return Buffer.from(fs.read(handle, fs.getattr(path).size, 0));
  } finally {
    fs.release(handle);
  }
}
