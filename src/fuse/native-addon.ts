/**
 * Loading the native backend's addon (native/, built by
 * scripts/build-native-addon.sh into dist/native/), and its JavaScript face.
 * Loading fails with ERR_NATIVE_UNAVAILABLE and the reason, never a crash:
 * the caller falls back to fuse-native or reports it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { MintfsError, describeError } from '../errors.js';
import type { ReaderIdentity } from '../fs/mint-fs.js';
import type { ActiveTransport } from './transport.js';

export interface NativeReaderRules {
  readonly uids?: readonly number[] | undefined;
  readonly exe?: readonly string[] | undefined;
  readonly containers?: readonly string[] | undefined;
}

/** Everything the C minter needs for one file; the derived key, never the root key. */
export interface NativeTemplate {
  readonly keyId: string;
  readonly derivedKey: Buffer;
  readonly location: string;
  /** Every caveat but time-before, in mintToken's order. */
  readonly caveats: readonly string[];
  readonly ttlMs: number;
  /** The file's format as data (FORMAT_LAYOUTS): text before the token and the prefix. */
  readonly before: string;
  /** Text after the token, with {expiresAt} and {tokenId} filled in by the minter. */
  readonly after: string;
  /** Text the file puts before the token (profile `prefix`), '' for none. */
  readonly prefix: string;
  /** An approval caveat, last: its ticket (caveat id); absent for files without approval. */
  readonly approvalTicket?: Buffer;
  /** With approvalTicket: the caveat's derived root key, sealed into each token's verification id. */
  readonly approvalKey?: Buffer;
}

export interface NativeFile extends NativeTemplate {
  readonly readerCaveat: boolean;
  readonly readers?: NativeReaderRules | undefined;
}

export interface NativeNode {
  readonly pathId: number;
  /** 0 for the root. */
  readonly parentId: number;
  readonly name: string;
  readonly dir: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly children?: readonly number[];
  readonly file?: NativeFile;
}

export interface NativeAuditEvent {
  readonly kind: 'minted' | 'denied' | 'failed';
  readonly pathId: number;
  readonly tokenId: string;
  readonly keyId: string;
  readonly expiresS: number;
  readonly readerCaveat: boolean;
  readonly reason: string;
  readonly reader: ReaderIdentity;
}

/**
 * Audit events as the addon hands them over: per event a fixed number of
 * doubles and of strings, laid out as native-audit.ts reads them (addon.c's
 * audit_result says why not an object per event).
 */
export interface NativeAuditBatch {
  readonly count: number;
  readonly numbersPerEvent: number;
  readonly stringsPerEvent: number;
  readonly numbers: Float64Array;
  readonly strings: readonly string[];
  readonly refused: number;
}

declare const sessionBrand: unique symbol;
export type NativeSession = { readonly [sessionBrand]: true };

export interface NativeAddon {
  /**
   * Mounts and serves. `mintPerRead`: every handle mints per read (gVisor's
   * gofer's do anyway). `uring` asks the kernel for FUSE over io_uring and
   * returns once its INIT settled whether it is used (stats().transport).
   */
  start(
    mountpoint: string,
    nodes: readonly NativeNode[],
    mintPerRead: boolean,
    transport: ActiveTransport,
  ): NativeSession;
  /** Audit events queued since the last call, oldest first (native-audit.ts reads them); `refused`: opens failed on a full queue. */
  takeAudit(session: NativeSession): NativeAuditBatch;
  setTree(session: NativeSession, nodes: readonly NativeNode[]): void;
  stats(session: NativeSession): {
    openHandles: number;
    lastActivityMs: number;
    /** Replies the kernel refused: their requests were interrupted (the caller was killed). */
    replyFailures: number;
    /** Cached directory entries a tree change could not drop (they expire within a second). */
    invalidationFailures: number;
    /** What carries requests now. */
    transport: ActiveTransport;
    /** When `uring` was asked for and `classic` serves: why ('' otherwise). */
    transportFallback: string;
    /** Requests served over io_uring, and ring requests refused as malformed (EIO). */
    ringRequests: number;
    ringMalformed: number;
  };
  /**
   * Stops serving (the FUSE thread is joined first) and returns the audit
   * events queued since the last takeAudit, so none is lost; a second stop
   * returns none.
   */
  stop(session: NativeSession): NativeAuditBatch;
  /** The pure minter: the file content for these inputs. */
  mint(
    template: NativeTemplate,
    nowMs: number,
    idBytes: Buffer,
    readerCaveat: string | null,
  ): Buffer;
  /** `portable`: use the plain C compression even where the CPU has SHA extensions (tests). */
  hmacSha256(key: Buffer, data: Buffer, portable?: boolean): Buffer;
  /** Writes the macaroon signature chain over an identifier and caveats into `out` (32 bytes; the verifier's fast path). */
  hmacChain(key: Buffer, identifier: Buffer, caveats: readonly Buffer[], out: Buffer): void;
  /** Whether SHA-256 runs on the CPU's SHA extensions. */
  sha256Accelerated(): boolean;
  /** The kernel's record of a unix socket's peer (SO_PEERCRED); null for any other descriptor. */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number } | null;
  /** `count` mints as an open does them, in C; returns the nanoseconds taken (benchmark). */
  mintLoop(template: NativeTemplate, count: number): number;
}

export const NATIVE_ADDON_PATH = fileURLToPath(
  new URL('../../native/mintfs_native.node', import.meta.url),
);

let loaded: NativeAddon | MintfsError | undefined;

/** The addon, loaded once; throws ERR_NATIVE_UNAVAILABLE saying why it cannot be. */
export function loadNativeAddon(): NativeAddon {
  loaded ??= tryLoad();
  if (loaded instanceof MintfsError) throw loaded;
  return loaded;
}

function tryLoad(): NativeAddon | MintfsError {
  if (!existsSync(NATIVE_ADDON_PATH))
    return new MintfsError(
      'ERR_NATIVE_UNAVAILABLE',
      `the native backend is not built (${NATIVE_ADDON_PATH} is missing): the npm package carries it prebuilt for linux-x64 only; in a checkout, scripts/setup.sh installs libfuse3-dev and builds it`,
    );
  try {
    return createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeAddon;
  } catch (err) {
    return new MintfsError(
      'ERR_NATIVE_UNAVAILABLE',
      `the native backend does not load (it needs glibc and libfuse3: apt install libfuse3-3): ${describeError(err)}`,
      { cause: err },
    );
  }
}
