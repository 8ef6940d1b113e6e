/**
 * What the file system answers when it cannot serve a request, by situation:
 * the one table both backends read. fuse-native maps error codes through it
 * here; the native backend's C is compiled with the same table
 * (native/addon/file-errors.h, written from it by `npm run generate`; a unit
 * test fails when the header is stale).
 */
import { constants } from 'node:os';
import { isMintfsError, type MintfsErrorCode } from '../errors.js';

const E = constants.errno;

/** Each situation a file system request can fail in, and the errno name it answers. */
export const FILE_ERRNOS = {
  ERR_NOT_FOUND: 'ENOENT',
  ERR_NOT_A_DIRECTORY: 'ENOTDIR',
  ERR_IS_A_DIRECTORY: 'EISDIR',
  ERR_READ_ONLY: 'EROFS',
  ERR_BAD_HANDLE: 'EBADF',
  ERR_READER_DENIED: 'EACCES',
  /** The C side only: JavaScript has no allocation failure to answer. */
  ERR_OUT_OF_MEMORY: 'ENOMEM',
  /** Anything unexpected: a reader gets an error, never an empty or partial token. */
  ERR_UNEXPECTED: 'EIO',
} as const satisfies Record<string, keyof typeof E>;

type FileErrorSituation = keyof typeof FILE_ERRNOS;

/** Negative, as FUSE replies them. */
export function errnoFor(err: unknown): number {
  const situation: FileErrorSituation =
    isMintfsError(err) && err.code in FILE_ERRNOS
      ? (err.code as MintfsErrorCode & FileErrorSituation)
      : 'ERR_UNEXPECTED';
  return -E[FILE_ERRNOS[situation]];
}

export const EROFS = -E[FILE_ERRNOS.ERR_READ_ONLY];
export const EIO = -E[FILE_ERRNOS.ERR_UNEXPECTED];

/** native/addon/file-errors.h, as the table above says it must be. */
export function fileErrorsHeader(): string {
  const lines = Object.entries(FILE_ERRNOS).map(
    ([situation, errno]) => `#define MINTFS_${situation} ${errno}`,
  );
  return [
    '/* Written by `npm run generate` from src/fuse/errno.ts (FILE_ERRNOS): edit that, not this. */',
    '#ifndef MINTFS_FILE_ERRORS_H',
    '#define MINTFS_FILE_ERRORS_H',
    '#include <errno.h>',
    '',
    ...lines,
    '',
    '#endif',
    '',
  ].join('\n');
}
