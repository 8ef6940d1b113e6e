/** The one place error codes become FUSE errnos (negative, as FUSE replies them). */
import { constants } from 'node:os';
import { isMintfsError, type MintfsErrorCode } from '../errors.js';

const E = constants.errno;

const ERRNO_BY_CODE: Partial<Record<MintfsErrorCode, number>> = {
  ERR_NOT_FOUND: E.ENOENT,
  ERR_NOT_A_DIRECTORY: E.ENOTDIR,
  ERR_IS_A_DIRECTORY: E.EISDIR,
  ERR_READ_ONLY: E.EROFS,
  ERR_BAD_HANDLE: E.EBADF,
  ERR_READER_DENIED: E.EACCES,
};

/** Anything unexpected is EIO: a reader gets an error, never an empty or partial token. */
export function errnoFor(err: unknown): number {
  const errno = isMintfsError(err) ? ERRNO_BY_CODE[err.code] : undefined;
  return -(errno ?? E.EIO);
}

export const EROFS = -E.EROFS;
export const EIO = -E.EIO;
